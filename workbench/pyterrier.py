"""PyTerrier in and out: the workbench as the evaluation layer over PyTerrier pipelines.
**In.** Any PyTerrier transformer is a workbench first stage or reranker, by name::

    bench = Workbench()
    bench.register("my-bm25", my_pipeline)             # a retriever: qid, query -> qid, docno, score
    bench.register("my-reranker", my_reranker)         # reads qid, query, docno, text, score, rank
    bench.run_experiment(["dl19"], ["my-bm25", "official-bm25+my-reranker"])

or through the plugin entry points (``workbench.first_stages`` / ``workbench.rerankers``) with a
transformer as the entry point's object. PyTerrier's columns (``qid, query, docno, text, score,
rank``; its ranks count from 0) map to the workbench's (ranks from 1, ties in trec_eval's order).
The transformer's identity (class, the attributes ``pyterrier.inspect`` exposes, recursively; a
function's source; package versions) is part of the run's key and manifest, so a run is reused
like any other and a reranker never scores the same candidate list twice (the score cache holds
its scores per list: a PyTerrier transformer may rank a list as a whole).

**Out.** Any workbench system is a PyTerrier transformer::

    import pyterrier as pt
    from workbench import pyterrier as wpt

    dense = wpt.transformer("official-bm25+dense-minilm", dataset="dl19")
    pt.Experiment([dense, dense % 10], topics, qrels, ["nDCG@10"])
    wpt.experiment([dense, my_pipeline], datasets=["dl19"], names=["dense", "mine"])  # the workbench's rows

:func:`experiment` returns the workbench's sliced leaderboard rows (CIs, exact paired tests with
Holm across the family, MDEs, W/T/L) and writes them to the leaderboard like ``workbench eval``.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import pyterrier as pt

from .core.cache import fingerprint
from .core.errors import WorkbenchError
from .core.pyterrier import to_pyterrier_frame, to_workbench_run, transformer_identity
from .data.trec import sort_run
from .experiment.workbench import register_transformer as register
from .first_stage.pyterrier_stage import PyTerrierFirstStage
from .rerankers.pyterrier_stage import PyTerrierReranker


# -------------------------------------------------------------------------------------------- out

class WorkbenchTransformer(pt.Transformer):
    """A workbench system as a PyTerrier transformer: ``qid, query`` in, the system's run on
    ``dataset`` (computed once, stored, reused) for those queries out."""

    def __init__(self, system: str, dataset: str | None = None, bench: Any = None):
        from .experiment.systems import parse_system

        parse_system(system)  # a bad name fails here, in one line
        self.system = system
        self.dataset = dataset
        self._bench = bench

    @property
    def bench(self):
        if self._bench is None:
            from .experiment import Workbench

            self._bench = Workbench(progress=False)
        return self._bench

    def _dataset_for(self, qids: set[str]) -> str:
        if self.dataset:
            return self.dataset
        from .data.datasets import DATASETS

        for name in DATASETS:
            try:
                judged = set(self.bench.dataset(name).judged_topics["qid"].astype(str))
            except Exception:  # noqa: BLE001 - a dataset that is not here cannot hold the queries
                continue
            if qids <= judged:
                return name
        raise WorkbenchError(f"{self.system}: no built-in dataset has all {len(qids)} queries; pass dataset=")

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        if "qid" not in inp.columns:
            raise WorkbenchError(f"{self.system}: the input has no qid column ({', '.join(map(str, inp.columns))})")
        if "docno" in inp.columns:
            raise WorkbenchError(f"{self.system}: a workbench system retrieves from topics (qid, query); it got "
                                 "candidates (docno): put it first in the pipeline, or register the reranking "
                                 "part with Workbench.register and name the whole system")
        qids = set(inp["qid"].astype(str))
        dataset = self._dataset_for(qids)
        stored = self.bench.produce(self.system, dataset)
        topics = self.bench.dataset(dataset).judged_topics
        unknown = qids - set(topics["qid"].astype(str))
        if unknown:
            raise WorkbenchError(f"{self.system}: {len(unknown)} input queries are not judged queries of {dataset} "
                                 f"(e.g. {sorted(unknown)[0]!r}); the workbench evaluates a dataset's judged queries")
        run = stored.run[stored.run["qid"].astype(str).isin(qids)]
        return to_pyterrier_frame(run, topics, sort_run)

    def __repr__(self) -> str:
        return f"workbench.pyterrier.transformer({self.system!r}, dataset={self.dataset!r})"


def transformer(system: str, dataset: str | None = None, bench: Any = None) -> WorkbenchTransformer:
    """The workbench system ``system`` as a PyTerrier transformer (its run on ``dataset``, or on the
    built-in dataset whose judged queries include the input's)."""
    return WorkbenchTransformer(system, dataset, bench)


def experiment(pipelines: Sequence[Any], datasets: Sequence[str] = ("dl19",), names: Sequence[str] | None = None,
               baseline: int | str | None = None, bench: Any = None, metrics: Sequence[str] | None = None,
               correction: str = "holm", write: bool = True) -> pd.DataFrame:
    """PyTerrier pipelines evaluated the workbench's way: the sliced leaderboard rows (95% CIs,
    exact paired tests against ``baseline`` with ``correction`` across the family, MDEs, W/T/L),
    also written to the workbench's leaderboard like ``workbench eval``.

    A pipeline that is a :func:`transformer` runs as its workbench system; any other is registered
    under its name (``names``, else ``pt-<8 hex digits of its identity>``). ``baseline``: an index into ``pipelines``
    or a name (default: the first)."""
    from .experiment import Workbench

    bench = bench or Workbench(progress=False, metrics=list(metrics) if metrics else None)
    if metrics:
        bench.metrics = list(metrics)
    names = list(names) if names is not None else [None] * len(pipelines)
    if len(names) != len(pipelines):
        raise WorkbenchError(f"{len(names)} names for {len(pipelines)} pipelines")
    systems = []
    for position, (pipeline, name) in enumerate(zip(pipelines, names)):
        if isinstance(pipeline, WorkbenchTransformer):
            systems.append(pipeline.system)
            continue
        # unnamed: a name from its identity, so another pipeline never takes over its runs and rows
        name = name or "pt-" + fingerprint(transformer_identity(pipeline))[:8]
        names[position] = name
        bench.register(name, pipeline)
        systems.append(name)
    if baseline is None:
        baseline_system = systems[0]
    elif isinstance(baseline, int):
        baseline_system = systems[baseline]
    else:
        baseline_system = systems[names.index(baseline)] if baseline in names else baseline
    if write:
        return bench.run_experiment(list(datasets), systems, baseline=baseline_system, correction=correction)
    import tempfile
    from pathlib import Path

    original = bench.leaderboard
    with tempfile.TemporaryDirectory(prefix="workbench-pyterrier-") as scratch:
        bench.leaderboard = Path(scratch) / "leaderboard.csv"  # rows computed, nothing written where it lasts
        try:
            return bench.run_experiment(list(datasets), systems, baseline=baseline_system, correction=correction)
        finally:
            bench.leaderboard = original


__all__ = ["PyTerrierFirstStage", "PyTerrierReranker", "WorkbenchTransformer", "experiment", "register",
           "to_pyterrier_frame", "to_workbench_run", "transformer", "transformer_identity"]
