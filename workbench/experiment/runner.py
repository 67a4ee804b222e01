"""Running an experiment: produce (or reuse) every system's run, evaluate it with ranx, record
the evaluation in its manifest, slice by query type with significance against baselines, and
upsert the leaderboard. :func:`run_experiment` is the whole job as one function."""
from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.query_types import SLICES, load_query_types, slice_reliability
from ..core.errors import WorkbenchError
from ..evaluation.metrics import Evaluation, evaluate_cached, evaluate_run
from ..evaluation.slices import sliced_table
from ..evaluation.stats import DEFAULT_CORRECTION
from ..report.leaderboard import read_leaderboard, sort_board, upsert_rows, write_board
from .produce import Session
from .risk_rows import add_georisk
from .store import StoredRun, update_manifest
from .systems import parse_system

log = logging.getLogger(__name__)


@dataclass
class SystemResult:
    """A system's run on a dataset, its evaluation, and what producing it cost."""

    dataset: str
    system: str
    stored: StoredRun
    evaluation: Evaluation
    seconds_this_time: float
    notes: list[str] = field(default_factory=list)


def evaluate_stored(session: Session, stored: StoredRun, dataset_name: str, metrics: list[str],
                    **manifest_fields: Any) -> Evaluation:
    """Evaluate a stored run; its manifest records the qrels and metrics (plus ``manifest_fields``)
    in one write."""
    dataset = session.dataset(dataset_name)
    qrels_sha256 = dataset.qrels_sha256
    evaluation = evaluate_cached(stored.run, stored.manifest["sha256"], dataset.qrels, qrels_sha256,
                                 dataset.relevance_level, metrics)
    update_manifest(stored.path, qrels={"path": str(dataset.qrels_path), "sha256": qrels_sha256,
                                        "relevance_level": dataset.relevance_level},
                    evaluation={"metrics": evaluation.means, "n_queries": evaluation.n_queries}, **manifest_fields)
    return evaluation


def run_system(session: Session, system: str, dataset_name: str, metrics: list[str]) -> SystemResult:
    """Produce (or reuse) a system's run, evaluate it, and record this invocation in its manifest."""
    started = time.perf_counter()
    stored = session.produce(system, dataset_name)
    # The creation fields (pairs_scored, wall_time_s) describe the run's first computation;
    # last_invocation says what this call cost: 0 pairs scored when the run was reused.
    last_invocation = {
        "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "reused": stored.reused,
        "pairs_scored": 0 if stored.reused else int(stored.manifest.get("pairs_scored") or 0),
        "produce_seconds": round(time.perf_counter() - started, 3)}
    evaluation = evaluate_stored(session, stored, dataset_name, metrics, last_invocation=last_invocation)
    return SystemResult(dataset_name, system, stored, evaluation, time.perf_counter() - started)


def metrics_for(session: Session, dataset_name: str, metrics: list[str] | None) -> list[str]:
    """The metrics a dataset is evaluated with: ``metrics`` when given (``--metrics``), else the
    dataset's own headline metrics (TREC DL: MRR@10, NDCG@5, ...; CACM: MAP, P@30, NDCG@10)."""
    return list(metrics) if metrics else session.dataset(dataset_name).metrics


def row_comparability(manifest: dict[str, Any], dataset: Any) -> str:
    """What a row can be compared with: the run's own caveat (a model fine-tuned here), else
    "not comparable" when its candidates say so (mini-collection retrieval), else the dataset's note."""
    caveat = manifest.get("comparability", "")
    if caveat:
        return caveat
    candidates = manifest.get("candidates", "") or ""
    if "not comparable" in candidates:
        return f"not comparable with published figures: {candidates}"
    return dataset.comparability


