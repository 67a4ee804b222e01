"""Producing runs: one path for every system — configuration key, reuse a stored run with that
key or compute it, save it with its manifest — and the :class:`Session` holding what is
expensive to build and shared across systems and datasets (the collection, loaded models,
first stages and their indexes, the score cache, the run store)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..core.files import sha256_file
from ..data.collection import Collection
from ..data.datasets import Dataset, get_dataset
from ..data.leakage import check_no_leakage
from ..first_stage.protocol import FirstStage, StageContext
from ..first_stage.registry import get_first_stage
from ..rerankers.protocol import RerankContext, Reranker
from ..rerankers.registry import REGISTRY as RERANKERS
from ..rerankers.registry import get_reranker
from .store import DEFAULT_RUNS_DIR, RunStore, StoredRun
from .systems import System, parse_system

DEFAULT_RERANK_DEPTH = 100


def produce(system: System | str, dataset: Dataset, session: "Session") -> StoredRun:
    """The stored run of ``system`` on ``dataset``: reused when a stored run carries the same
    configuration key (and its file is intact), else computed, saved atomically and recorded
    in a manifest (configuration, candidates, versions, wall time, pairs scored, ...)."""
    system = parse_system(system)
    config = system.config(session, dataset)
    stored = session.store.load_reusable(dataset.name, system.name, config.key)
    if stored:
        return stored
    # another process may be computing this very run: wait for it, then reuse what it stored
    with session.store.lock(dataset.name, system.name):
        stored = session.store.load_reusable(dataset.name, system.name, config.key)
        return stored or _compute_and_save(system, dataset, session, config)


def _compute_and_save(system: System, dataset: Dataset, session: "Session", config) -> StoredRun:
    started = time.perf_counter()
    computed = system.compute(session, dataset, config)
    if computed.run.empty:
        raise WorkbenchError(f"system {system.name!r} produced an empty run on {dataset.name}")
    details: dict[str, Any] = {"candidates": computed.candidates,
                               "wall_time_s": round(time.perf_counter() - started, 3), "pairs_scored": 0}
    details.update(computed.details)
    return session.store.save(computed.run, dataset.name, system.name, {**config.config, **computed.config},
                              config.key, **details)


class Session:
    """Shared state of one process: datasets, the collection, models, first stages, the score
    cache and the run store. Everything is built lazily, once."""

    def __init__(self, data_dir: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR,
                 rerank_depth: int = DEFAULT_RERANK_DEPTH, threads: int = 0, device: str = "cpu",
                 progress: bool = True, engine: Any = None):
        self.data_dir = data_dir
        #: where the expensive stages run: None (here) or a :class:`~workbench.engines.ray.RayEngine`;
        #: it never changes a run's key: a run computed on Ray is the run computed here
        self.engine = engine
        self.store = RunStore(runs_dir)
        self.rerank_depth = rerank_depth
        self.threads = threads
        self.device = device
        self.progress = progress
        #: memo of expensive objects first stages share (Lucene index, searchers, faiss indexes)
        self.shared: dict[Any, Any] = {}
        self._datasets: dict[str, Dataset] = {}
        self._collections: dict[str, Collection] = {}
        self._rerankers: dict[tuple[str, str | None], Reranker] = {}
        self._leakage_checked: set[tuple[str, str]] = set()
        self._stages: dict[tuple[str, str], FirstStage] = {}
        self._topics_sha256: dict[Path, str] = {}
        self._score_cache = None

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = get_dataset(name, self.data_dir)
        return self._datasets[name]

    def collection(self, dataset: Dataset) -> Collection:
        """The dataset's document texts, built once per collection (datasets may share one)."""
        key = dataset.collection_key
        if key not in self._collections:
            self._collections = {key: dataset.collection()}  # one collection in memory at a time
        return self._collections[key]

    def topics_sha256(self, dataset: Dataset) -> str:
        if dataset.topics_path not in self._topics_sha256:
            self._topics_sha256[dataset.topics_path] = sha256_file(dataset.topics_path)
        return self._topics_sha256[dataset.topics_path]

    def reranker(self, spec: str, dataset: Dataset) -> Reranker:
        """The reranker ``spec`` names, built once per process (a learned first stage shares it);
        one built for a single dataset (a fold model) is kept per dataset. A model trained here is
        checked against the dataset's queries before it is used on them (the leakage guard)."""
        checked_dirs: set[Path] = set()  # each model directory's record is read once per dataset
        if (spec, dataset.name) not in self._leakage_checked:
            # a model trained here, named by path: checked before it is even loaded
            _, values = RERANKERS.parse(spec)
            model = values.get("model")
            if isinstance(model, str) and Path(model).expanduser().is_dir():
                check_no_leakage(Path(model).expanduser(), dataset)
                checked_dirs.add(Path(model).expanduser().resolve())
        reranker = self._rerankers.get((spec, dataset.name)) or self._rerankers.get((spec, None))
        if reranker is None:
            context = RerankContext(collection=self.collection(dataset), dataset=dataset, device=self.device)
            reranker = get_reranker(spec, context)
            self._rerankers[(spec, dataset.name if reranker.per_dataset else None)] = reranker
        directory = getattr(reranker, "directory", None)
        if directory is not None and (spec, dataset.name) not in self._leakage_checked:
            already = getattr(reranker, "leakage_checked_for", None) == dataset.name
            if not already and Path(directory).resolve() not in checked_dirs:
                check_no_leakage(directory, dataset)
            self._leakage_checked.add((spec, dataset.name))
        return reranker

    def first_stage(self, spec: str, dataset: Dataset) -> FirstStage:
        """The first stage ``spec`` names, for ``dataset`` (built once per process and dataset)."""
        key = (spec, dataset.name)
        if key not in self._stages:
            context = StageContext(collection=self.collection(dataset), dataset=dataset, device=self.device,
                                   threads=self.threads, progress=self.progress,
                                   models=lambda model_spec: self.reranker(model_spec, dataset), shared=self.shared,
                                   engine=self.engine)
            try:
                self._stages[key] = get_first_stage(spec, context)
            except WorkbenchError as error:
                if str(error).startswith("unknown first stage"):
                    raise WorkbenchError(f"unknown system {spec!r}: a system is a first stage (see `workbench "
                                         "first-stages`), <system>+<reranker> or rrf[<system>|<system>]; "
                                         f"{error}") from None
                raise
        return self._stages[key]

    def remote(self, spec: str, dataset: Dataset, model: Any) -> Any:
        """The engine bound to the model ``spec`` names on ``dataset`` (None when it runs here)."""
        if self.engine is None:
            return None
        return self.engine.bind(spec, dataset, self.device, model)

    def start_engine_account(self) -> None:
        """Forget what the engine did so far: the next :meth:`engine_fields` describe only what
        runs from now on (a run's own work, not its candidates')."""
        if self.engine is not None:
            self.engine.take_reports()

    def engine_fields(self) -> dict[str, Any]:
        """Manifest fields saying where the work since :meth:`start_engine_account` ran: the
        engine, its workers, and each worker's throughput per stage (on Ray)."""
        from ..engines.ray import manifest_fields

        reports = self.engine.take_reports() if self.engine is not None else []
        return manifest_fields(reports, self.engine)

    def score_cache(self):
        if self._score_cache is None:
            from ..rerankers.score_cache import ScoreCache

            self._score_cache = ScoreCache()
        return self._score_cache

    def produce(self, system: System | str, dataset_name: str) -> StoredRun:
        """The stored run of ``system`` on a dataset (see :func:`produce`)."""
        return produce(system, self.dataset(dataset_name), self)
