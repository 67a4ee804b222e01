"""Plots of the sliced leaderboard: each headline metric per query-type slice and system, with
95% confidence intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.query_types import SLICES
from ..evaluation.metrics import HEADLINE_METRICS


def plot_slices(board: pd.DataFrame, metrics: tuple[str, ...] = tuple(HEADLINE_METRICS), datasets: list[str] | None = None):
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
