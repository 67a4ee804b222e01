"""The facade: one object that produces, evaluates, compares and ranks systems by name.

    from workbench.experiment import Workbench

    bench = Workbench()                                   # data directory found as the CLI finds it
    bench = Workbench(engine=RayEngine())                 # expensive stages on Ray (workbench.engines.ray)
    bench.run_experiment(["dl19"], ["official-bm25", "official-bm25+tfidf"])
    stored = bench.produce("official-bm25+dense-minilm", "dl20")
    comparison = bench.compare("official-bm25", "official-bm25+tfidf", "dl19")

Every method delegates to the experiment modules (:mod:`.systems`, :mod:`.produce`,
:mod:`.runner`); the :class:`~.produce.Session` it holds keeps the expensive state (the
collection, the Lucene index, loaded models) for the whole process.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.compare import Comparison, compare_runs
from ..analysis.query_types import load_query_types
from ..data.collection import Collection
from ..data.datasets import Dataset
from ..evaluation.metrics import HEADLINE_METRICS, Evaluation
from ..report.leaderboard import DEFAULT_LEADERBOARD
from ..rerankers.protocol import Reranker
from .produce import DEFAULT_RERANK_DEPTH, Session
from .runner import (SystemResult, evaluate_stored, leaderboard_row, metrics_for, rebuild_leaderboard,
                     run_experiment, run_system)
from .store import DEFAULT_RUNS_DIR, StoredRun


class Workbench:
    """Produces, stores, evaluates and ranks systems; holds the expensive shared state."""

    def __init__(self, data_dir: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR,
                 leaderboard: str | Path = DEFAULT_LEADERBOARD, rerank_depth: int = DEFAULT_RERANK_DEPTH,
                 threads: int = 0, device: str = "cpu", progress: bool = True, metrics: list[str] | None = None,
                 engine: Any = None):
        self.session = Session(data_dir, runs_dir, rerank_depth=rerank_depth, threads=threads, device=device,
                               progress=progress, engine=engine)
        self.leaderboard = Path(leaderboard)
        #: metrics every dataset is evaluated with; None: each dataset's own headline metrics
        self.metrics = list(metrics) if metrics else None

    @property
    def runs_dir(self) -> Path:
        return self.session.store.runs_dir

    def dataset(self, name: str) -> Dataset:
        return self.session.dataset(name)

    def collection(self, dataset: Dataset) -> Collection:
        return self.session.collection(dataset)

    def index(self, dataset: Dataset):
        """The Lucene index of the dataset's collection (built or reused)."""
        from ..first_stage.lucene import shared_index

        return shared_index(self.collection(dataset), self.session.shared, threads=self.session.threads or None)

    def register(self, name: str, transformer: Any) -> None:
        """Make a PyTerrier transformer a system component named ``name``: a first stage (``name``)
        and a reranker (``official-bm25+name``); its identity keys its runs (:mod:`workbench.pyterrier`)."""
        register_transformer(name, transformer)
        for cache in (self.session._stages, self.session._rerankers):  # built under an earlier registration
            for key in [key for key in cache if key[0] == name]:
                del cache[key]

    def reranker(self, spec: str, dataset: Dataset) -> Reranker:
        return self.session.reranker(spec, dataset)

    def produce(self, system: str, dataset_name: str) -> StoredRun:
        """The stored run of ``system`` on a dataset, computed unless an identical one is stored."""
        return self.session.produce(system, dataset_name)

    def evaluate(self, stored: StoredRun, dataset_name: str, **manifest_fields: Any) -> Evaluation:
        """Evaluate a stored run and record the evaluation in its manifest."""
        return evaluate_stored(self.session, stored, dataset_name, self.metrics_for(dataset_name), **manifest_fields)

    def run_system(self, system: str, dataset_name: str) -> SystemResult:
        """Produce (or reuse) and evaluate a system; its manifest records this invocation."""
        return run_system(self.session, system, dataset_name, self.metrics_for(dataset_name))

    def leaderboard_row(self, result: SystemResult, sliced: dict[str, Any] | None = None) -> dict[str, Any]:
        return leaderboard_row(self.session, result, self.metrics_for(result.dataset), sliced)

    def rebuild_leaderboard(self, query_types: str | Path | None = None, correction: str = "holm",
                            write: bool = True) -> pd.DataFrame:
        """Recompute every leaderboard row from stored runs, qrels and labels alone (no model call)."""
        return rebuild_leaderboard(self.session, self.leaderboard, self.metrics, query_types=query_types,
                                   correction=correction, write=write)

    def metrics_for(self, dataset_name: str) -> list[str]:
        """The metrics ``dataset_name`` is evaluated with (``metrics``, else the dataset's own)."""
        return metrics_for(self.session, dataset_name, self.metrics)

    def run_experiment(self, datasets: list[str], systems: list[str], baseline: str | None = None,
                       query_types: str | Path | None = None, correction: str = "holm",
                       pools: dict[str, list[str]] | None = None) -> pd.DataFrame:
        """Every (dataset, system) produced, evaluated and sliced, with significance against the
        baselines; with ``pools`` (name -> datasets) also rows over the pooled datasets' queries;
        the leaderboard is updated and the new rows returned."""
        return run_experiment(self.session, datasets, systems, self.metrics, self.leaderboard, baseline=baseline,
                              query_types=query_types, correction=correction, pools=pools)

    def best_reranker(self, dataset_name: str, board: pd.DataFrame | None = None) -> str | None:
        """The reranked system (``<candidates>+<reranker>``) with the best headline metrics on the
        dataset's leaderboard (its headline metrics in order: MRR@10, then NDCG@5 on TREC DL; MAP,
        then P@30 on CACM; ``all`` slice), or None when there is none."""
        from ..report.inspection import best_system
        from ..report.leaderboard import read_leaderboard
        from .systems import is_reranked

        from ..core.errors import WorkbenchError
        from ..report.inspection import view_metrics

        board = read_leaderboard(self.leaderboard) if board is None else board
        if board.empty:
            return None
        try:  # the dataset's own headline metrics (CACM: MAP, P@30)
            declared = self.dataset(dataset_name).metrics
        except WorkbenchError:  # a pool: TREC DL's
            declared = list(HEADLINE_METRICS)
        headline = view_metrics(board[board["dataset"] == dataset_name], declared)[1]
        return best_system(board, dataset_name, metrics=headline, eligible=is_reranked)

    def compare(self, a: str, b: str, dataset_name: str, metric: str = "ndcg@10", top: int = 5,
                passages: int = 3) -> Comparison:
        """Per-query gains and losses of system ``b`` against system ``a``."""
        dataset = self.dataset(dataset_name)
        metrics = self.metrics_for(dataset_name)
        metrics = metrics if metric in metrics else [*metrics, metric]  # any metric name, not only the board's
        results = {name: run_system(self.session, name, dataset_name, metrics) for name in (a, b)}
        return compare_runs(dataset, a, b, {name: r.evaluation for name, r in results.items()},
                            {name: r.stored.run for name, r in results.items()}, load_query_types(dataset),
                            self.collection(dataset), metric, top, passages)


