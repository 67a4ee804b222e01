"""Plots of the sliced leaderboard: each headline metric per query-type slice and system, with
95% confidence intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.query_types import SLICES
from ..evaluation.metrics import HEADLINE_METRICS
from .leaderboard import not_comparable


def plot_slices(board: pd.DataFrame, metrics: tuple[str, ...] = tuple(HEADLINE_METRICS), datasets: list[str] | None = None,
                headlines: dict[str, tuple[str, ...]] | None = None):
    """Grouped bars of each metric per slice and system with 95% confidence intervals; returns the
    figure. ``headlines`` gives a dataset its own metrics (as many as ``metrics``), e.g. CACM's MAP, P@30."""
    # A bare Figure needs no pyplot backend: it saves to PNG and displays in notebooks.
    from matplotlib.figure import Figure

    datasets = datasets or sorted(board["dataset"].unique())
    systems = list(dict.fromkeys(board["system"]))
    # systems whose numbers are not comparable with published figures (mini collection, fine-tuned
    # on the other TREC DL year) are hatched and marked with † in the legend
    flagged = {system for system, row in zip(board["system"], board.to_dict("records")) if not_comparable(row)}
    figure = Figure(figsize=(6.5 * len(metrics), 3.6 * len(datasets) + 0.25 * len(systems)))
    axes = figure.subplots(len(datasets), len(metrics), squeeze=False)
    width = 0.8 / max(1, len(systems))
    for row, dataset in enumerate(datasets):
        rows = board[board["dataset"] == dataset]
        for column, metric in enumerate(tuple((headlines or {}).get(dataset, metrics))[:len(metrics)]):
            axis = axes[row][column]
            for position, system in enumerate(systems):
                values = rows[rows["system"] == system].set_index("slice").reindex(list(SLICES))
                means = values[metric].to_numpy(dtype=float)
                low = values.get(f"{metric}_ci_low", values[metric]).to_numpy(dtype=float)
                high = values.get(f"{metric}_ci_high", values[metric]).to_numpy(dtype=float)
                errors = np.vstack([np.clip(means - low, 0, None), np.clip(high - means, 0, None)])
                x = np.arange(len(SLICES)) + (position - (len(systems) - 1) / 2) * width
                marked = system in flagged
                axis.bar(x, means, width, yerr=errors, capsize=2, hatch="//" if marked else None,
                         label=f"{system} †" if marked else system)
            counts = rows.drop_duplicates("slice").set_index("slice").reindex(list(SLICES))["n_queries"]
            axis.set_xticks(np.arange(len(SLICES)),
                            [f"{s}\n(n={'' if pd.isna(n) else int(n)})" for s, n in zip(SLICES, counts)])
            axis.set_title(f"{dataset}: {metric} (95% CI)")
            axis.set_ylim(0, 1)
            axis.grid(axis="y", alpha=0.3)
    # the legend goes below the panels, so it never covers a bar
    handles, labels = axes[0][0].get_legend_handles_labels()
    footnote = ["† not comparable with published figures (hatched)"] if flagged else []
    figure.legend(handles, labels, loc="lower center", ncol=min(3, max(1, len(labels))), fontsize=7,
                  frameon=False, title=footnote[0] if footnote else None, title_fontsize=7)
    rows_of_legend = -(-len(labels) // 3) + (1 if footnote else 0)
    figure.tight_layout(rect=(0, min(0.45, 0.04 + 0.035 * rows_of_legend * 3.6 / figure.get_figheight()), 1, 1))
    return figure
