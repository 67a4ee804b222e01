"""Risk-sensitive measures: URisk and TRisk against one baseline (Dinçer, Santos, Macdonald and
Ounis, 2014, "Hypothesis testing for the risk-sensitive evaluation of retrieval systems", SIGIR)
and GeoRisk against every system compared (Dinçer, Macdonald and Ounis, 2016, "Risk-sensitive
evaluation and learning to rank using multiple baselines", SIGIR).

A mean gain can hide queries that a system makes much worse; these measures weigh each loss
``1 + alpha`` times (``alpha = 0``: a loss counts as much as a gain, URisk is the mean delta).
Columns on the leaderboard: ``urisk_a<alpha>_<m>``, ``trisk_a<alpha>_<m>``,
``trisk_p_a<alpha>_<m>`` (two-sided, Student t with c - 1 df, uncorrected),
``trisk_sig_a<alpha>_<m>`` (:data:`RISKIER`, :data:`GAIN` or empty: that p at most
:data:`TRISK_LEVEL`, with TRisk's sign) and
``georisk_a<alpha>_<m>``; none starts with ``p_``, which the leaderboard reads as a p-value to
correct for multiple testing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from .metrics import HEADLINE_METRICS

#: the risk-aversion levels reported (the TREC Web track's risk task used 1, 5 and 10; 0 is the risk-neutral mean delta)
RISK_ALPHAS = (0, 1, 2, 5)
#: TRisk is significant when its two-sided p (Student t, c - 1 df) is at most this. Dinçer et al.
#: (2014) read |TRisk| > 2 as significant: the large-sample form of this test, p = 0.05 only near
#: 60 queries (at 3 queries |t| = 2 is p = 0.18, at 10 p = 0.077)
TRISK_LEVEL = 0.05
#: TRisk < 0 and significant: riskier than the baseline (its losses outweigh its gains)
RISKIER = "riskier"
#: TRisk > 0 and significant: a gain over the baseline even with losses weighed 1 + alpha times
GAIN = "gain"
#: r spread (max - min) at most this times max(1, |mean|) is rounding, not variance (as in equivalence.py)
_SPREAD_TOLERANCE = 1e-12


@dataclass(frozen=True)
class TRisk:
    """TRisk of a system against its baseline at one alpha: the studentised URisk."""

    urisk: float
    trisk: float
    p_value: float  # two-sided, Student t with c - 1 degrees of freedom
    verdict: str  # RISKIER, GAIN or "" (neither)


def risk_adjusted(deltas: np.ndarray, alpha: float) -> np.ndarray:
    """Per-query risk-reward values: a gain as it is, a loss times ``1 + alpha``."""
    deltas = np.asarray(deltas, dtype=float)
    return np.where(deltas < 0, (1.0 + alpha) * deltas, deltas)


def urisk(treatment: np.ndarray, baseline: np.ndarray, alpha: float) -> float:
    """URisk_alpha = (1/c) [sum of gains + (1 + alpha) sum of losses], over the c paired queries
    (Dinçer et al., 2014; the risk-reward trade-off of Wang, Bennett and
    Collins-Thompson, 2012). NaN when c = 0."""
    deltas = _deltas(treatment, baseline)
    return float(risk_adjusted(deltas, alpha).mean()) if len(deltas) else float("nan")


def trisk(treatment: np.ndarray, baseline: np.ndarray, alpha: float,
          level: float = TRISK_LEVEL) -> TRisk:
    """TRisk_alpha = URisk_alpha / SE, SE = sd(r) / sqrt(c) with r the risk-adjusted per-query
    deltas (sample sd, ddof 1): a one-sample t statistic of r (Dinçer et al., 2014).

    The verdict (:func:`trisk_verdict`): two-sided p at most ``level``, :data:`RISKIER` for a
    negative TRisk, :data:`GAIN` for a positive one. Fewer than two queries: NaN. Every r equal
    (up to rounding): 0 with p = 1 when their mean is 0 (no difference), else an infinite TRisk
    with p = 0."""
    from scipy import stats

    values = risk_adjusted(_deltas(treatment, baseline), alpha)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return TRisk(mean, float("nan"), float("nan"), "")
    # no spread (up to rounding, as scipy's t would be 0/0 or ~1e16): the sign of the mean decides
    if np.ptp(values) <= _SPREAD_TOLERANCE * max(1.0, abs(mean)):
        zero = abs(mean) <= _SPREAD_TOLERANCE  # deltas of rounding size around 0: no difference
        t, p = (0.0, 1.0) if zero else (float(np.copysign(np.inf, mean)), 0.0)
    else:
        result = stats.ttest_1samp(values, 0.0)
        t, p = float(result.statistic), float(result.pvalue)
    return TRisk(mean, t, p, trisk_verdict(t, p, level))


def trisk_verdict(t: float, p: float, level: float = TRISK_LEVEL) -> str:
    """:data:`RISKIER` for TRisk < 0 with two-sided p <= ``level``, :data:`GAIN` for TRisk > 0 with
    p <= ``level``, else empty (NaN, or not significant whatever |TRisk|)."""
    if pd.isna(t) or pd.isna(p) or p > level:
        return ""
    return RISKIER if t < 0 else GAIN if t > 0 else ""


def zrisk(matrix: pd.DataFrame, alpha: float) -> pd.Series:
    """ZRisk_alpha of every system (rows) over the topics (columns) of one metric (Dinçer et al.,
    2016): with S_i the system's total, T_j the topic's, N the grand total, the expected
    score e_ij = S_i T_j / N, z_ij = (x_ij - e_ij) / sqrt(e_ij), and ZRisk_i = sum of positive
    z_ij + (1 + alpha) sum of negative z_ij. A cell with e_ij = 0 (a topic or a system scoring 0
    everywhere; then x_ij = 0 too) contributes 0: observed equals expected."""
    x = _checked(matrix)
    system_totals, topic_totals, total = x.sum(axis=1), x.sum(axis=0), x.sum()
    expected = np.outer(system_totals, topic_totals) / total if total > 0 else np.zeros_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(expected > 0, (x - expected) / np.sqrt(expected), 0.0)
    return pd.Series(risk_adjusted(z, alpha).sum(axis=1), index=matrix.index, dtype=float)


def georisk(matrix: pd.DataFrame, alpha: float) -> pd.Series:
    """GeoRisk_alpha of every system (rows) over the topics (columns) of one metric (Dinçer et al.,
    2016): sqrt((S_i / c) * Phi(ZRisk_i / c)), the geometric mean of the system's mean
    score and the normal CDF of its per-topic ZRisk. Higher is better: effective and, against
    every other system compared, rarely below what a topic's difficulty leads one to expect.
    It depends on the systems in the matrix. NaN with no topic."""
    from scipy.stats import norm

    x = _checked(matrix)
    topics = x.shape[1]
    if topics == 0:
        return pd.Series(np.nan, index=matrix.index, dtype=float)
    means = x.sum(axis=1) / topics
    return pd.Series(np.sqrt(means * norm.cdf(zrisk(matrix, alpha).to_numpy() / topics)), index=matrix.index,
                     dtype=float)


def risk_metrics(metrics: Iterable[str]) -> list[str]:
    """The metrics given risk columns: TREC DL's headline metrics (MRR@10, NDCG@5) where evaluated,
    else the first two (CACM: MAP, P@30), as the leaderboard's headline reads them."""
    metrics = list(metrics)
    headline = [m for m in HEADLINE_METRICS if m in metrics]
    return headline or metrics[:2]


