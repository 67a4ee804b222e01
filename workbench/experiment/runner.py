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

from ..analysis.query_types import SLICES, load_query_types
from ..core.errors import WorkbenchError
from ..core.files import sha256_file
from ..evaluation.metrics import Evaluation, evaluate_cached, evaluate_run
from ..evaluation.slices import sliced_table
from ..evaluation.stats import DEFAULT_CORRECTION
from ..report.leaderboard import read_leaderboard, sort_board, upsert_rows, write_board
from .produce import Session
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
    qrels_sha256 = sha256_file(dataset.qrels_path)
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
        "comparability": manifest.get("comparability", ""),
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


def run_experiment(session: Session, datasets: list[str], systems: list[str], metrics: list[str],
                   leaderboard: str | Path, baseline: str | None = None,
                   query_types: str | Path | None = None, correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """Produce and evaluate every (dataset, system), sliced by query type, with significance
    against a baseline (default: each reranked system's candidate run); upsert the leaderboard
    and return the new rows."""
    for dataset_name in datasets:
        session.dataset(dataset_name)  # fail fast on an unknown dataset
    parsed = {system: parse_system(system) for system in systems}  # fail fast on a malformed name
    read_leaderboard(leaderboard)  # fail fast on an unreadable leaderboard, before any work
    rows = []
    for dataset_name in datasets:
        results = {}
        for system in systems:
            result = run_system(session, system, dataset_name, metrics)
            state = "reused" if result.stored.reused else "computed"
            log.info("%s %s: %s in %.1f s (%s)", dataset_name, system, state, result.seconds_this_time,
                     ", ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
            results[system] = result
        baselines = {system: (baseline if baseline and baseline != system else parsed[system].default_baseline)
                     for system in systems}
        per_query = {system: result.evaluation.per_query for system, result in results.items()}
        for extra in {b for b in baselines.values() if b is not None} - per_query.keys():
            per_query[extra] = run_system(session, extra, dataset_name, metrics).evaluation.per_query
        labels = load_query_types(session.dataset(dataset_name), override_path=query_types)
        table = sliced_table(per_query, labels, baselines, metrics, slices=SLICES)
        for sliced in table.to_dict("records"):
            rows.append(leaderboard_row(session, results[sliced["system"]], metrics, sliced))
    board = upsert_rows(rows, leaderboard, correction=correction)
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
    rows = []
    for dataset_name in sorted(board["dataset"].unique()):
        dataset = session.dataset(dataset_name)
        mine = board[board["dataset"] == dataset_name]
        first = mine.drop_duplicates("system")
        baselines = {}
        for record in mine.to_dict("records"):
            base = record.get("baseline")
            baselines[record["system"]] = base if isinstance(base, str) and base else None
        results, per_query = {}, {}
        for record in first.to_dict("records"):
            stored = session.store.load(dataset_name, record["system"], record.get("run_path"))
            evaluation = evaluate_run(stored.run, dataset.qrels, dataset.relevance_level, metrics)
            results[record["system"]] = SystemResult(dataset_name, record["system"], stored, evaluation, 0.0)
            per_query[record["system"]] = evaluation.per_query
        for extra in {b for b in baselines.values() if b} - per_query.keys():
            stored = session.store.load(dataset_name, extra)
            per_query[extra] = evaluate_run(stored.run, dataset.qrels, dataset.relevance_level, metrics).per_query
        labels = load_query_types(dataset, override_path=query_types)
        table = sliced_table(per_query, labels, baselines, metrics, slices=SLICES)
        for sliced in table.to_dict("records"):
            rows.append(leaderboard_row(session, results[sliced["system"]], metrics, sliced))
    rebuilt = sort_board(apply_corrections(pd.DataFrame(rows), correction=correction))
    if write:
        with file_lock(leaderboard, "the leaderboard"):
            write_board(rebuilt, leaderboard)
    return rebuilt
