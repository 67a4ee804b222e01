"""Datasets by name: the built-in ones, local collections declared in TOML files, ir_datasets
ids (``irds:<id>``) and plugins, all behind :class:`~.dataset.Dataset` and found through one
registry of sources, :data:`SOURCES` (see :mod:`.sources`; plugins: entry point group
``workbench.datasets``).

The built-in names read the data directory laid out like ``../shared/data/msmarco-passage-mini``::

    collection.tsv                 pid<TAB>text
    topics/<name>.tsv              qid<TAB>query
    qrels/<name>.txt               qid iteration pid grade
    runs/<system>.<dataset>.trec   official full-collection candidate runs

Declared datasets come from ``--dataset-file FILE`` (:func:`declare_dataset_files`, which also puts the
files in ``$WORKBENCH_DATASET_FILES`` so worker processes see them) and from every
``datasets/*.toml`` under the working directory (see :mod:`.declared`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..core.errors import WorkbenchError
from .dataset import (DATA_ENV, DEFAULT_DATA_DIRS, HOW_TO_GET_DATA, OFFICIAL_DL_SYSTEMS, STANDARD_METRICS, TREC_DL_METRICS, Dataset,
                      DatasetSpec, resolve_data_dir)
from .sources import DatasetSource, DatasetSources

__all__ = ["DATASETS", "DATA_ENV", "DEFAULT_DATA_DIRS", "HOW_TO_GET_DATA", "OFFICIAL_DL_SYSTEMS", "STANDARD_METRICS",
           "Dataset", "DatasetSpec", "DATASET_FILES_ENV", "IRDS_PREFIX", "SOURCES", "declare_dataset_files",
           "declared_dataset_files", "declared_datasets", "get_dataset", "known_dataset_names", "relevance_level_of",
           "resolve_data_dir"]

log = logging.getLogger(__name__)

DATASET_FILES_ENV = "WORKBENCH_DATASET_FILES"
DECLARED_DIR = "datasets"
IRDS_PREFIX = "irds:"
TREC_DL_COMPARABILITY = "comparable with published TREC DL {year} passage figures (full-collection candidates, NIST qrels)"


def _dl_runs(suffix: str) -> dict[str, str]:
    return {system: f"runs/{system}.{suffix}.trec" for system in OFFICIAL_DL_SYSTEMS}


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("dl19", "topics/dl19-passage.tsv", "qrels/dl19-passage.txt", 2,
                    "TREC DL 2019 passage (43 judged queries, graded 0-3)", _dl_runs("dl19"),
                    "msmarco-passage/trec-dl-2019/judged", comparability=TREC_DL_COMPARABILITY.format(year=2019),
                    metrics=TREC_DL_METRICS),
        DatasetSpec("dl20", "topics/dl20.tsv", "qrels/dl20-passage.txt", 2,
                    "TREC DL 2020 passage (200 topics, 54 judged, graded 0-3)", _dl_runs("dl20"),
                    "msmarco-passage/trec-dl-2020", comparability=TREC_DL_COMPARABILITY.format(year=2020),
                    metrics=TREC_DL_METRICS),
        DatasetSpec("dev600", "topics/dev600.tsv", "qrels/dev600.txt", 1,
                    "600 MS MARCO dev-small queries with BM25 top-20 candidates (binary)",
                    {"bm25": "runs/bm25-top20.dev600.trec"}, "msmarco-passage/dev/small",
                    comparability="not comparable with full dev-small figures: reranks a BM25 top-20"),
        DatasetSpec("dev-small", "topics/dev-subset.tsv", "qrels/dev-subset.txt", 1,
                    "MS MARCO dev small (6,980 queries, binary)", {}, "msmarco-passage/dev/small",
                    comparability="comparable with published MS MARCO dev-small figures (full-collection candidates)"),
    )
}


def declare_dataset_files(paths: list[str | Path]) -> None:
    """Declare the datasets of these TOML files for this process and the processes it starts."""
    known = [p for p in os.environ.get(DATASET_FILES_ENV, "").split(os.pathsep) if p]
    for path in paths:
        resolved = str(Path(path).expanduser().resolve())
        if not Path(resolved).is_file():
            raise WorkbenchError("dataset file not found", path)
        if resolved not in known:
            known.append(resolved)
    os.environ[DATASET_FILES_ENV] = os.pathsep.join(known)


#: the checkout's own dataset files, found from any working directory (notebooks/, tests)
_REPO_DECLARED = Path(__file__).resolve().parents[2] / DECLARED_DIR


def declared_dataset_files() -> list[Path]:
    """The dataset files in effect: ``$WORKBENCH_DATASET_FILES``, then ``./datasets/*.toml``, then
    the checkout's ``datasets/*.toml`` (when the working directory is elsewhere in it, or outside)."""
    files = [Path(p) for p in os.environ.get(DATASET_FILES_ENV, "").split(os.pathsep) if p]
    for directory in dict.fromkeys([Path(DECLARED_DIR).resolve(), _REPO_DECLARED]):
        if directory.is_dir():
            files += sorted(p.resolve() for p in directory.glob("*.toml") if p.resolve() not in files)
    return files


def declared_datasets() -> dict[str, Path]:
    """Declared dataset names and their files (``--dataset-file`` wins over ``./datasets/``)."""
    from .declared import declared_name

    names: dict[str, Path] = {}
    for path in declared_dataset_files():
        name = declared_name(path)
        if name in DATASETS:  # never shadows a built-in; one bad file does not break the others
            log.warning("%s: dataset %r is built in: this declaration is ignored (rename it)", path, name)
            continue
        if name in names and names[name] != path:
            log.warning("%s: dataset %r is also declared in %s, which wins", path, name, names[name])
        names.setdefault(name, path)  # --dataset-file wins over ./datasets/
    return names


def _builtin(name: str, data_dir: str | Path | None) -> Dataset | None:
    return Dataset(DATASETS[name], resolve_data_dir(data_dir)) if name in DATASETS else None


def _irds(name: str, data_dir: str | Path | None) -> Dataset | None:
    if not name.startswith(IRDS_PREFIX):
        return None
    from .irds import irds_dataset

    return irds_dataset(name[len(IRDS_PREFIX):])


def _declared(name: str, data_dir: str | Path | None) -> Dataset | None:
    declared = declared_datasets()
    if name not in declared:
        return None
    from .declared import load_declared

    return load_declared(declared[name])


#: every source of dataset names, asked in this order; plugins (entry point group
#: ``workbench.datasets``) come after these
SOURCES = DatasetSources()
SOURCES.add(DatasetSource("built in", _builtin, lambda: list(DATASETS)))
SOURCES.add(DatasetSource("ir_datasets", _irds, pattern=f"{IRDS_PREFIX}<ir_datasets id>"))
SOURCES.add(DatasetSource("declared", _declared, lambda: sorted(declared_datasets())))


def known_dataset_names() -> list[str]:
    """The built-in names, the declared ones and the plugins' (ir_datasets ids are open-ended: ``irds:<id>``)."""
    return SOURCES.names()


def get_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """A dataset by name: built in (``dl19``, ``dl20``, ``dev600``, ``dev-small``), ``irds:<ir_datasets
    id>``, declared in a dataset file, or a plugin's (the first source that knows the name)."""
    return SOURCES.get(name, data_dir)


def relevance_level_of(name: str) -> int:
    """The relevance level of a dataset by name; 1 for a name that is no dataset (e.g. a training
    source such as ``msmarco-train``)."""
    if name in DATASETS:
        return DATASETS[name].relevance_level
    try:
        return get_dataset(name).relevance_level
    except WorkbenchError:
        return 1