def leaderboard_row(session: Session, result: SystemResult, metrics: list[str],
                    sliced: dict[str, Any] | None = None) -> dict[str, Any]:
    """A leaderboard row: metrics (of a slice, with CIs and significance if ``sliced``), cost, provenance."""
    manifest = result.stored.manifest
    dataset = session.dataset(result.dataset)
    wall = float(manifest.get("wall_time_s") or 0.0)
    queries = int(manifest.get("queries") or 0)
    sliced = dict(sliced or {"slice": "all", "n_queries": result.evaluation.n_queries, **result.evaluation.means})
    row: dict[str, Any] = {"dataset": result.dataset, "system": result.system, "slice": sliced.pop("slice")}
    row.update({metric: sliced.pop(metric) for metric in metrics})
    row["n_queries"] = sliced.pop("n_queries")
    row["n_unjudged_excluded"] = dataset.n_unjudged
    sliced.pop("system", None)
    row.update(sliced)  # baseline, deltas, p-values, markers, wins/ties/losses, CIs
    row.update({
        "candidates": manifest.get("candidates", ""),
        "comparability": row_comparability(manifest, dataset),
        # how the numbers were computed: a faster, inexact path shows here and in the name
        "precision": manifest.get("precision", ""),
        "backend": manifest.get("backend", ""),
        "wall_time_s": round(wall, 3),
        "queries_per_s": round(queries / wall, 2) if wall > 0 else None,
        "pairs_scored": manifest.get("pairs_scored", 0),
        "cache_hits": manifest.get("cache_hits", 0),
        "run_path": str(result.stored.path),
        "fingerprint": manifest["sha256"],
    })
    return row


def parse_pools(pools: dict[str, list[str]] | None, session: Session) -> dict[str, list[str]]:
    """Check pools before any work: two or more known datasets each, one relevance level, no query
    id in two of them, a name that is no dataset's. Each problem is one line."""
    checked: dict[str, list[str]] = {}
    for name, members in (pools or {}).items():
        members = sorted(set(members))  # one order: the pooled rows (and seeded p-values) do not depend on it
        if len(members) < 2:
            raise WorkbenchError(f"pool {name!r} needs two or more datasets, got {', '.join(members) or 'none'}")
        datasets = [session.dataset(member) for member in members]
        if name in members or _is_dataset(session, name):
            raise WorkbenchError(f"pool name {name!r} is a dataset's name: name the pool differently")
        levels = {d.name: d.relevance_level for d in datasets}
        if len(set(levels.values())) > 1:
            raise WorkbenchError(f"pool {name!r}: its datasets disagree on the relevance level of binary metrics ("
                                 + ", ".join(f"{d}: grade >= {level}" for d, level in levels.items())
                                 + "); pool datasets judged alike")
        seen: dict[str, str] = {}
        for dataset in datasets:
            for qid in dataset.judged_topics["qid"]:
                if qid in seen:
                    raise WorkbenchError(f"pool {name!r}: query id {qid!r} is in both {seen[qid]} and {dataset.name}; "
                                         "pooled queries must be distinct", dataset.qrels_path)
                seen[qid] = dataset.name
        checked[name] = members
    return checked


def _is_dataset(session: Session, name: str) -> bool:
    try:
        session.dataset(name)
    except WorkbenchError:
        return False
    return True


def _sliced_rows(session: Session, results: dict[str, SystemResult], per_query: dict[str, pd.DataFrame],
                 labels: pd.DataFrame, baselines: dict[str, str | None], metrics: list[str]) -> list[dict[str, Any]]:
    table = sliced_table(per_query, labels, baselines, metrics, slices=SLICES)
    reliability = slice_reliability(labels).columns()  # slice_note where the rules' default labelled too many
    return [{**leaderboard_row(session, results[sliced["system"]], metrics, sliced), **reliability}
            for sliced in table.to_dict("records")]


def _pooled_rows(session: Session, pool: str, members: list[str], results: dict[str, dict[str, SystemResult]],
                 per_query: dict[str, dict[str, pd.DataFrame]], labels: dict[str, pd.DataFrame],
                 baselines: dict[str, str | None], metrics: list[str]) -> list[dict[str, Any]]:
    """Rows over the union of the pooled datasets' judged queries (each with its own qrels)."""
    pooled_per_query = {system: pd.concat([per_query[m][system][metrics] for m in members])
                        for system in per_query[members[0]]}
    pooled_labels = pd.concat([labels[m] for m in members], ignore_index=True)
    table = sliced_table(pooled_per_query, pooled_labels, baselines, metrics, slices=SLICES)
    rows = []
    for sliced in table.to_dict("records"):
        system = sliced["system"]
        parts = [results[m][system] for m in members]
        row = leaderboard_row(session, parts[0], metrics, sliced)
        row.update({
            "dataset": pool, "pooled": "+".join(members),
            "n_unjudged_excluded": sum(session.dataset(m).n_unjudged for m in members),
            "comparability": _pooled_comparability(session, members, parts),
            "wall_time_s": round(sum(float(p.stored.manifest.get("wall_time_s") or 0.0) for p in parts), 3),
            "pairs_scored": sum(int(p.stored.manifest.get("pairs_scored") or 0) for p in parts),
            "cache_hits": sum(int(p.stored.manifest.get("cache_hits") or 0) for p in parts),
            "run_path": ";".join(str(p.stored.path) for p in parts),
            "fingerprint": ";".join(p.stored.manifest["sha256"] for p in parts),
            **slice_reliability([labels[m] for m in members]).columns(),
        })
        row["queries_per_s"] = None
        rows.append(row)
    return rows


