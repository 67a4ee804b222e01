"""GeoRisk on the leaderboard: every system the board holds for a dataset (and slice) against all
the others (:func:`~workbench.evaluation.risk.georisk`), so a row's GeoRisk changes when a system
is added. It needs every system's per-query values, not the means the board keeps: the tables this
invocation evaluated, else each row's stored run evaluated again (through the evaluation cache).

URisk and TRisk need only the row's own baseline and are computed with the deltas
(:func:`~workbench.evaluation.slices.sliced_table`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..analysis.query_types import load_query_types
from ..core.errors import WorkbenchError
from ..evaluation.metrics import evaluate_cached
from ..evaluation.risk import RISK_ALPHAS, georisk_columns, risk_metrics
from ..evaluation.slices import slice_qids
from ..report.leaderboard import metric_columns

log = logging.getLogger(__name__)

PerQuery = Mapping[str, Mapping[str, pd.DataFrame]]  # dataset -> system -> per-query table (index qid)


def add_georisk(session: Any, board: pd.DataFrame, datasets: Iterable[str] | None = None,
                known: PerQuery | None = None, query_types: str | Path | None = None) -> pd.DataFrame:
    """``board`` with ``georisk_a<alpha>_<m>`` on every row of ``datasets`` (default: every dataset
    on it), for the dataset's risk metrics (:func:`~workbench.evaluation.risk.risk_metrics`), over
    the systems on the board for that dataset and the queries of the row's slice. A pooled dataset
    (``pooled`` = ``dl19+dl20``) uses the union of its members' queries.

    ``known`` gives per-query tables already evaluated (dataset -> system -> table); the others
    are read from each row's stored run, which must be the run the row was computed from (its
    manifest's sha256 equal to the row's ``fingerprint``). When a run cannot be read (the runs
    directory moved), was replaced since, or anything else fails, the dataset's GeoRisk is left
    empty with one warning, never computed from a mix of runs: the rest of the board is still
    right, and GeoRisk never keeps it from being written (this runs under the leaderboard's lock)."""
    if board.empty:
        return board
    board = board.copy()
    known = known or {}
    pooled = board["pooled"].fillna("").astype(str) if "pooled" in board.columns else pd.Series("", index=board.index)
    for name in sorted(set(datasets) if datasets is not None else set(board["dataset"])):
        mine = board[board["dataset"] == name]
        if mine.empty:
            continue
        try:
            _dataset_georisk(session, board, name, mine, pooled, known, query_types)
        except Exception as error:  # noqa: BLE001 - GeoRisk must never drop the invocation's rows
            reason = error if isinstance(error, WorkbenchError) else f"{type(error).__name__}: {error}"
            log.warning("GeoRisk on %s left empty: %s", name, reason)
            stale = [column for column in board.columns if str(column).startswith("georisk_")]
            board.loc[mine.index, stale] = np.nan
    return board


def _dataset_georisk(session: Any, board: pd.DataFrame, name: str, mine: pd.DataFrame, pooled: pd.Series,
                     known: PerQuery, query_types: str | Path | None) -> None:
    """Write one dataset's GeoRisk columns into ``board`` (in place), slice by slice."""
    members = [m for m in pooled[mine.index].iloc[0].split("+") if m]
    metrics = risk_metrics(metric_columns(mine, session.dataset(members[0] if members else name).metrics))
    columns = [f"georisk_a{alpha:g}_{metric}" for metric in metrics for alpha in RISK_ALPHAS]
    for column in columns:
        if column not in board.columns:
            board[column] = np.nan
    per_query, labels = _dataset_tables(session, name, mine, members, metrics, known, query_types)
    qids = pd.Index(sorted(set().union(*(table.index for table in per_query.values()))), name="qid")
    for slice_name in mine["slice"].unique() if "slice" in mine.columns else ["all"]:
        rows = mine.index[mine["slice"] == slice_name] if "slice" in mine.columns else mine.index
        scores = georisk_columns(per_query, slice_qids(labels, qids, slice_name), metrics)
        for column in columns:
            board.loc[rows, column] = board.loc[rows, "system"].map(scores[column]).to_numpy(dtype=float)


def _dataset_tables(session: Any, name: str, mine: pd.DataFrame, members: list[str], metrics: list[str],
                    known: PerQuery, query_types: str | Path | None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """(system -> per-query table of ``metrics``, query-type labels) of a dataset's board rows; a
    pool's tables and labels are its members' concatenated."""
    records = mine.drop_duplicates("system").to_dict("records")
    if not members:
        tables = {r["system"]: _per_query(session, name, r["system"], r.get("run_path"), _text(r.get("fingerprint")),
                                          metrics, known) for r in records}
        return tables, load_query_types(session.dataset(name), override_path=query_types)
    tables = {}
    for record in records:
        paths = str(record.get("run_path") or "").split(";")
        paths = paths if len(paths) == len(members) else [None] * len(members)  # run_path lists them in pool order
        sums = _text(record.get("fingerprint")).split(";")  # so does fingerprint, each member's run's sha256
        if sums == [""]:
            sums = [""] * len(members)
        elif len(sums) != len(members):
            raise WorkbenchError(f"{record['system']!r}'s fingerprint names {len(sums)} runs for the "
                                 f"{len(members)} datasets of {name}")
        tables[record["system"]] = pd.concat([
            _per_query(session, member, record["system"], path, sha, metrics, known)
            for member, path, sha in zip(members, paths, sums)])
    labels = pd.concat([load_query_types(session.dataset(m), override_path=query_types) for m in members],
                       ignore_index=True)
    return tables, labels


def _per_query(session: Any, dataset_name: str, system: str, run_path: object, fingerprint: str,
               metrics: list[str], known: PerQuery) -> pd.DataFrame:
    """A system's per-query values of ``metrics`` on a dataset: this invocation's table when it has
    them, else its stored run evaluated (cached on disk, keyed by the run's and qrels' sha256),
    which must be the run of the row's ``fingerprint`` (its sha256; a row without one, unchecked)."""
    table = known.get(dataset_name, {}).get(system)
    if table is not None and all(metric in table.columns for metric in metrics):
        return table[metrics]
    dataset = session.dataset(dataset_name)
    stored = session.store.load(dataset_name, system, run_path if isinstance(run_path, str) and run_path else None)
    if fingerprint and stored.manifest.get("sha256") != fingerprint:
        raise WorkbenchError(f"the stored run of {system!r} on {dataset_name} is not the one its row was computed "
                             f"from (sha256 {str(stored.manifest.get('sha256'))[:12]}, row {fingerprint[:12]})",
                             stored.path)
    # the dataset's own metric list when it covers ours: the cache entry `workbench eval` wrote
    listed = dataset.metrics if set(metrics) <= set(dataset.metrics) else metrics
    evaluation = evaluate_cached(stored.run, stored.manifest["sha256"], dataset.qrels, dataset.qrels_sha256,
                                 dataset.relevance_level, listed)
    return evaluation.per_query[metrics]


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
