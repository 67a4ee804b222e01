"""Plots of the embedding diagnostics (PNG, via a bare matplotlib Figure: no pyplot backend).

* :func:`plot_histograms`: per row, the cosine distributions of random passage pairs, relevant
  and non-relevant query-passage pairs (anisotropy shows as everything pushed to the right);
* :func:`plot_projections`: 2-D PCA and t-SNE of the passages relevant to a few queries,
  coloured by query, and PCA of the queries coloured by query type;
* :func:`plot_before_after`: rows side by side (e.g. off-the-shelf, whitened, fine-tuned):
  histogram on top, PCA below, on the same passages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .diagnostics import GROUP_QUERIES, Embedded, JudgedSet, unit

COLOURS = {"random pairs": "#999999", "relevant": "#1b9e77", "non-relevant": "#d95f02"}


def _save(figure, path: str | Path) -> Path:
    from ..core.files import atomic_write

    path = Path(path)
    with atomic_write(path, "wb", encoding=None) as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    return path


def _histogram(axis, row: Embedded, title: str | None = None) -> None:
    bins = np.linspace(-0.4, 1.0, 57)
    for name, values in row.distributions.items():
        axis.hist(np.clip(values, -0.4, 1.0), bins=bins, density=True, alpha=0.5, color=COLOURS.get(name),
                  label=f"{name} (mean {np.mean(values):.2f})" if len(values) else name)
    axis.set_title(title or row.label, fontsize=9)
    axis.set_xlabel("cosine", fontsize=8)
    axis.legend(fontsize=7)


def plot_histograms(rows: Sequence[Embedded], path: str | Path) -> Path:
    """One histogram panel per row."""
    from matplotlib.figure import Figure

    columns = min(4, len(rows))
    lines = -(-len(rows) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.1 * lines))
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for axis, row in zip(axes, rows):
        _histogram(axis, row)
    for axis in axes[len(rows):]:
        axis.set_visible(False)
    figure.suptitle("Cosine similarity: random passage pairs vs judged query-passage pairs", fontsize=10)
    return _save(figure, path)


def grouped_passages(judged: JudgedSet, count: int = GROUP_QUERIES, per_group: int = 40
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Rows and group (query) of the passages relevant to exactly one of the ``count`` queries
    with most such passages (at most ``per_group`` each, a seeded sample): what the projections draw."""
    groups = judged.relevant_groups()
    members, sizes = np.unique(groups[groups >= 0], return_counts=True)
    chosen = members[np.argsort(-sizes, kind="stable")[:count]]
    rng = np.random.default_rng(0)
    rows = np.sort(np.concatenate([rng.permutation(np.flatnonzero(groups == g))[:per_group] for g in chosen])
                   if len(chosen) else np.zeros(0, dtype=int))
    return rows, groups[rows]


def _pca(vectors: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(unit(vectors))


def _tsne(vectors: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = max(2.0, min(30.0, (len(vectors) - 1) / 3))
    # a few hundred points: the exact gradient is faster than Barnes-Hut's tree at this size
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0, metric="cosine",
                method="exact" if len(vectors) <= 500 else "barnes_hut", max_iter=500).fit_transform(unit(vectors))


def _scatter(axis, points: np.ndarray, groups: np.ndarray, names: dict[int, str], title: str) -> None:
    colours = [f"C{i % 10}" for i in range(len(names))]
    for colour, (group, name) in zip(colours, names.items()):
        chosen = groups == group
        axis.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colour, alpha=0.75, label=name)
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def _group_legend(figure, axis) -> None:
    """The passage groups' legend under the figure (inside a panel it hides points)."""
    handles, labels = axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=4, fontsize=7,
                  title="passages relevant to", title_fontsize=7)


def _query_names(judged: JudgedSet, groups: np.ndarray) -> dict[int, str]:
    return {int(g): (judged.queries[int(g)][:28] + ("…" if len(judged.queries[int(g)]) > 28 else ""))
            for g in dict.fromkeys(groups.tolist())}


def plot_projections(row: Embedded, judged: JudgedSet, path: str | Path) -> Path:
    """PCA and t-SNE of the grouped passages (coloured by the query they are relevant to) and PCA
    of the queries (coloured by query type)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.4))
    axes = figure.subplots(1, 3)
    rows, groups = grouped_passages(judged)
    names = _query_names(judged, groups)
    if len(rows) >= 4:
        _scatter(axes[0], _pca(row.passages[rows]), groups, names, "PCA: passages, by the query they answer")
        _scatter(axes[1], _tsne(row.passages[rows]), groups, names, "t-SNE: passages, by the query they answer")
        _group_legend(figure, axes[0])
    types = np.array(judged.query_types)
    labels = {i: name for i, name in enumerate(sorted(set(types)))}
    codes = np.array([{v: k for k, v in labels.items()}[t] for t in types])
    if len(judged.queries) >= 3:
        _scatter(axes[2], _pca(row.queries), codes, labels, "PCA: queries, by query type")
        axes[2].legend(fontsize=7)
    figure.suptitle(f"{row.label} ({judged.dataset})", fontsize=10)
    return _save(figure, path)


def plot_before_after(rows: Sequence[Embedded], judged: JudgedSet, path: str | Path) -> Path:
    """Rows side by side: cosine histograms above, PCA of the grouped passages below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.4 * len(rows), 7.6))
    axes = figure.subplots(2, len(rows), squeeze=False)
    members, groups = grouped_passages(judged)
    names = _query_names(judged, groups)
    for column, row in enumerate(rows):
        _histogram(axes[0][column], row)
        if len(members) >= 4:
            _scatter(axes[1][column], _pca(row.passages[members]), groups, names, f"PCA, {row.label}")
    if len(members) >= 4:
        _group_legend(figure, axes[1][0])
    figure.suptitle(f"Before / after ({judged.dataset})", fontsize=10)
    return _save(figure, path)