def _pooled_comparability(session: Session, members: list[str], parts: list[SystemResult]) -> str:
    """A pooled row compares with other rows pooled alike; a run's own caveat (mini collection, a
    model fine-tuned here) carries over."""
    caveats = [row_comparability(p.stored.manifest, session.dataset(m)) for p, m in zip(parts, members)]
    caveats = [c for c in dict.fromkeys(caveats) if "not comparable" in c]
    note = (f"pooled over {' + '.join(members)}: comparable with rows pooled over the same datasets, not with "
            "one year's published figure")
    return "; ".join([*caveats, note]) if caveats else note


def _pool_metrics(session: Session, members: list[str], metrics: list[str] | None) -> list[str]:
    """The metrics of a pool: ``metrics``, else those every pooled dataset is evaluated with."""
    if metrics:
        return list(metrics)
    first = metrics_for(session, members[0], None)
    common = [m for m in first if all(m in metrics_for(session, other, None) for other in members[1:])]
    if not common:
        raise WorkbenchError(f"the pooled datasets {', '.join(members)} share no metric: pass --metrics")
    return common


def run_experiment(session: Session, datasets: list[str], systems: list[str], metrics: list[str] | None,
                   leaderboard: str | Path, baseline: str | None = None,
                   query_types: str | Path | None = None, correction: str = DEFAULT_CORRECTION,
                   pools: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Produce and evaluate every (dataset, system), sliced by query type, with significance
    against a baseline (default: each reranked system's candidate run); upsert the leaderboard
    and return the new rows.

    ``metrics`` None: each dataset's own headline metrics. ``pools`` (``{"dl19+dl20": ["dl19",
    "dl20"]}``) adds rows over the union of the pooled datasets' judged queries: means, CIs,
    slices, paired tests, corrections and MDEs over the pooled queries, the dataset column
    naming the pool and ``pooled`` its datasets."""
    for dataset_name in datasets:
        session.dataset(dataset_name)  # fail fast on an unknown dataset
    pools = parse_pools(pools, session)
    datasets = list(dict.fromkeys(list(datasets) + [m for members in pools.values() for m in members]))
    parsed = {system: parse_system(system) for system in systems}  # fail fast on a malformed name
    board = read_leaderboard(leaderboard)  # fail fast on an unreadable leaderboard, before any work
    if pools and "pooled" in board.columns:
        for pool, members in pools.items():
            stored = set(board.loc[board["dataset"] == pool, "pooled"].dropna().astype(str)) - {"+".join(members)}
            if stored:
                raise WorkbenchError(f"pool {pool!r} is on the leaderboard over {', '.join(sorted(stored))}, not "
                                     f"{'+'.join(members)}: name this pool differently", leaderboard)
    baselines = {system: (baseline if baseline and baseline != system else parsed[system].default_baseline)
                 for system in systems}
    rows = []
    all_results: dict[str, dict[str, SystemResult]] = {}
    all_per_query: dict[str, dict[str, pd.DataFrame]] = {}
    all_labels: dict[str, pd.DataFrame] = {}
    for dataset_name in datasets:
        dataset_metrics = metrics_for(session, dataset_name, metrics)
        results = {}
        for system in systems:
            result = run_system(session, system, dataset_name, dataset_metrics)
            state = "reused" if result.stored.reused else "computed"
            log.info("%s %s: %s in %.1f s (%s)", dataset_name, system, state, result.seconds_this_time,
                     ", ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
            results[system] = result
        per_query = {system: result.evaluation.per_query for system, result in results.items()}
        for extra in {b for b in baselines.values() if b is not None} - per_query.keys():
            per_query[extra] = run_system(session, extra, dataset_name, dataset_metrics).evaluation.per_query
        labels = load_query_types(session.dataset(dataset_name), override_path=query_types)
        rows += _sliced_rows(session, results, per_query, labels, baselines, dataset_metrics)
        all_results[dataset_name], all_per_query[dataset_name], all_labels[dataset_name] = results, per_query, labels
    for pool, members in pools.items():
        rows += _pooled_rows(session, pool, members, all_results, all_per_query, all_labels, baselines,
                             _pool_metrics(session, members, metrics))
    # GeoRisk compares every system on the board for a dataset: recomputed on the merged board
    board = upsert_rows(rows, leaderboard, correction=correction, finish=lambda merged: add_georisk(
        session, merged, {row["dataset"] for row in rows}, all_per_query, query_types))
    # the rows as the board holds them: corrected within their leaderboard-wide families
    keys = {(row["dataset"], row["system"], row["slice"]) for row in rows}
    mine = [key in keys for key in zip(board["dataset"], board["system"], board["slice"])]
    return board[mine].reset_index(drop=True)


def rebuild_leaderboard(session: Session, leaderboard: str | Path, metrics: list[str],
                        query_types: str | Path | None = None, correction: str = DEFAULT_CORRECTION,
                        write: bool = True) -> pd.DataFrame:
    """Recompute every leaderboard row from the stored runs, qrels and query-type labels alone
    (no model is called, nothing is produced): metrics, CIs, deltas, tests and corrections.

    Each row's run is read from its stored file (checked against its manifest's sha256), as
    :func:`run_experiment` does, so the rebuilt board equals the incremental one. Returns the
    rebuilt board; with ``write`` it replaces the leaderboard file (atomically, under its lock).
    """
    from ..core.locks import file_lock
    from ..evaluation.slices import apply_corrections

    board = read_leaderboard(leaderboard)
    if board.empty:
        raise WorkbenchError("the leaderboard is empty: nothing to rebuild", leaderboard)
    pooled = board["pooled"].fillna("").astype(str) if "pooled" in board.columns else pd.Series("", index=board.index)
    rows = []

    def dataset_rows(dataset_name: str, mine: pd.DataFrame, dataset_metrics: list[str]):
        dataset = session.dataset(dataset_name)
        baselines = {}
        for record in mine.to_dict("records"):
            base = record.get("baseline")
            baselines[record["system"]] = base if isinstance(base, str) and base else None
        results, per_query = {}, {}
        for record in mine.drop_duplicates("system").to_dict("records"):
            run_path = record.get("run_path") if dataset_name == record.get("dataset") else None
            stored = session.store.load(dataset_name, record["system"], run_path)
            evaluation = evaluate_run(stored.run, dataset.qrels, dataset.relevance_level, dataset_metrics)
            results[record["system"]] = SystemResult(dataset_name, record["system"], stored, evaluation, 0.0)
            per_query[record["system"]] = evaluation.per_query
        for extra in {b for b in baselines.values() if b} - per_query.keys():
            stored = session.store.load(dataset_name, extra)
            per_query[extra] = evaluate_run(stored.run, dataset.qrels, dataset.relevance_level,
                                            dataset_metrics).per_query
        labels = load_query_types(dataset, override_path=query_types)
        return results, per_query, labels, baselines

    for dataset_name in sorted(board.loc[pooled == "", "dataset"].unique()):
        dataset_metrics = metrics_for(session, dataset_name, metrics)
        results, per_query, labels, baselines = dataset_rows(
            dataset_name, board[(board["dataset"] == dataset_name) & (pooled == "")], dataset_metrics)
        rows += _sliced_rows(session, results, per_query, labels, baselines, dataset_metrics)
    for pool in sorted(board.loc[pooled != "", "dataset"].unique()):
        mine = board[(board["dataset"] == pool) & (pooled != "")]
        members = str(mine["pooled"].iloc[0]).split("+")
        pool_metrics = _pool_metrics(session, members, metrics)
        parts = {m: dataset_rows(m, mine, pool_metrics) for m in members}
        rows += _pooled_rows(session, pool, members, {m: p[0] for m, p in parts.items()},
                             {m: p[1] for m, p in parts.items()}, {m: p[2] for m, p in parts.items()},
                             parts[members[0]][3], pool_metrics)
    rebuilt = sort_board(apply_corrections(pd.DataFrame(rows), correction=correction))
    rebuilt = add_georisk(session, rebuilt, query_types=query_types)
    if write:
        with file_lock(leaderboard, "the leaderboard"):
            write_board(rebuilt, leaderboard)
    return rebuilt
