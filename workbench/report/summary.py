"""The report: the sliced leaderboard as CSV, a Markdown summary, and the slice plot (PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.query_types import slice_warnings
from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..evaluation.metrics import HEADLINE_METRICS
from ..evaluation.condensed import judged_disagreements
from .judged_view import JUDGED_DISAGREE_HELP, JUDGED_DISAGREE_MARK
from .leaderboard import metric_columns, not_comparable
from .plots import plot_slices

HEADLINE = tuple(HEADLINE_METRICS)
SMALL_SLICE_MDE = 0.10  # a slice that cannot detect a 10-point change says little when "not significant"


def summary_markdown(board: pd.DataFrame, metrics: tuple[str, ...] = HEADLINE, plot_name: str = "slices.png",
                     headlines: dict[str, tuple[str, ...]] | None = None) -> str:
    """Markdown tables per dataset: metric [CI], delta vs baseline with significance, per slice
    (``headlines``: a dataset's own headline metrics, e.g. CACM's MAP and P@30; else ``metrics``)."""
    default = metrics
    lines = ["# Workbench report", "",
             "Per query-type slice: mean [95% CI], and against the baseline the delta with `*`/`**` when a "
             "paired randomization test is significant at 0.05/0.01 after Holm correction across systems; "
             "W/T/L = queries won/tied/lost. † = not comparable with published figures (see the "
             "leaderboard's comparability column). MDE = minimal detectable effect: the smallest "
             "difference a paired test on this slice (its n and variance) detects with 80% power at 0.05; "
             f"‡ = a slice too small to detect differences under {SMALL_SLICE_MDE:.2f}, where 'not significant' "
             "says little. Families for the correction: every system the leaderboard compares with the "
             "same baseline on the same dataset and slice; slices are subgroup analyses. "
             f"{JUDGED_DISAGREE_HELP} (listed under the table).", "",
             f"![slices]({plot_name})", ""]
    warnings = slice_warnings(board)
    for dataset in sorted(board["dataset"].unique()):
        rows = board[board["dataset"] == dataset]
        metrics = tuple((headlines or {}).get(dataset, default))
        lines += [f"## {dataset}", ""]
        if dataset in warnings:  # the query-type rules' default labelled too many of its topics
            lines += [f"**Warning:** {warnings[dataset]}.", ""]
        header = ["system", "slice", "n"] + [f"{m}" for m in metrics] + [f"Δ {m}" for m in metrics] + \
                 [f"MDE {m}" for m in metrics] + ["W/T/L " + metrics[0], "baseline"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        disagreeing, columns = [], metric_columns(rows)  # rows whose judged-only delta disagrees with the standard one
        for record in rows.to_dict("records"):
            notes = judged_disagreements(record, columns)
            disagreeing += [f"- {JUDGED_DISAGREE_MARK} {record['system']} ({record['slice']}): {note}"
                            for note in notes.values()]
            cells = [record["system"] + (" †" if not_comparable(record) else "")
                     + (f" {JUDGED_DISAGREE_MARK}" if notes else ""), record["slice"], str(int(record["n_queries"]))]
            for m in metrics:
                low, high = record.get(f"{m}_ci_low", np.nan), record.get(f"{m}_ci_high", np.nan)
                interval = "" if pd.isna(low) or pd.isna(high) else f" [{low:.3f}, {high:.3f}]"
                cells.append(f"{record[m]:.4f}{interval}")
            for m in metrics:
                delta = record.get(f"delta_{m}", np.nan)
                marker = record.get(f"sig_{m}", "")
                cells.append("" if pd.isna(delta) else f"{delta:+.4f}{'' if pd.isna(marker) else marker}")
            for m in metrics:
                mde = record.get(f"mde_{m}", np.nan)
                cells.append("" if pd.isna(mde) else f"{mde:.3f}")
            if any(not pd.isna(record.get(f"mde_{m}", np.nan)) and record[f"mde_{m}"] > SMALL_SLICE_MDE
                   for m in metrics):
                cells[1] += " ‡"
            wtl = record.get(f"wtl_{metrics[0]}", "")
            cells.append("" if pd.isna(wtl) else str(wtl))
            baseline = record.get("baseline", "")
            cells.append("" if pd.isna(baseline) else str(baseline))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += disagreeing + ([""] if disagreeing else [])
    return "\n".join(lines)


def write_report(board: pd.DataFrame, out_dir: str | Path = "runs/report",
                 metrics: tuple[str, ...] = HEADLINE,
                 headlines: dict[str, tuple[str, ...]] | None = None) -> dict[str, Path]:
    """Write ``leaderboard-sliced.csv``, ``summary.md`` and ``slices.png`` into ``out_dir``
    (``headlines``: each dataset's own headline metrics, where they are not ``metrics``)."""
    if board.empty:
        raise WorkbenchError("the leaderboard is empty: run `workbench eval` (make eval) first")
    if "slice" not in board.columns:
        raise WorkbenchError("the leaderboard has no slices: re-run `workbench eval` to add them")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "leaderboard-sliced.csv", "markdown": out / "summary.md", "plot": out / "slices.png"}
    with atomic_write(paths["csv"]) as handle:
        board.to_csv(handle, index=False, float_format="%.4f")
    figure = plot_slices(board, metrics, headlines=headlines)
    with atomic_write(paths["plot"], mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    with atomic_write(paths["markdown"]) as handle:
        handle.write(summary_markdown(board, metrics, paths["plot"].name, headlines))
    return paths
