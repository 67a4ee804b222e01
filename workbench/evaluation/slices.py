"""Sliced evaluation: every metric per query-type slice with confidence intervals, and
paired significance against a baseline, Holm–Bonferroni-corrected across the systems compared.

A slice is ``all`` or one label of a query labelling (``qa`` / ``exploratory``, see
:mod:`workbench.analysis.query_types`); the caller passes the slices and their order.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .stats import (DEFAULT_ALPHA, DEFAULT_PERMUTATIONS, confidence_interval, holm_bonferroni, paired_t_test,
                    randomization_test, significance_marker, wins_ties_losses)


ALL = "all"


def label_slices(labels: pd.DataFrame) -> tuple[str, ...]:
    """``all`` then every label present in ``labels`` (sorted): the default slices."""
    return (ALL, *sorted(set(labels["label"])))


def slice_qids(labels: pd.DataFrame, qids: pd.Index, slice_name: str) -> pd.Index:
    """The judged qids that belong to a slice."""
    if slice_name == ALL:
        return qids
    members = set(labels.loc[labels["label"] == slice_name, "qid"])
    return pd.Index([qid for qid in qids if qid in members], name=qids.name)


def sliced_table(per_query: Mapping[str, pd.DataFrame], labels: pd.DataFrame, baselines: Mapping[str, str | None],
                 metrics: list[str], slices: tuple[str, ...] | None = None, ci_level: float = 0.95,
                 ci_method: str = "t", permutations: int = DEFAULT_PERMUTATIONS, alpha: float = DEFAULT_ALPHA,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (system, slice) for one dataset.

    ``per_query`` maps every system (baselines included) to its per-query metric table
    (index qid). ``baselines`` maps the systems to report to their baseline (or None).
    Columns: ``system, slice, n_queries``, each metric with ``<m>_ci_low``/``<m>_ci_high``,
    and where there is a baseline: ``baseline``, ``delta_<m>``, ``p_<m>`` (randomization),
    ``p_t_<m>`` (paired t), ``p_holm_<m>`` (Holm over all the systems compared in that
    slice, for that metric), ``sig_<m>`` ('*' p<=alpha, '**' p<=alpha/5 after correction), and
    ``wtl_<m>`` (wins/ties/losses). ``slices`` default: :func:`label_slices`.
    """
    slices = tuple(slices) if slices is not None else label_slices(labels)
    rows = []
    for system, baseline in baselines.items():
        table = per_query[system]
        for slice_name in slices:
            qids = slice_qids(labels, table.index, slice_name)
            row: dict[str, object] = {"system": system, "slice": slice_name, "n_queries": len(qids)}
            values = table.loc[qids]
            for metric in metrics:
                low, high = confidence_interval(values[metric].to_numpy(), ci_level, ci_method, seed=seed)
                row[metric] = float(values[metric].mean()) if len(qids) else float("nan")
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
            if baseline is not None:
                base = per_query[baseline].reindex(qids).fillna(0.0)
                row["baseline"] = baseline
                for metric in metrics:
                    ours, theirs = values[metric].to_numpy(), base[metric].to_numpy()
                    row[f"delta_{metric}"] = float(ours.mean() - theirs.mean()) if len(qids) else float("nan")
                    row[f"p_{metric}"] = randomization_test(theirs, ours, permutations, seed) if len(qids) else np.nan
                    row[f"p_t_{metric}"] = paired_t_test(theirs, ours) if len(qids) else np.nan
                    row[f"wtl_{metric}"] = str(wins_ties_losses(theirs, ours))
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty or "baseline" not in frame.columns:
        return frame
    for metric in metrics:
        frame[f"p_holm_{metric}"] = np.nan
        compared = frame["baseline"].notna()
        for _, group in frame[compared].groupby("slice"):
            frame.loc[group.index, f"p_holm_{metric}"] = holm_bonferroni(group[f"p_{metric}"].to_numpy())
        frame[f"sig_{metric}"] = [significance_marker(p, alpha) if not np.isnan(p) else ""
                                  for p in frame[f"p_holm_{metric}"]]
    return frame