def risk_columns(metric: str, treatment: np.ndarray, baseline: np.ndarray,
                 alphas: Iterable[float] = RISK_ALPHAS) -> dict[str, object]:
    """URisk, TRisk, its p-value and its verdict of one metric at every alpha, named as on the
    leaderboard (``urisk_a2_ndcg@5``, ``trisk_a2_ndcg@5``, ``trisk_p_a2_ndcg@5``, ``trisk_sig_a2_ndcg@5``)."""
    columns: dict[str, object] = {}
    for alpha in alphas:
        result = trisk(treatment, baseline, alpha)
        tag = f"a{alpha:g}_{metric}"
        columns[f"urisk_{tag}"], columns[f"trisk_{tag}"] = result.urisk, result.trisk
        columns[f"trisk_p_{tag}"], columns[f"trisk_sig_{tag}"] = result.p_value, result.verdict
    return columns


def georisk_columns(per_query: Mapping[str, pd.DataFrame], qids: Iterable[str], metrics: Iterable[str],
                    alphas: Iterable[float] = RISK_ALPHAS) -> pd.DataFrame:
    """GeoRisk of every system of ``per_query`` (system -> per-query table, index qid) over ``qids``,
    one column per metric and alpha (``georisk_a2_ndcg@5``), one row per system. A query a
    system's table lacks scores 0 (as a judged query missing from a run does)."""
    qids = list(qids)
    frame = pd.DataFrame(index=pd.Index(list(per_query), name="system"))
    for metric in metrics:
        matrix = pd.DataFrame({system: table[metric].reindex(qids) for system, table in per_query.items()}).T
        matrix = matrix.reindex(columns=qids).fillna(0.0)
        for alpha in alphas:
            frame[f"georisk_a{alpha:g}_{metric}"] = georisk(matrix, alpha)
    return frame


def _deltas(treatment: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    treatment, baseline = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if treatment.shape != baseline.shape:
        raise WorkbenchError(f"risk: {treatment.size} treatment values against {baseline.size} baseline "
                             "values; pair them query by query")
    return treatment - baseline


def _checked(matrix: pd.DataFrame) -> np.ndarray:
    x = matrix.to_numpy(dtype=float)
    if np.isnan(x).any():
        raise WorkbenchError("GeoRisk: a system has no score on some topic; score missing topics 0 first")
    if (x < 0).any():
        raise WorkbenchError("GeoRisk needs non-negative scores (its expected values are shares of totals)")
    return x
