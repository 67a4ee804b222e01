"""The table a leaderboard export draws (:func:`~.export.export_table`), built from the CSV alone.

One row per system, one column group per dataset, one column per metric in it. Every value is
the CSV's, rounded per metric; the best value of each column (after rounding, ties included) is
bold; every significance mark is the row's own ``sig_<m>`` against its own ``baseline``, the
CSV's multiple-testing family (dataset, slice, baseline), never recomputed here. A table with
several baselines gives each its own symbol (dagger, double dagger, section, ...), doubled where
the CSV says ``**``; the legend names them. Nothing is read but the DataFrame given.

The table is built once here (:class:`ExportTable`: text and flags per cell) and drawn by
:mod:`.export_render`, so both formats show the same numbers, bold cells and marks.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import pandas as pd

from ..core.errors import WorkbenchError
from ..evaluation.stats import DEFAULT_ALPHA
from .leaderboard import headline_columns, metric_columns, not_comparable

#: decimals of a metric no --digits names (the leaderboard CSV's own precision)
DEFAULT_DIGITS = 4
#: the key of a digits mapping that sets every metric's decimals (``--digits 3,ndcg@10=4``)
ALL_METRICS = "*"
#: the CSV's significance marks and the level each stands for (see ``significance_marker``)
MARK_LEVELS = {"*": 1, "**": 2}
#: how the legend names the leaderboard's corrections (``workbench.evaluation.stats.CORRECTIONS``)
CORRECTION_NAMES = {"holm": "Holm-corrected", "bonferroni": "Bonferroni-corrected",
                    "bh": "Benjamini-Hochberg-corrected", "none": "uncorrected"}


@dataclass(frozen=True)
class ExportCell:
    """One value of the table: its rounded text (None: no value, shown as a dash), whether it is
    its column's best, the significance mark (baseline index, 1 or 2 for ``*``/``**``) and the
    rounded confidence interval."""

    text: str | None = None
    bold: bool = False
    mark: tuple[int, int] | None = None
    ci: tuple[str, str] | None = None


@dataclass(frozen=True)
class ExportColumn:
    """A column: the dataset and metric it shows (metric ``n``: the dataset's query count)."""

    dataset: str
    metric: str


@dataclass
class ExportTable:
    """What both renderers draw: columns grouped by dataset, one row of cells per system, the
    baselines in symbol order, the datasets' query counts (when one per dataset) and the notes."""

    columns: list[ExportColumn]
    systems: list[str]
    cells: dict[tuple[str, ExportColumn], ExportCell]
    baselines: list[str]
    not_comparable: set[str] = field(default_factory=set)
    dataset_n: dict[str, int] = field(default_factory=dict)
    correction: str = "holm"
    slice: str = "all"

    @property
    def datasets(self) -> list[str]:
        """The column groups, in order."""
        return list(dict.fromkeys(column.dataset for column in self.columns))


def parse_digits(spec: str | None) -> dict[str, int]:
    """A ``--digits`` value: ``3`` (every metric), ``ndcg@10=3,mrr@10=2`` or both (``3,map=4``).
    Metric names may hold commas inside parentheses (``P(rel=2)@10=3``). One-line
    :class:`WorkbenchError` for anything else."""
    digits: dict[str, int] = {}
    for item in _split_outside_parentheses(spec or ""):
        metric, equals, value = item.rpartition("=")
        metric, value = metric.strip(), value.strip()
        if equals and not metric:
            raise WorkbenchError(f"--digits {spec!r}: {item!r} names no metric "
                                 "(expected METRIC=DIGITS, as in ndcg@10=3)")
        if not value.isdigit() or int(value) > 10:
            raise WorkbenchError(f"--digits {spec!r}: {item!r} is not METRIC=DIGITS or DIGITS with 0-10 decimals "
                                 "(as in 3 or ndcg@10=3,mrr@10=2)")
        digits[metric if equals else ALL_METRICS] = int(value)
    return digits


def _split_outside_parentheses(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item.strip() for item in [*items, current] if item.strip()]


def build_table(board: pd.DataFrame, datasets: Iterable[str] | None = None, metrics: Iterable[str] | None = None,
                slice: str = "all", digits: int | Mapping[str, int] | None = None, ci: bool = False,
                n: bool = False, systems: Iterable[str] | None = None) -> ExportTable:
    """The table :func:`~.export.export_table` draws: rows chosen, values rounded, bests and marks
    set (the arguments are :func:`~.export.export_table`'s)."""
    if board is None or board.empty:
        raise WorkbenchError("the leaderboard is empty: nothing to export (run `workbench eval` first)")
    missing = [column for column in ("dataset", "system") if column not in board.columns]
    if missing:
        raise WorkbenchError(f"the leaderboard lacks columns {missing}: not a workbench leaderboard")
    datasets, metrics, systems = (None if given is None else list(given) for given in (datasets, metrics, systems))
    rows = _slice_rows(board, slice)
    known_datasets = _dataset_order(rows)
    chosen = _chosen(datasets, known_datasets, "dataset", slice)
    rows = rows[rows["dataset"].isin(chosen)]
    all_metrics = metric_columns(board)
    wanted = _wanted_metrics(metrics, all_metrics, rows, chosen)
    empty = [dataset for dataset in chosen if not wanted[dataset]]
    if empty and datasets is not None:
        asked = f"none of the metrics {', '.join(metrics)}" if metrics else "no metric values"
        raise WorkbenchError(f"dataset {empty[0]!r} has {asked} on the leaderboard (slice {slice!r})")
    chosen = [dataset for dataset in chosen if wanted[dataset]]  # a CACM-only metric drops TREC DL's groups
    rows = rows[rows["dataset"].isin(chosen)]
    places = _digits_for(digits, all_metrics)
    names = _chosen(systems, list(dict.fromkeys(rows["system"])), "system", slice)
    rows = rows[rows["system"].isin(names)]
    columns = [ExportColumn(dataset, metric) for dataset in chosen for metric in wanted[dataset]]
    baselines = list(dict.fromkeys(b for b in rows.get("baseline", pd.Series(dtype=object))
                                   if isinstance(b, str) and b))
    by_key = {(row["dataset"], row["system"]): row for _, row in rows.iterrows()}
    cells = {}
    for column in columns:
        places_here = places.get(column.metric, places[ALL_METRICS])
        cells.update(_column_cells(column, names, by_key, baselines, places_here, ci))
    dataset_n = {}
    if n:
        dataset_n, columns, cells = _query_counts(rows, chosen, columns, cells, names)
    corrections = sorted({c for c in rows.get("correction", pd.Series(dtype=object))
                          if isinstance(c, str) and c})
    return ExportTable(columns=columns, systems=names, cells=cells, baselines=baselines,
                       not_comparable={r["system"] for _, r in rows.iterrows() if not_comparable(r)},
                       dataset_n=dataset_n, correction="/".join(corrections) or "holm", slice=slice)


def _slice_rows(board: pd.DataFrame, slice: str) -> pd.DataFrame:
    if "slice" not in board.columns:  # a board from before the slices: every row is the whole dataset
        if slice != "all":
            raise WorkbenchError(f"slice {slice!r} is not on the leaderboard (it has no slice column: only 'all')")
        return board
    slices = list(dict.fromkeys(board["slice"].dropna().astype(str)))
    if slice not in slices:
        raise WorkbenchError(f"slice {slice!r} is not on the leaderboard; it has: {', '.join(slices)}")
    return board[board["slice"].astype(str) == slice]


def _dataset_order(rows: pd.DataFrame) -> list[str]:
    """The board's datasets in its order, pooled ones (``dl19+dl20``) after the datasets they pool."""
    pooled: set[str] = set()
    if "pooled" in rows.columns:
        flagged = rows["pooled"].notna() & (rows["pooled"].astype(str).str.strip() != "")
        pooled = set(rows.loc[flagged, "dataset"])
    return sorted(dict.fromkeys(rows["dataset"]), key=lambda dataset: dataset in pooled)


def _chosen(asked: Iterable[str] | None, known: list[str], what: str, slice: str) -> list[str]:
    if asked is None:
        return known
    asked = list(dict.fromkeys(asked))
    unknown = [name for name in asked if name not in known]
    if unknown:
        raise WorkbenchError(f"{what} {', '.join(map(repr, unknown))} not on the leaderboard (slice {slice!r}); "
                             f"it has: {', '.join(known)}")
    if not asked:
        raise WorkbenchError(f"no {what} asked for; the leaderboard has: {', '.join(known)}")
    return asked


def _wanted_metrics(metrics: Iterable[str] | None, all_metrics: list[str], rows: pd.DataFrame,
                    datasets: list[str]) -> dict[str, list[str]]:
    """Per dataset, the metrics it shows: those asked for that it has values for (a mixed table of
    TREC DL and CACM shows each its own), by default its headline metrics."""
    def has(dataset: str, metric: str) -> bool:
        return bool(rows.loc[rows["dataset"] == dataset, metric].notna().any())

    if metrics is None:
        return {d: _headline(rows[rows["dataset"] == d], all_metrics) for d in datasets}
    metrics = list(dict.fromkeys(metrics))
    if not metrics:
        raise WorkbenchError(f"no metric asked for; the leaderboard has: {', '.join(all_metrics)}")
    for metric in metrics:
        if metric not in all_metrics:
            raise WorkbenchError(f"metric {metric!r} is not on the leaderboard; it has: {', '.join(all_metrics)}")
        if not any(has(dataset, metric) for dataset in datasets):
            raise WorkbenchError(f"metric {metric!r} has no values on {', '.join(datasets)}; they have: "
                                 + ", ".join(m for m in all_metrics if any(has(d, m) for d in datasets)))
    return {d: [m for m in metrics if has(d, m)] for d in datasets}


#: a risk column (workbench.evaluation.risk): a dataset's headline metrics are the ones that have them
_RISK_COLUMN = re.compile(r"urisk_a[0-9.]+_(.+)")


def _headline(rows: pd.DataFrame, all_metrics: list[str]) -> list[str]:
    """A dataset's headline metrics from its rows alone: those its risk columns are computed for
    (TREC DL: MRR@10, NDCG@5; else the dataset's first two, CACM: MAP, P@30), else the
    leaderboard's headline columns (the terminal table's)."""
    risked = [found.group(1) for found in map(_RISK_COLUMN.fullmatch, rows.columns)
              if found and rows[found.string].notna().any()]
    headline = [m for m in dict.fromkeys(risked) if m in all_metrics and rows[m].notna().any()]
    return headline or [m for m in headline_columns(rows, all_metrics) if rows[m].notna().any()]


def _digits_for(digits: int | Mapping[str, int] | None, all_metrics: list[str]) -> dict[str, int]:
    if digits is None:
        return {ALL_METRICS: DEFAULT_DIGITS}
    if isinstance(digits, int):
        digits = {ALL_METRICS: digits}
    unknown = [m for m in digits if m != ALL_METRICS and m not in all_metrics]
    if unknown:
        raise WorkbenchError(f"digits for {', '.join(map(repr, unknown))}: not on the leaderboard; "
                             f"it has: {', '.join(all_metrics)}")
    bad = [f"{m}={d}" for m, d in digits.items() if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 10]
    if bad:
        raise WorkbenchError(f"digits {', '.join(bad)}: decimals are whole numbers from 0 to 10")
    return {ALL_METRICS: DEFAULT_DIGITS, **digits}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _rounded(value: object, places: int) -> str | None:
    if _missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else f"{number:.{places}f}"


def _column_cells(column: ExportColumn, systems: list[str], by_key: Mapping[tuple[str, str], pd.Series],
                  baselines: list[str], places: int, ci: bool) -> dict[tuple[str, ExportColumn], ExportCell]:
    """The cells of one column, the best (after rounding: what the reader compares) in bold."""
    metric, texts = column.metric, {}
    for system in systems:
        row = by_key.get((column.dataset, system))
        texts[system] = None if row is None else _rounded(row.get(metric), places)
    shown = [float(text) for text in texts.values() if text is not None]
    best = max(shown) if shown else None
    cells = {}
    for system in systems:
        row, text = by_key.get((column.dataset, system)), texts[system]
        if text is None:
            cells[system, column] = ExportCell()
            continue
        interval = None
        if ci:
            low, high = (_rounded(row.get(f"{metric}_ci_{end}"), max(2, places - 2)) for end in ("low", "high"))
            interval = (low, high) if low is not None and high is not None else None
        cells[system, column] = ExportCell(text, bold=float(text) == best, mark=_mark(row, metric, baselines),
                                           ci=interval)
    return cells


def _mark(row: pd.Series, metric: str, baselines: list[str]) -> tuple[int, int] | None:
    """The row's CSV mark for ``metric`` as (its baseline's symbol index, level)."""
    mark, baseline = row.get(f"sig_{metric}"), row.get("baseline")
    level = MARK_LEVELS.get(mark.strip()) if isinstance(mark, str) else None
    if level is None or not isinstance(baseline, str) or baseline not in baselines:
        return None
    return baselines.index(baseline), level


def _query_counts(rows: pd.DataFrame, datasets: list[str], columns: list[ExportColumn],
                  cells: dict, systems: list[str]) -> tuple[dict[str, int], list[ExportColumn], dict]:
    """Each dataset's n: in its header when every row has the same, else a column of its own."""
    counts, out = {}, []
    for dataset in datasets:
        values = {int(v) for v in rows.loc[rows["dataset"] == dataset, "n_queries"].dropna()} \
            if "n_queries" in rows.columns else set()
        group = [column for column in columns if column.dataset == dataset]
        if len(values) == 1:
            counts[dataset] = values.pop()
        elif values:
            extra = ExportColumn(dataset, "n")
            group.append(extra)
            by_system = {r["system"]: r["n_queries"] for _, r in rows[rows["dataset"] == dataset].iterrows()}
            for system in systems:
                value = by_system.get(system)
                cells[system, extra] = ExportCell(None if _missing(value) else str(int(value)))
        out += group
    return counts, out, cells


def significance_legend(table: ExportTable, symbols: list[str], escape: Callable[[str], str],
                        p_at_most: str = "p ≤ {}") -> str:
    """The sentence naming each baseline's symbol (``symbols[i]`` for ``table.baselines[i]``,
    names through ``escape``) and what a mark means: the CSV's test and correction at its
    thresholds (``significance_marker``: alpha, and alpha/5 for a doubled symbol; each written
    through ``p_at_most``)."""
    if not table.baselines:
        return ""
    correction = CORRECTION_NAMES.get(table.correction, f"{table.correction}-corrected")
    named = "; ".join(f"{symbol} {escape(baseline)}" for symbol, baseline in zip(symbols, table.baselines))
    return (f"Significantly different from the row's baseline ({named}): {correction} paired "
            f"randomization test over the systems compared with that baseline on that dataset, "
            f"{p_at_most.format(f'{DEFAULT_ALPHA:g}')} "
            f"(doubled symbol: {p_at_most.format(f'{DEFAULT_ALPHA / 5:g}')}).")
