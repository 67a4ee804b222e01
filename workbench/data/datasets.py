"""Named datasets (topics + qrels + official candidate runs) read from a data directory.

The data directory has the layout of ``../shared/data/msmarco-passage-mini``::

    collection.tsv                 pid<TAB>text
    topics/<name>.tsv              qid<TAB>query
    qrels/<name>.txt               qid iteration pid grade
    runs/<system>.<dataset>.trec   official full-collection candidate runs

It is located by, in order: an explicit argument (CLI ``--data-dir``), the
environment variable ``WORKBENCH_DATA``, ``./data/msmarco-passage-mini`` (what
``make data`` writes) and ``../shared/data/msmarco-passage-mini``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..core.errors import WorkbenchError
from .trec import read_qrels, read_topics

DATA_ENV = "WORKBENCH_DATA"
DEFAULT_DATA_DIRS = ("data/msmarco-passage-mini", "../shared/data/msmarco-passage-mini")
HOW_TO_GET_DATA = (
    f"set {DATA_ENV} (or pass --data-dir) to a directory laid out like msmarco-passage-mini "
    "(collection.tsv, topics/, qrels/, runs/), or run `make data` with internet access "
    "to materialise it from ir_datasets"
)

OFFICIAL_DL_SYSTEMS = ("bm25", "bm25-rm3", "tasb", "ada2", "spladepp-ed")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files live inside the data directory and how to judge it."""

    name: str
    topics: str
    qrels: str
    relevance_level: int
    description: str
    official_runs: dict[str, str] = field(default_factory=dict)
    ir_datasets_id: str = ""


def _dl_runs(suffix: str) -> dict[str, str]:
    return {system: f"runs/{system}.{suffix}.trec" for system in OFFICIAL_DL_SYSTEMS}


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("dl19", "topics/dl19-passage.tsv", "qrels/dl19-passage.txt", 2,
                    "TREC DL 2019 passage (43 judged queries, graded 0-3)", _dl_runs("dl19"),
                    "msmarco-passage/trec-dl-2019/judged"),
        DatasetSpec("dl20", "topics/dl20.tsv", "qrels/dl20-passage.txt", 2,
                    "TREC DL 2020 passage (200 topics, 54 judged, graded 0-3)", _dl_runs("dl20"),
                    "msmarco-passage/trec-dl-2020"),
        DatasetSpec("dev600", "topics/dev600.tsv", "qrels/dev600.txt", 1,
                    "600 MS MARCO dev-small queries with BM25 top-20 candidates (binary)",
                    {"bm25": "runs/bm25-top20.dev600.trec"}, "msmarco-passage/dev/small"),
        DatasetSpec("dev-small", "topics/dev-subset.tsv", "qrels/dev-subset.txt", 1,
                    "MS MARCO dev small (6,980 queries, binary)", {}, "msmarco-passage/dev/small"),
    )
}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Find the data directory (argument, then ``$WORKBENCH_DATA``, then the defaults)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise WorkbenchError(f"data directory does not exist; {HOW_TO_GET_DATA}", path)
        return path.resolve()
    for candidate in DEFAULT_DATA_DIRS:
        if Path(candidate).is_dir():
            return Path(candidate).resolve()
    raise WorkbenchError(f"no data directory found; {HOW_TO_GET_DATA}")


class Dataset:
    """A named dataset bound to a data directory; files are read lazily and validated."""

    def __init__(self, spec: DatasetSpec, data_dir: Path):
        self.spec = spec
        self.data_dir = data_dir

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def relevance_level(self) -> int:
        """Minimum grade counted as relevant by binary metrics (MRR, MAP, recall)."""
        return self.spec.relevance_level

    @property
    def topics_path(self) -> Path:
        return self.data_dir / self.spec.topics

    @property
    def qrels_path(self) -> Path:
        return self.data_dir / self.spec.qrels

    @property
    def collection_path(self) -> Path:
        return self.data_dir / "collection.tsv"

    @cached_property
    def topics(self) -> pd.DataFrame:
        """All topics, judged or not (``qid, query``)."""
        return read_topics(self.topics_path)

    @cached_property
    def qrels(self) -> pd.DataFrame:
        """Relevance judgments (``qid, docno, label``)."""
        return read_qrels(self.qrels_path)

    @cached_property
    def judged_topics(self) -> pd.DataFrame:
        """Topics that have at least one judgment; only these are evaluated."""
        judged = set(self.qrels["qid"])
        return self.topics[self.topics["qid"].isin(judged)].reset_index(drop=True)

    @property
    def n_unjudged(self) -> int:
        """Number of topics without any judgment (excluded from evaluation)."""
        return len(self.topics) - len(self.judged_topics)

    def official_run_path(self, system: str) -> Path:
        """Path of an official full-collection candidate run shipped with the data."""
        if system not in self.spec.official_runs:
            known = ", ".join(sorted(self.spec.official_runs)) or "none"
            raise WorkbenchError(
                f"dataset {self.name!r} has no official run {system!r} (available: {known})")
        path = self.data_dir / self.spec.official_runs[system]
        if not path.is_file():
            raise WorkbenchError(f"official run {system!r} for {self.name} is missing", path)
        return path


def get_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Look up a dataset by name (``dl19``, ``dl20``, ``dev600``, ``dev-small``)."""
    if name not in DATASETS:
        raise WorkbenchError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return Dataset(DATASETS[name], resolve_data_dir(data_dir))
