"""The dataset interface, and the data directory the built-in datasets are read from.

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
#: what the leaderboard evaluates when a dataset declares nothing and ``--metrics`` is not given
STANDARD_METRICS = ("mrr@10", "ndcg@5", "ndcg@10", "recall@100", "map")
#: TREC DL adds Judged@10 and the judged-only (condensed-list, trec_eval -J) variants of MRR@10, NDCG@5
#: and NDCG@10: with shallow pools, an unjudged-heavy top 10 can make a gain an artefact. The headline
#: pair stays first (code reads a dataset's first two metrics as its headline), its judged-only pair
#: right after it, ndcg@10's beside ndcg@10
TREC_DL_METRICS = ("mrr@10", "ndcg@5", "mrr@10:judged", "ndcg@5:judged", "ndcg@10", "ndcg@10:judged",
                   "recall@100", "map", "Judged@10")
#: every other collection (classic test collections, BEIR, your own), whichever source it comes from
COLLECTION_METRICS = ("map", "precision@30", "ndcg@10")


def default_metrics(*, ms_marco: bool = False, trec_dl: bool = False) -> tuple[str, ...]:
    """The headline metrics of a dataset that names none: MS MARCO's for an MS MARCO set (TREC DL
    adds Judged@10 and judged-only variants), else :data:`COLLECTION_METRICS`. The one rule every
    source applies, so a collection gets the same defaults whether it is declared in a file or read
    through ir_datasets."""
    if trec_dl:
        return TREC_DL_METRICS
    return STANDARD_METRICS if ms_marco else COLLECTION_METRICS


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's declaration: where its files live (relative to the data directory, or
    absolute), how to judge it and what its numbers can be compared with.

    ``metrics`` are its headline metrics (the leaderboard's columns unless ``--metrics`` says
    otherwise); ``comparability`` says what its rows can be compared with; ``texts`` how its
    documents become the text a reranker reads (e.g. title and body joined, FirstP)."""

    name: str
    topics: str
    qrels: str
    relevance_level: int
    description: str
    official_runs: dict[str, str] = field(default_factory=dict)
    ir_datasets_id: str = ""
    collection: str = "collection.tsv"
    metrics: tuple[str, ...] = STANDARD_METRICS
    comparability: str = ""
    texts: str = ""
    source: str = "built-in"
    complete_collection: bool = False  # retrieval over it is comparable (not a mini sample)
    query_types: str = ""  # a label file (qid<TAB>label[<TAB>reason]) that overrides the rules


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
    """A test collection behind one interface: topics, qrels, the texts of its documents
    (:meth:`collection`), optional candidate runs, the relevance level of binary metrics, headline
    metrics and a comparability note. Files are read lazily and validated.

    The built-in datasets, local ones declared in a TOML file (:mod:`.declared`) and ir_datasets
    ids (:mod:`.irds`) are all this class (the latter two subclasses), so everything downstream
    takes any of them by name."""

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
    def metrics(self) -> list[str]:
        """Headline metrics this dataset is evaluated with by default."""
        return list(self.spec.metrics)

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def texts_note(self) -> str:
        """How documents become the text a reranker reads (recorded in rerankers' manifests)."""
        return self.spec.texts

    @property
    def comparability(self) -> str:
        """What this dataset's numbers can be compared with (empty: as the runs say)."""
        return self.spec.comparability

    @property
    def slug(self) -> str:
        """The name as a file name (``irds:beir/scifact/test`` -> ``irds-beir--scifact--test``)."""
        return self.name.replace(":", "-").replace("/", "--")

    def collection(self):
        """The texts of the documents (a :class:`~.collection.Collection`)."""
        from .collection import Collection

        return Collection(self.collection_path)

    @property
    def collection_key(self) -> str:
        """What identifies the collection within a process (two datasets may share one)."""
        return str(self.collection_path)

    @property
    def candidate_runs(self) -> list[str]:
        """Names of the candidate runs shipped with the dataset (``official-<name>`` systems)."""
        return sorted(self.spec.official_runs)

    @property
    def topics_path(self) -> Path:
        return self.data_dir / self.spec.topics

    @property
    def qrels_path(self) -> Path:
        return self.data_dir / self.spec.qrels

    @property
    def collection_path(self) -> Path:
        return self.data_dir / self.spec.collection

    @cached_property
    def topics(self) -> pd.DataFrame:
        """All topics, judged or not (``qid, query``)."""
        return read_topics(self.topics_path)

    @cached_property
    def all_qrels(self) -> pd.DataFrame:
        """Every judgment of the qrels file, its topics' or not."""
        return read_qrels(self.qrels_path)

    @cached_property
    def qrels(self) -> pd.DataFrame:
        """Relevance judgments (``qid, docno, label``) of this dataset's topics: a qrels file shared
        by several topic sets (folds, years) judges only the topics given here."""
        qrels = self.all_qrels
        return qrels[qrels["qid"].isin(set(self.topics["qid"]))].reset_index(drop=True)

    @cached_property
    def qrels_sha256(self) -> str:
        """The key of evaluations against these qrels: the file's sha256, with the topic ids mixed
        in when the file also judges other topics (two topic sets sharing one qrels file differ)."""
        from ..core.cache import fingerprint
        from ..core.files import sha256_file

        digest = sha256_file(self.qrels_path)
        if len(self.qrels) == len(self.all_qrels):
            return digest
        return fingerprint("qrels-of-topics", digest, sorted(self.topics["qid"]))

    @cached_property
    def judged_topics(self) -> pd.DataFrame:
        """Topics that have at least one judgment; only these are evaluated."""
        qrels = self.qrels
        judged = self.topics[self.topics["qid"].isin(set(qrels["qid"]))].reset_index(drop=True)
        if judged.empty:
            first = self.all_qrels["qid"].iloc[0]
            raise WorkbenchError(f"no query id of the qrels matches a topic of {self.name!r} (the qrels' first "
                                 f"query id is {first!r}; the topics' first is {self.topics['qid'].iloc[0]!r}): "
                                 "wrong topics or qrels file?", self.qrels_path, 1)
        return judged

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
        path = self._run_path(system)
        if not path.is_file():
            raise WorkbenchError(f"official run {system!r} for {self.name} is missing", path)
        return path

    def _run_path(self, system: str) -> Path:
        return self.data_dir / self.spec.official_runs[system]