def register_transformer(name: str, transformer: Any) -> None:
    """Register a PyTerrier transformer under ``name`` as both a first stage (``name`` alone in a
    system) and a reranker (``<candidates>+name``); registering the name again replaces it."""
    import re

    from ..core.errors import WorkbenchError
    from ..core.pyterrier import is_transformer
    from ..core.registry import Entry
    from ..first_stage.pyterrier_stage import PyTerrierFirstStage
    from ..first_stage.registry import FIRST_STAGES
    from ..rerankers.pyterrier_stage import PyTerrierReranker
    from ..rerankers.registry import REGISTRY

    if not is_transformer(transformer):
        raise WorkbenchError(f"{name!r}: expected a PyTerrier transformer, got {type(transformer).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name.endswith("-"):
        raise WorkbenchError(f"PyTerrier system name {name!r}: use letters, digits, '.', '_' and '-'")
    factories = ((FIRST_STAGES, lambda context, **_: PyTerrierFirstStage(name, transformer, context)),
                 (REGISTRY, lambda context, **_: PyTerrierReranker(name, transformer)))
    for registry, _ in factories:  # checked in both before either changes
        registry.load_builtins()
        if name in registry._entries and registry._entries[name].source != "pyterrier":
            raise WorkbenchError(f"{name!r} is already a {registry.kind} ({registry._entries[name].source}); "
                                 "register the transformer under another name")
    for registry, factory in factories:
        if name in registry._entries:
            registry.unregister(name)
        registry.add(Entry(name, factory, (), f"PyTerrier {transformer!r}"[:200], source="pyterrier"))
