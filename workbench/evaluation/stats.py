"""Statistics for per-query metric values: confidence intervals, paired tests, Holm correction.

The paired t-test is ranx's (scipy's ``ttest_rel``). The randomization test is written
here rather than taken from ranx: ranx's numba version draws its permutations in parallel
threads, so its p-values change from call to call with the same seed, and it reports
p = 0 when no permutation reaches the observed difference. This one flips the signs of
the per-query differences (equivalent to swapping the two systems' scores per query),
is reproducible for a seed, and uses the (count + 1) / (n + 1) estimate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

DEFAULT_PERMUTATIONS = 10_000
DEFAULT_ALPHA = 0.05


def confidence_interval(values, level: float = 0.95, method: str = "t", resamples: int = 10_000,
                        seed: int = 0) -> tuple[float, float]:
    """Confidence interval of the mean of per-query values (Student t, or percentile bootstrap)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    mean = float(values.mean())
    if n == 1:
        return (mean, mean)
    if method == "t":
        half = _scipy_stats.t.ppf((1 + level) / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)
        return (mean - float(half), mean + float(half))
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
        return (float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2)))
    raise ValueError(f"unknown confidence interval method {method!r} (t or bootstrap)")


def randomization_test(baseline, treatment, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided paired (Fisher) randomization test of the difference in means; returns the p-value."""
    differences = np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float)
    if len(differences) == 0 or not np.any(differences):
        return 1.0
    observed = abs(differences.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, 2000):  # chunks bound the memory of the sign matrix
        size = min(2000, permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, len(differences)))
        extreme += int(np.count_nonzero(np.abs((signs * differences).mean(axis=1)) >= observed - 1e-12))
    return (extreme + 1) / (permutations + 1)


def paired_t_test(baseline, treatment) -> float:
    """Two-sided paired Student t-test p-value (ranx's implementation); 1.0 when all differences are 0."""
    from ranx.statistical_tests import paired_student_t_test

    baseline, treatment = np.asarray(baseline, dtype=float), np.asarray(treatment, dtype=float)
    if len(baseline) < 2 or np.allclose(baseline, treatment):
        return 1.0
    p_value, _ = paired_student_t_test(baseline, treatment)
    return 1.0 if np.isnan(p_value) else float(p_value)


def holm_bonferroni(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    adjusted = np.empty(m)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, (m - position) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


@dataclass(frozen=True)
class WinsTiesLosses:
    wins: int
    ties: int
    losses: int

    def __str__(self) -> str:
        return f"{self.wins}/{self.ties}/{self.losses}"


def wins_ties_losses(baseline, treatment, tolerance: float = 1e-9) -> WinsTiesLosses:
    """Per-query comparison of a treatment with a baseline."""
    differences = np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float)
    return WinsTiesLosses(int(np.sum(differences > tolerance)), int(np.sum(np.abs(differences) <= tolerance)),
                          int(np.sum(differences < -tolerance)))


def significance_marker(adjusted_p: float, alpha: float = DEFAULT_ALPHA) -> str:
    """'*' when significant at ``alpha`` after correction, '**' at alpha/5, '' otherwise."""
    if np.isnan(adjusted_p):
        return ""
    return "**" if adjusted_p <= alpha / 5 else "*" if adjusted_p <= alpha else ""
