"""The leaderboard CSV: one row per (dataset, system); re-running replaces rows, never duplicates."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd

from ..analysis.query_types import SLICES
from ..core.errors import WorkbenchError, first_line
from ..core.files import atomic_write
from ..core.locks import file_lock
from ..evaluation.metrics import DEFAULT_METRICS, HEADLINE_METRICS
from ..evaluation.slices import apply_corrections
from ..evaluation.stats import DEFAULT_CORRECTION
from .judged_view import terminal_judged_cells
from .risk_view import terminal_risk_columns

DEFAULT_LEADERBOARD = Path("runs/leaderboard.csv")
KEY_COLUMNS = ["dataset", "system"]


def read_leaderboard(path: str | Path = DEFAULT_LEADERBOARD) -> pd.DataFrame:
    """The leaderboard as a DataFrame (empty if the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=KEY_COLUMNS)
    hint = "; move it aside and re-run `workbench eval` (rows are rebuilt from the stored runs)"
    try:
        board = pd.read_csv(path, dtype={"dataset": str, "system": str}, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise WorkbenchError("leaderboard CSV is empty (0 bytes or no header)" + hint, path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise WorkbenchError(f"cannot read leaderboard CSV: {first_line(error)}" + hint, path) from None
    except OSError as error:
        raise WorkbenchError(f"cannot read leaderboard CSV: {error.strerror}", path) from None
    missing = [column for column in KEY_COLUMNS if column not in board.columns]
    if missing:
        raise WorkbenchError(f"leaderboard CSV lacks columns {missing}" + hint, path)
    return board


def not_comparable(row: Mapping[str, object]) -> bool:
    """Whether a leaderboard row's numbers are not comparable with published figures: its
    comparability column says so (e.g. fine-tuned on the other TREC DL year) or its candidates do
    (mini-collection first stages). The column says what every row can be compared with; only a
    "not comparable" there marks a row."""
    comparability, candidates = row.get("comparability", ""), row.get("candidates", "")
    return any(isinstance(text, str) and "not comparable" in text for text in (comparability, candidates))


#: below this Judged@k a row's metrics lean on unjudged documents counted as non-relevant (on TREC DL the
#: official BM25 top 10 is 0.99-1.00 judged; a row under 0.9 has one document in ten never judged)
LOW_JUDGED = 0.9
#: marks a Judged@k value under :data:`LOW_JUDGED` in the terminal table and the HTML report
LOW_JUDGED_MARK = "◦"


def low_judged(metric: str, value: object) -> bool:
    """Whether ``value`` of ``metric`` is a low ``Judged@k`` (a gain may be an artefact of shallow pools)."""
    return metric.startswith("Judged@") and isinstance(value, (int, float)) and not pd.isna(value) \
        and float(value) < LOW_JUDGED


def key_columns(board: pd.DataFrame) -> list[str]:
    return KEY_COLUMNS + (["slice"] if "slice" in board.columns else [])


def upsert_rows(rows: Iterable[Mapping[str, object]], path: str | Path = DEFAULT_LEADERBOARD,
                correction: str = DEFAULT_CORRECTION,
                finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Insert rows, replacing existing rows with the same key; recompute the multiple-testing
    correction over the whole board (one family per dataset, slice, baseline and metric; see
    :func:`~workbench.evaluation.slices.apply_corrections`); write atomically; return the board.
    ``finish`` recomputes what depends on every row (GeoRisk) on the merged board, under the lock."""
    path = Path(path)
    new = pd.DataFrame(list(rows))
    if new.empty:
        return read_leaderboard(path)
    # read, merge and replace under one lock: concurrent processes each add their rows
    with file_lock(path, "the leaderboard"):
        return _upsert_locked(new, path, correction, finish)


def _upsert_locked(new: pd.DataFrame, path: Path, correction: str,
                   finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    board = read_leaderboard(path)
    keys = key_columns(new)
    if not board.empty:
        for column in keys:
            if column not in board.columns:
                board[column] = "all"
        merged_keys = board[keys].astype(str).agg("\x00".join, axis=1)
        replaced = set(new[keys].astype(str).agg("\x00".join, axis=1))
        board = board[~merged_keys.isin(replaced)]
        board = pd.concat([board, new], ignore_index=True) if not board.empty else new
    else:
        board = new
    board = sort_board(apply_corrections(board, correction=correction))
    board = finish(board) if finish is not None else board
    write_board(board, path)
    return board


def sort_board(board: pd.DataFrame) -> pd.DataFrame:
    """Rows in the leaderboard's order: dataset, system, then the slices as :data:`SLICES` lists them."""
    order = {name: position for position, name in enumerate(SLICES)}
    return board.sort_values(key_columns(board), key=lambda col: col.map(lambda v: order.get(v, len(order)))
                             if col.name == "slice" else col, kind="mergesort").reset_index(drop=True)


def write_board(board: pd.DataFrame, path: str | Path) -> None:
    """Write the leaderboard atomically: metrics to 4 decimals, p-values in full precision (the
    correction is recomputed from them after every update, so rounding them would move it)."""
    shown = board.copy()
    for column in shown.columns:
        if column.startswith(("p_", "trisk_p_")) and pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [("" if pd.isna(value) else repr(float(value))) for value in shown[column]]
    with atomic_write(path) as handle:
        shown.to_csv(handle, index=False, float_format="%.4f")


def metric_columns(board: pd.DataFrame, first: Iterable[str] = DEFAULT_METRICS) -> list[str]:
    """The metric columns of ``board`` that hold values: ``first`` in its order, then any other
    (a dataset's own metrics, such as CACM's precision@30)."""
    from ..core.measures import is_metric_column as is_metric

    others = [c for c in board.columns if is_metric(c)]
    return [m for m in dict.fromkeys([*first, *others]) if m in board.columns and board[m].notna().any()]


def headline_columns(board: pd.DataFrame, metrics: list[str]) -> tuple[str, ...]:
    """TREC DL's headline metrics where rows have them, and for rows without (a dataset with other
    headline metrics, e.g. CACM's MAP and P@30) the first two of their metrics."""
    headline = [m for m in HEADLINE_METRICS if m in metrics]
    rest = board[board[headline].isna().all(axis=1)] if headline else board
    if not rest.empty:
        headline += [m for m in metrics if m not in headline and rest[m].notna().any()][:2]
    return tuple(headline)


def format_table(board: pd.DataFrame, metrics: list[str] | None = None,
                 headline: tuple[str, ...] | None = None) -> str:
    """Plain-text table for the terminal: metrics, slice size, and for the headline metrics the
    delta against the baseline with its corrected significance marker (judged-only columns where
    they differ from the standard ones, ≠ where their delta disagrees) and URisk at alpha 2 with
    TRisk's verdict (▼ significantly riskier than the baseline, ▲ a significant gain even so)."""
    if board.empty:
        return "(leaderboard is empty)"
    metrics = [m for m in metrics if m in board.columns] if metrics else metric_columns(board)
    headline = headline if headline is not None else headline_columns(board, metrics)
    shown = board[[c for c in key_columns(board) if c in board.columns] + metrics].copy()
    for metric in metrics:
        shown[metric] = board[metric].map(lambda value, metric=metric: "" if pd.isna(value) else
                                          f"{value:.4f}" + (LOW_JUDGED_MARK if low_judged(metric, value) else ""))
    shown = terminal_judged_cells(board, metrics, shown)  # judged-only columns where informative, ≠ on disagreement
    if "n_queries" in board.columns:
        shown["n"] = board["n_queries"].astype("Int64")
    for metric in headline:
        if f"delta_{metric}" in board.columns:
            marker = board.get(f"sig_{metric}", pd.Series("", index=board.index)).astype(object).fillna("")
            shown[f"d_{metric}"] = [
                "" if pd.isna(delta) else f"{delta:+.4f}{mark}" for delta, mark in zip(board[f"delta_{metric}"], marker)]
    shown = shown.assign(**terminal_risk_columns(board, headline))  # URisk at alpha 2, ▼/▲: TRisk significant
    if "precision" in board.columns:  # how the numbers were computed: fp32 (exact), bf16, int8
        shown["precision"] = board["precision"].astype(object).where(board["precision"].notna(), "")
    if "baseline" in board.columns:
        shown["baseline"] = board["baseline"].fillna("")
    if "wall_time_s" in board.columns:
        shown["wall_s"] = board["wall_time_s"].map(lambda value: "" if pd.isna(value) else f"{value:.1f}")
    return shown.to_string(index=False)
