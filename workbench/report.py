"""Report: the sliced leaderboard as CSV, a Markdown summary, and a slice plot (PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .errors import WorkbenchError
from .querytypes import SLICES

HEADLINE = ("mrr@10", "ndcg@5")


def plot_slices(board: pd.DataFrame, metrics: tuple[str, ...] = HEADLINE, datasets: list[str] | None = None):
    """Grouped bars of each metric per slice and system with 95% confidence intervals; returns the figure."""
    # A bare Figure needs no pyplot backend: it saves to PNG and displays in notebooks.
    from matplotlib.figure import Figure

    datasets = datasets or sorted(board["dataset"].unique())
    systems = list(dict.fromkeys(board["system"]))
    figure = Figure(figsize=(6.5 * len(metrics), 3.6 * len(datasets)))
    axes = figure.subplots(len(datasets), len(metrics), squeeze=False)
    width = 0.8 / max(1, len(systems))
    for row, dataset in enumerate(datasets):
        rows = board[board["dataset"] == dataset]
        for column, metric in enumerate(metrics):
            axis = axes[row][column]
            for position, system in enumerate(systems):
                values = rows[rows["system"] == system].set_index("slice").reindex(list(SLICES))
                means = values[metric].to_numpy(dtype=float)
                low = values.get(f"{metric}_ci_low", values[metric]).to_numpy(dtype=float)
                high = values.get(f"{metric}_ci_high", values[metric]).to_numpy(dtype=float)
                errors = np.vstack([np.clip(means - low, 0, None), np.clip(high - means, 0, None)])
                x = np.arange(len(SLICES)) + (position - (len(systems) - 1) / 2) * width
                axis.bar(x, means, width, yerr=errors, capsize=2, label=system)
            counts = rows.drop_duplicates("slice").set_index("slice").reindex(list(SLICES))["n_queries"]
            axis.set_xticks(np.arange(len(SLICES)),
                            [f"{s}\n(n={'' if pd.isna(n) else int(n)})" for s, n in zip(SLICES, counts)])
            axis.set_title(f"{dataset}: {metric} (95% CI)")
            axis.set_ylim(0, 1)
            axis.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    return figure


def summary_markdown(board: pd.DataFrame, metrics: tuple[str, ...] = HEADLINE, plot_name: str = "slices.png") -> str:
    """Markdown tables per dataset: metric [CI], delta vs baseline with significance, per slice."""
    lines = ["# Workbench report", "",
             "Per query-type slice: mean [95% CI], and against the baseline the delta with `*`/`**` when a "
             "paired randomization test is significant at 0.05/0.01 after Holm correction across systems; "
             "W/T/L = queries won/tied/lost.", "", f"![slices]({plot_name})", ""]
    for dataset in sorted(board["dataset"].unique()):
        rows = board[board["dataset"] == dataset]
        lines += [f"## {dataset}", ""]
        header = ["system", "slice", "n"] + [f"{m}" for m in metrics] + [f"Δ {m}" for m in metrics] + \
                 ["W/T/L " + metrics[0], "baseline"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for record in rows.to_dict("records"):
            cells = [record["system"], record["slice"], str(int(record["n_queries"]))]
            for m in metrics:
                cells.append(f"{record[m]:.4f} [{record.get(f'{m}_ci_low', np.nan):.3f}, "
                             f"{record.get(f'{m}_ci_high', np.nan):.3f}]")
            for m in metrics:
                delta = record.get(f"delta_{m}", np.nan)
                cells.append("" if pd.isna(delta) else f"{delta:+.4f}{record.get(f'sig_{m}', '') or ''}")
            wtl = record.get(f"wtl_{metrics[0]}", "")
            cells.append("" if pd.isna(wtl) else str(wtl))
            baseline = record.get("baseline", "")
            cells.append("" if pd.isna(baseline) else str(baseline))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(board: pd.DataFrame, out_dir: str | Path = "runs/report",
                 metrics: tuple[str, ...] = HEADLINE) -> dict[str, Path]:
    """Write ``leaderboard-sliced.csv``, ``summary.md`` and ``slices.png`` into ``out_dir``."""
    if board.empty:
        raise WorkbenchError("the leaderboard is empty: run `workbench eval` (make eval) first")
    if "slice" not in board.columns:
        raise WorkbenchError("the leaderboard has no slices: re-run `workbench eval` to add them")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "leaderboard-sliced.csv", "markdown": out / "summary.md", "plot": out / "slices.png"}
    with atomic_write(paths["csv"]) as handle:
        board.to_csv(handle, index=False, float_format="%.4f")
    figure = plot_slices(board, metrics)
    with atomic_write(paths["plot"], mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    with atomic_write(paths["markdown"]) as handle:
        handle.write(summary_markdown(board, metrics, paths["plot"].name))
    return paths
