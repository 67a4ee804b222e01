"""Statistics for per-query metric values: confidence intervals, paired tests, Holm correction.

The paired t-test is ranx's (scipy's ``ttest_rel``). The randomization test is written
here rather than taken from ranx: ranx's numba version draws its permutations in parallel
threads, so its p-values change from call to call with the same seed, and it reports
p = 0 when no permutation reaches the observed difference. This one flips the signs of
the per-query differences (equivalent to swapping the two systems' scores per query) and
is exact, enumerating every sign pattern, up to 40 non-zero differences (every TREC DL
slice); beyond, a seeded Monte Carlo estimate with its standard error.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

DEFAULT_PERMUTATIONS = 100_000
MIN_MONTE_CARLO = 100_000  # draws when the exact test is out of reach
EXACT_LIMIT = 40  # non-zero differences up to which p is exact (2 x 2^20 half sums)
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8


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


@dataclass(frozen=True)
class RandomizationResult:
    """A paired randomization test: the two-sided p-value, how it was computed (``exact``
    enumeration of every sign pattern, or ``monte-carlo``), the number of non-zero differences,
    the patterns counted, and the Monte Carlo standard error (0 when exact)."""

    p_value: float
    method: str
    n_nonzero: int
    patterns: int
    standard_error: float = 0.0


def randomization_test(baseline, treatment, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                       exact_limit: int = EXACT_LIMIT) -> float:
    """Two-sided paired (Fisher) randomization test of the mean difference; the p-value of
    :func:`randomization_result` (exact up to ``exact_limit`` non-zero differences)."""
    return randomization_result(baseline, treatment, permutations, seed, exact_limit).p_value


def randomization_result(baseline, treatment, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                         exact_limit: int = EXACT_LIMIT) -> RandomizationResult:
    """Two-sided paired randomization (sign-flip) test of the mean per-query difference.

    Under the null hypothesis the two systems are exchangeable per query, so each difference
    ``d_i = treatment_i - baseline_i`` is as likely to have had the opposite sign. The statistic
    is ``|sum_i s_i d_i|`` over sign patterns ``s``; the two-sided p-value is the share of the
    ``2^n`` equally likely patterns whose statistic reaches the observed ``|sum_i d_i|`` (the
    observed pattern and its mirror included, so p >= 2 / 2^n). Zero differences flip to
    themselves and are left out (n counts the non-zero ones).

    Up to ``exact_limit`` non-zero differences (default 40) the p-value is exact: the sums of
    the two halves of the differences are enumerated (2^(n/2) each) and pairs reaching the
    observed statistic counted with a sorted search (meet in the middle). Beyond that,
    ``max(permutations, 100000)`` random patterns estimate it as (count + 1) / (draws + 1),
    with its binomial standard error recorded.
    """
    differences = np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float)
    scale = float(np.max(np.abs(differences))) if len(differences) else 0.0
    nonzero = differences[np.abs(differences) > 1e-12 * max(scale, 1.0)] if scale > 0 else differences[:0]
    n = len(nonzero)
    if n == 0:
        return RandomizationResult(1.0, "exact", 0, 1)
    observed = abs(float(nonzero.sum()))
    # sums computed in a different order may differ in the last bits: a pattern reaching the
    # observed statistic within this tolerance counts as reaching it
    tolerance = 1e-9 * max(float(np.abs(nonzero).sum()), 1e-300)
    if n <= exact_limit:
        count = _count_reaching(nonzero, observed - tolerance)
        total = 2 ** n
        return RandomizationResult(count / total, "exact", n, total)
    draws = max(int(permutations), MIN_MONTE_CARLO)
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, draws, 4000):  # chunks bound the memory of the sign matrix
        size = min(4000, draws - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        extreme += int(np.count_nonzero(np.abs(signs @ nonzero) >= observed - tolerance))
    p = (extreme + 1) / (draws + 1)
    return RandomizationResult(p, "monte-carlo", n, draws, float(np.sqrt(p * (1 - p) / draws)))


def _half_sums(values: np.ndarray) -> np.ndarray:
    """Every signed sum of ``values`` (2^len of them)."""
    sums = np.zeros(1)
    for value in values:
        sums = np.concatenate([sums + value, sums - value])
    return sums


def _count_reaching(values: np.ndarray, threshold: float) -> int:
    """Number of sign patterns s with |sum s_i v_i| >= threshold, by meet in the middle."""
    half = len(values) // 2
    left, right = _half_sums(values[:half]), np.sort(_half_sums(values[half:]))
    # a + b >= threshold  <=>  b >= threshold - a ;  a + b <= -threshold  <=>  b <= -threshold - a
    upper = len(right) - np.searchsorted(right, threshold - left, side="left")
    lower = np.searchsorted(right, -threshold - left, side="right")
    # with threshold > 0 the two sets are disjoint
    return int(upper.sum() + lower.sum()) if threshold > 0 else len(left) * len(right)


def paired_t_test(baseline, treatment) -> float:
    """Two-sided paired Student t-test p-value (ranx's implementation); 1.0 when all differences are 0."""
    from ranx.statistical_tests import paired_student_t_test

    baseline, treatment = np.asarray(baseline, dtype=float), np.asarray(treatment, dtype=float)
    if len(baseline) < 2 or np.allclose(baseline, treatment):
        return 1.0
    p_value, _ = paired_student_t_test(baseline, treatment)
    return 1.0 if np.isnan(p_value) else float(p_value)


def holm_bonferroni(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    Computed here, not by statsmodels' ``multipletests(method="holm")``, which runs a full
    ``gc.collect()`` per call (0.3 s in a process holding torch and pandas; the leaderboard
    corrects ~100 families per update); the tests check both agree."""
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


#: multiple-testing corrections: workbench name -> statsmodels ``multipletests`` method
CORRECTIONS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "none": None}
DEFAULT_CORRECTION = "holm"


def adjust_p_values(p_values, correction: str = DEFAULT_CORRECTION) -> np.ndarray:
    """p-values adjusted for testing them as one family: ``holm`` (Holm–Bonferroni step-down,
    controls the family-wise error rate; the default), ``bonferroni``, ``bh``
    (Benjamini–Hochberg, controls the false discovery rate) or ``none``; statsmodels'
    ``multipletests``. NaN p-values (nothing tested) stay NaN and are not counted."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; known: {', '.join(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=float)
    adjusted = p.copy()
    tested = ~np.isnan(p)
    if CORRECTIONS[correction] is None or not tested.any():
        return adjusted
    if correction == "holm":
        adjusted[tested] = holm_bonferroni(p[tested])
        return adjusted
    from statsmodels.stats.multitest import multipletests

    adjusted[tested] = multipletests(p[tested], method=CORRECTIONS[correction])[1]
    return np.minimum(adjusted, 1.0)


@dataclass(frozen=True)
class PairedEffect:
    """Size of a paired difference: ``d_z`` = mean / SD of the per-query differences, with a
    CI, and the minimal detectable effect (in metric units) of a slice of this size and
    variance."""

    d_z: float
    d_z_ci_low: float
    d_z_ci_high: float
    minimal_detectable_effect: float


def paired_effect(baseline, treatment, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
                  level: float = 0.95) -> PairedEffect:
    """Paired effect size and power of one comparison on one slice.

    ``d_z = mean(d) / sd(d)`` (Cohen's d for paired samples) with an approximate CI
    ``d_z ± z * sqrt(1/n + d_z^2 / (2n))``. The minimal detectable effect is the smallest mean
    difference a two-sided paired t-test at ``alpha`` detects with probability ``power`` given
    n and the observed SD of the differences: the ``d_z`` solving statsmodels' ``TTestPower``
    (noncentral t) for n, alpha and power, times that SD.
    So "not significant" on a slice with an MDE of 0.15 means "could not have detected less
    than 0.15". NaN where n < 2 or every difference is equal."""
    differences = np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(differences)
    nan = float("nan")
    if n < 2:
        return PairedEffect(nan, nan, nan, nan)
    sd = float(differences.std(ddof=1))
    mde = minimal_detectable_d(n, alpha, power) * sd
    if sd <= 1e-12:
        return PairedEffect(nan, nan, nan, mde)
    d_z = float(differences.mean()) / sd
    half = float(_scipy_stats.norm.ppf((1 + level) / 2)) * float(np.sqrt(1 / n + d_z ** 2 / (2 * n)))
    return PairedEffect(d_z, d_z - half, d_z + half, mde)


@functools.lru_cache(maxsize=256)
def minimal_detectable_d(n: int, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER) -> float:
    """Smallest standardised paired effect ``d_z`` that a two-sided one-sample t-test on n
    differences detects at ``alpha`` with probability ``power`` (statsmodels' TTestPower)."""
    from statsmodels.stats.power import TTestPower

    solved = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="two-sided")
    # a 1-element array for some n, and for some (n = 73) the solver lands on the negative root: the
    # two-sided power is symmetric in the effect, so its size is the absolute value
    return abs(float(np.asarray(solved, dtype=float).ravel()[0]))


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
