"""Depth against cost: one reranked system at several reranking depths k, each depth a stored run.

:func:`depth_analysis` produces the run of ``<candidates>+<reranker>`` reranking the top k of the
same candidates for every k, through the one produce path (:func:`~.produce.produce`), deepest
first: the deepest run scores its pairs (or is reused when stored) and fills the score cache, and
every shallower run reads its scores from that cache, since its pairs are a subset of the
deepest's (the top k of the same candidates, cut in trec_eval's tie order). No pair is scored
twice; each run records what it scored and read in its manifest, and the report what this
invocation scored.

Every depth ranks the same documents: a depth-k run is the top k reranked, followed by the
candidates ranked k+1 to the deepest depth in the candidate run's order, scored strictly below the
reranked block (:func:`fill_below_depth`; :class:`DepthFilledSystem`, whose key says so). A
shallower depth is so penalised by reranking less, not by holding fewer documents.

Each depth is a stored run of its own: the depth is in a run's configuration key, but the run
store names files by system name, so two depths cannot share a directory. The deepest depth, when
it is the one the session reranks at by default (``Session.rerank_depth``, what ``workbench eval``
stores), is that very run in the session's store, where ``make eval`` finds (and leaves) it; every
other depth k lives in a store of its own, ``<runs-dir>/depth/k<k>/<dataset>/``.

Time per query: scoring a pair twice to time it would break the rule above, so a depth whose run
scored all its pairs reports its own measured rerank time, and every other depth the measured
seconds per scored pair of the run that scored most (the deepest, normally) times its own pairs
per query; the ``time_source`` column says which. The candidates' time per query is that of their
stored run's manifest.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..data.datasets import Dataset
from ..data.trec import sort_run
from ..evaluation.depth_stats import DepthChoice, depth_statistics, smallest_sufficient_depth
from ..evaluation.metrics import Evaluation, evaluate_cached
from ..evaluation.stats import DEFAULT_ALPHA, DEFAULT_CORRECTION
from .produce import Session, produce
from .runner import metrics_for, parse_pools
from .store import RunStore, StoredRun
from .system_base import Computed, RunConfig, SystemContext
from .systems import RerankedSystem, parse_system

log = logging.getLogger(__name__)

DEFAULT_DEPTHS = (5, 10, 20, 50, 100)
#: reported besides each dataset's headline metrics, and the metric a bare equivalence margin is on
DEPTH_METRIC = "ndcg@10"


def check_depths(depths: Iterable[Any]) -> tuple[int, ...]:
    """The depths as distinct positive integers, deepest first; one-line error otherwise."""
    checked: set[int] = set()
    for value in depths:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise WorkbenchError(f"depth {value!r} is not a positive integer (e.g. 5,10,20,50,100)")
        checked.add(int(text))
    if not checked:
        raise WorkbenchError("no depth given: name one or more positive integers (e.g. 5,10,20,50,100)")
    return tuple(sorted(checked, reverse=True))


def depth_store(session: Session, depth: int, deepest: int | None = None) -> RunStore:
    """Where the runs at ``depth`` (of an analysis down to ``deepest``, default ``depth``) are
    stored: the session's store when ``depth`` is the deepest and the session's own rerank depth
    (the runs ``workbench eval`` stores), else ``<runs-dir>/depth/k<depth>``."""
    if depth == session.rerank_depth and depth >= (deepest or depth):
        return session.store
    return RunStore(session.store.runs_dir / "depth" / f"k{depth}")


def fill_below_depth(reranked: pd.DataFrame, candidates: pd.DataFrame, depth: int, deepest: int) -> pd.DataFrame:
    """``reranked`` (the top ``depth`` reranked) followed, per query, by the candidates ranked
    ``depth``+1 to ``deepest`` in the candidates' order, scored strictly below the reranked block
    (its lowest score minus 1, 2, ...: whole steps survive the run file's six decimals)."""
    floor = reranked.groupby("qid", sort=False)["score"].min()
    qids = candidates["qid"].astype(str)
    below = candidates[(candidates["rank"] > depth) & (candidates["rank"] <= deepest) & qids.isin(floor.index)]
    below = below.assign(qid=below["qid"].astype(str)).sort_values(["qid", "rank"], kind="mergesort")
    base = below["qid"].map(floor).to_numpy(dtype=np.float64)
    step = np.maximum(1.0, np.abs(base) * 2.0 ** -20)  # still a step where the scores are huge
    scores = base - step * (below.groupby("qid", sort=False).cumcount().to_numpy() + 1)
    filled = pd.DataFrame({"qid": below["qid"].to_numpy(), "docno": below["docno"].astype(str).to_numpy(),
                           "score": scores})
    return sort_run(pd.concat([reranked[["qid", "docno", "score"]], filled], ignore_index=True))


@dataclass(frozen=True)
class DepthFilledSystem(RerankedSystem):
    """A reranked system at a depth k below ``fill_to``: the top k reranked (``rerank_run`` as
    ``workbench eval`` runs it), then the candidates ranked k+1..``fill_to`` in their own order,
    below (:func:`fill_below_depth`). The key names the filling, so a run without it (a truncated
    depth run stored before) is never reused; the manifest's ``pairs`` stays the reranked pairs."""

    fill_to: int = 0

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        config = super().config(session, dataset)
        settings = {**config.config, "below_depth": "candidates in their own order, scored below",
                    "fill_to": self.fill_to}
        return RunConfig(settings, fingerprint(settings), config.inputs)

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        computed = super().compute(session, dataset, config)
        run = fill_below_depth(computed.run, config.inputs["candidates"].run, session.rerank_depth, self.fill_to)
        details = {**computed.details, "fill_to": self.fill_to, "filled": len(run) - len(computed.run)}
        return Computed(run, computed.candidates, details, computed.config)


class _AtDepth:
    """The session as one reranked system sees it at another depth: its own ``rerank_depth`` and
    run store; everything else (datasets, models, the score cache, the candidates' production,
    which stays at the session's depth) is the session's."""

    def __init__(self, session: Session, depth: int, deepest: int):
        self._session = session
        self.rerank_depth = depth
        self.store = depth_store(session, depth, deepest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@dataclass
class DepthRun:
    """One stored depth run and what this invocation did for it: ``pairs_scored`` and
    ``cache_hits`` are 0 when the stored run was reused (nothing was read or scored)."""

    dataset: str
    depth: int
    stored: StoredRun
    evaluation: Evaluation
    pairs_scored: int
    cache_hits: int
    seconds: float

    @property
    def pairs(self) -> int:
        """Reranked pairs in the run (not the candidates filled in below k), from its manifest."""
        return int(self.stored.manifest.get("pairs") or len(self.stored.run))

    @property
    def queries(self) -> int:
        return int(self.stored.manifest.get("queries") or self.stored.run["qid"].nunique())


@dataclass
class DepthReport:
    """The depth analysis of one system: ``table`` (one row per dataset or pool and depth:
    metrics with CIs, tests against the deepest, pairs and time per query), ``choices`` (per
    dataset and metric, :class:`~workbench.evaluation.depth_stats.DepthChoice`) and the runs."""

    system: str
    candidates: str
    depths: tuple[int, ...]
    datasets: list[str]
    metrics: list[str]
    margins: dict[str, float]
    alpha: float
    correction: str
    table: pd.DataFrame
    choices: dict[str, list[DepthChoice]]
    runs: list[DepthRun] = field(default_factory=list)
    cpu: str = ""
    #: what the reader must know about this invocation (a shallower depth that had to score pairs)
    notes: list[str] = field(default_factory=list)

    @property
    def deepest(self) -> int:
        return self.depths[0]

    def summary(self) -> pd.DataFrame:
        """One row per dataset and metric: the smallest sufficient depth and its verdict."""
        rows = [{"dataset": dataset, "metric": c.metric, "deepest": c.deepest, "smallest_not_worse": c.not_worse,
                 "margin": c.margin, "equivalent": c.equivalent, "smallest_equivalent": c.smallest_equivalent,
                 "verdict": c.verdict} for dataset, choices in self.choices.items() for c in choices]
        return pd.DataFrame(rows)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """depth.csv, depth-summary.csv, depth.md and depth.png under ``out_dir`` (atomically)."""
        from ..report.depth_report import write_depth_report

        return write_depth_report(self.table, self.summary(), out_dir, system=self.system, candidates=self.candidates,
                                  metrics=self.metrics, margins=self.margins, alpha=self.alpha,
                                  correction=self.correction, cpu=self.cpu, notes=self.notes)


def depth_analysis(session: Session, system: str, datasets: Iterable[str], depths: Iterable[Any] = DEFAULT_DEPTHS,
                   pools: Mapping[str, list[str]] | None = None, metrics: list[str] | None = None,
                   equivalence_margin: float | None = None, equivalence_metric: str = DEPTH_METRIC,
                   alpha: float = DEFAULT_ALPHA, correction: str = DEFAULT_CORRECTION) -> DepthReport:
    """Rerank the top k of ``system``'s candidates for every k in ``depths`` on every dataset (the
    candidates below k, down to the deepest k, following in their own order), and compare each
    depth with the deepest (see the module docstring).

    ``datasets`` and ``pools`` (``{"dl19+dl20": ["dl19", "dl20"]}``) as in ``workbench eval``;
    ``metrics`` default: the datasets' headline metrics and NDCG@10 (and ``equivalence_metric``).
    With ``equivalence_margin`` each shallower depth is also tested for equivalence with the deepest
    on ``equivalence_metric`` (TOST at ``alpha``). Bad input (a system that reranks nothing, a depth
    that is not a positive integer or above the candidate run's depth) is one line, before any
    reranking."""
    parsed = parse_system(system)
    if not isinstance(parsed, RerankedSystem):
        raise WorkbenchError(f"{system!r} reranks nothing: the depth analysis needs a reranked system "
                             "<candidates>+<reranker> (e.g. official-bm25+dense-minilm)")
    depths = check_depths(depths)
    datasets = list(dict.fromkeys(datasets))
    for name in datasets:
        session.dataset(name)  # an unknown dataset fails before any work
    pools = parse_pools(dict(pools or {}), session)
    datasets = list(dict.fromkeys(datasets + [member for members in pools.values() for member in members]))
    if not datasets:
        raise WorkbenchError("no dataset given")
    given = bool(metrics)
    metrics = list(metrics) if metrics else _default_metrics(session, datasets)
    margins = {}
    if equivalence_margin is not None:
        if equivalence_metric not in metrics and not given:  # the default metrics grow by the one asked about
            metrics.append(equivalence_metric)
        if equivalence_metric not in metrics:
            raise WorkbenchError(f"equivalence on {equivalence_metric}, which the depth analysis does not "
                                 f"evaluate ({', '.join(metrics)})")
        margins[equivalence_metric] = equivalence_margin
    candidates = {name: session.produce(parsed.candidates, name) for name in datasets}
    for name, stored in candidates.items():
        available = int(stored.run.groupby("qid").size().max())
        if depths[0] > available:
            raise WorkbenchError(f"depth {depths[0]} is above the candidate run's depth: {parsed.candidates.name} "
                                 f"has at most {available} candidates per query on {name}")
    runs = [_depth_run(session, parsed, name, depth, depths[0], metrics) for name in datasets for depth in depths]
    whole_lists = bool(getattr(session.reranker(parsed.reranker, session.dataset(datasets[0])), "scores_whole_lists",
                               False))
    notes = _scoring_notes(session, runs, depths[0], whole_lists)
    for note in notes:
        log.warning("%s", note)
    per_query = {name: {run.depth: run.evaluation.per_query[metrics] for run in runs if run.dataset == name}
                 for name in datasets}
    for pool, members in pools.items():
        per_query[pool] = {depth: pd.concat([per_query[m][depth] for m in members]) for depth in depths}
    groups = {name: [name] for name in datasets} | {pool: list(members) for pool, members in pools.items()}
    tables, choices = [], {}
    for name, members in groups.items():
        table = depth_statistics(per_query[name], metrics, margins, alpha=alpha, correction=correction)
        costs = _costs([run for run in runs if run.dataset in members], candidates, members)
        table = table.merge(costs, on="depth", how="left")
        table.insert(0, "dataset", name)
        table.insert(1, "pooled", "+".join(members) if name in pools else "")
        tables.append(table)
        choices[name] = [smallest_sufficient_depth(table, metric) for metric in metrics]
    from ..models.calibration import cpu_signature

    return DepthReport(system, parsed.candidates.name, depths, datasets, metrics, margins, alpha, correction,
                       pd.concat(tables, ignore_index=True), choices, runs, cpu_signature()["cpu"], notes)


def _scoring_notes(session: Session, runs: list[DepthRun], deepest: int, whole_lists: bool) -> list[str]:
    """Why a shallower depth scored pairs: its pairs are the deepest's, so their scores were not in
    this process's score cache (the deepest run was stored by a process with another cache, or the
    cache was cleared since), or the reranker scores whole lists (a score depends on the list)."""
    notes = []
    for run in runs:
        if run.depth < deepest and run.pairs_scored and whole_lists:
            notes.append(f"{run.dataset}: k={run.depth} scored {run.pairs_scored} pairs: the reranker scores whole "
                         f"lists, and the top {run.depth} is another list than the top {deepest}")
        elif run.depth < deepest and run.pairs_scored:
            notes.append(f"{run.dataset}: k={run.depth} scored {run.pairs_scored} pairs: the stored k={deepest} run's "
                         f"scores are not in this score cache ({session.score_cache().path}); it was computed with "
                         "another WORKBENCH_CACHE, or the cache was cleared")
    return notes


def _default_metrics(session: Session, datasets: list[str]) -> list[str]:
    """The datasets' headline metrics (each one's first two, in order) and NDCG@10."""
    headline = [metric for name in datasets for metric in metrics_for(session, name, None)[:2]]
    return list(dict.fromkeys(headline + [DEPTH_METRIC]))


def _depth_run(session: Session, system: RerankedSystem, dataset_name: str, depth: int, deepest: int,
               metrics: list[str]) -> DepthRun:
    """Produce (or reuse) the run at ``depth`` (filled down to ``deepest`` when shallower) and evaluate it."""
    started = time.perf_counter()
    dataset = session.dataset(dataset_name)
    if depth < deepest:
        system = DepthFilledSystem(system.name, system.candidates, system.reranker, fill_to=deepest)
    stored = produce(system, dataset, _AtDepth(session, depth, deepest))
    seconds = time.perf_counter() - started
    scored = 0 if stored.reused else int(stored.manifest.get("pairs_scored") or 0)
    hits = 0 if stored.reused else int(stored.manifest.get("cache_hits") or 0)
    evaluation = evaluate_cached(stored.run, stored.manifest["sha256"], dataset.qrels, dataset.qrels_sha256,
                                 dataset.relevance_level, metrics)
    return DepthRun(dataset_name, depth, stored, evaluation, scored, hits, seconds)


def _rerank_seconds(manifest: Mapping[str, Any]) -> float:
    return float(manifest.get("rerank_s") or manifest.get("wall_time_s") or 0.0)


def _costs(runs: list[DepthRun], candidates: Mapping[str, StoredRun],
           members: list[str]) -> pd.DataFrame:
    """Per depth, over ``members``: pairs, what this invocation scored and read, and time per
    query (measured, or derived from a measured run; see the module docstring)."""
    queries = {m: next(run.queries for run in runs if run.dataset == m) for m in members}
    candidate_s = sum(float(candidates[m].manifest.get("wall_time_s") or 0.0) for m in members)
    rate: dict[str, tuple[float, DepthRun] | None] = {}
    for member in members:  # seconds per scored pair of the run (of this dataset) that scored most
        measured = [run for run in runs if run.dataset == member and int(run.stored.manifest.get("pairs_scored") or 0)]
        best = max(measured, key=lambda run: (int(run.stored.manifest["pairs_scored"]), run.depth), default=None)
        rate[member] = None if best is None else (
            _rerank_seconds(best.stored.manifest) / int(best.stored.manifest["pairs_scored"]), best)
    rows = []
    for depth in sorted({run.depth for run in runs}, reverse=True):
        mine = [run for run in runs if run.depth == depth]
        seconds, sources, bases = 0.0, [], set()
        for run in mine:
            manifest = run.stored.manifest
            scored_all = int(manifest.get("pairs_scored") or 0) >= run.pairs > 0
            if scored_all:
                seconds += _rerank_seconds(manifest)
                bases.add("measured")
                sources.append(f"{run.dataset}: measured ({run.pairs} pairs scored in "
                               f"{_rerank_seconds(manifest):.1f} s)")
            elif rate[run.dataset] is not None:
                per_pair, source = rate[run.dataset]
                seconds += per_pair * run.pairs
                bases.add(f"derived from k={source.depth}")
                sources.append(f"{run.dataset}: {run.pairs} pairs x {per_pair * 1000:.3f} ms/pair measured "
                               f"at k={source.depth}")
            else:
                seconds = float("nan")
                bases.add("not measured")
                sources.append(f"{run.dataset}: not measured (every pair came from the score cache)")
        total_queries = sum(queries.values())
        rerank_ms = 1000 * seconds / total_queries
        rows.append({"depth": depth, "queries_in_run": total_queries,
                     "pairs": sum(run.pairs for run in mine),
                     "pairs_per_query": sum(run.pairs for run in mine) / total_queries,
                     "pairs_scored": sum(run.pairs_scored for run in mine),
                     "cache_hits": sum(run.cache_hits for run in mine),
                     "reused": all(run.stored.reused for run in mine),
                     "rerank_ms_per_query": rerank_ms,
                     "candidates_ms_per_query": 1000 * candidate_s / total_queries,
                     "ms_per_query": rerank_ms + 1000 * candidate_s / total_queries,
                     "time_basis": " + ".join(sorted(bases)),
                     "time_source": "; ".join(sources),
                     "run_path": ";".join(str(run.stored.path) for run in mine)})
    return pd.DataFrame(rows)
