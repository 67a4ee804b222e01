"""Sliced evaluation: every metric per query-type slice with confidence intervals, and
paired significance against a baseline, corrected for multiple testing (Holm by default) within
each family: the systems compared with the same baseline on the same slice and dataset.

A slice is ``all`` or one label of a query labelling (``qa`` / ``exploratory``, see
:mod:`workbench.analysis.query_types`); the caller passes the slices and their order.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .risk import risk_columns, risk_metrics
from .stats import (DEFAULT_ALPHA, DEFAULT_CORRECTION, DEFAULT_PERMUTATIONS, adjust_p_values, confidence_interval,
                    paired_effect, paired_t_test, randomization_result, significance_marker, wins_ties_losses)


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
                 seed: int = 0, correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """One row per (system, slice) for one dataset.

    ``per_query`` maps every system (baselines included) to its per-query metric table
    (index qid). ``baselines`` maps the systems to report to their baseline (or None).
    Columns: ``system, slice, n_queries``, each metric with ``<m>_ci_low``/``<m>_ci_high``,
    and where there is a baseline: ``baseline``, ``delta_<m>``, ``p_<m>`` (randomization, exact
    up to 40 non-zero differences), ``p_se_<m>`` (its Monte Carlo standard error, 0 when exact),
    ``p_t_<m>`` (paired t), ``d_z_<m>`` with ``d_z_ci_low_<m>``/``d_z_ci_high_<m>`` (paired effect
    size) and ``mde_<m>`` (minimal detectable effect at 80% power, metric units; see
    :func:`~.stats.paired_effect`), the correction columns of :func:`apply_corrections` (here one family
    per slice and baseline), ``wtl_<m>`` (wins/ties/losses) and, for the headline metrics, URisk
    and TRisk at every alpha (:func:`~.risk.risk_columns`). ``slices`` default:
    :func:`label_slices`.
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
                    result = randomization_result(theirs, ours, permutations, seed) if len(qids) else None
                    row[f"p_{metric}"] = result.p_value if result else np.nan
                    row[f"p_se_{metric}"] = result.standard_error if result else np.nan
                    row[f"p_t_{metric}"] = paired_t_test(theirs, ours) if len(qids) else np.nan
                    effect = paired_effect(theirs, ours, alpha)
                    row[f"d_z_{metric}"] = effect.d_z
                    row[f"d_z_ci_low_{metric}"], row[f"d_z_ci_high_{metric}"] = effect.d_z_ci_low, effect.d_z_ci_high
                    row[f"mde_{metric}"] = effect.minimal_detectable_effect
                    row[f"wtl_{metric}"] = str(wins_ties_losses(theirs, ours))
                for metric in risk_metrics(metrics):  # URisk, TRisk: each loss weighed 1 + alpha times
                    row.update(risk_columns(metric, values[metric].to_numpy(), base[metric].to_numpy()))
            rows.append(row)
    frame = pd.DataFrame(rows)
    return apply_corrections(frame, metrics, correction=correction, alpha=alpha)


FAMILY_KEYS = ("dataset", "slice", "baseline")


def apply_corrections(frame: pd.DataFrame, metrics: list[str] | None = None, correction: str = DEFAULT_CORRECTION,
                      alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Correct the randomization p-values for multiple testing, one family per (dataset, slice,
    baseline) and metric: every row compared with the same baseline on the same queries.

    Adds ``p_adj_<m>`` (the corrected p), ``sig_<m>`` ('*' <= alpha, '**' <= alpha/5 after
    correction), ``correction`` and ``family_size`` (the number of systems in the row's family).
    On the leaderboard this runs over the whole board after every update, so a row's family is
    every system the leaderboard compares with that baseline, however many invocations made it.
    """
    if frame.empty or "baseline" not in frame.columns:
        return frame
    frame = frame.copy()
    metrics = metrics or [column[2:] for column in frame.columns
                          if column.startswith("p_") and not column.startswith(("p_t_", "p_adj_", "p_holm_", "p_se_"))]
    keys = [key for key in FAMILY_KEYS if key in frame.columns]
    compared = frame["baseline"].notna() & (frame["baseline"].astype(str) != "")
    frame["correction"] = np.where(compared, correction, None)
    frame["family_size"] = np.nan
    for _, group in frame[compared].groupby(keys, dropna=False):
        frame.loc[group.index, "family_size"] = len(group)
    for metric in metrics:
        if f"p_{metric}" not in frame.columns:
            continue
        frame[f"p_adj_{metric}"] = np.nan
        for _, group in frame[compared].groupby(keys, dropna=False):
            frame.loc[group.index, f"p_adj_{metric}"] = adjust_p_values(group[f"p_{metric}"].to_numpy(dtype=float),
                                                                         correction)
        frame[f"sig_{metric}"] = ["" if pd.isna(p) else significance_marker(p, alpha)
                                  for p in frame[f"p_adj_{metric}"]]
        frame = frame.drop(columns=[f"p_holm_{metric}"], errors="ignore")  # the 0.1 column: per-invocation family
    return frame
