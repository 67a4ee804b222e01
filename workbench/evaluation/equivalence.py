"""Paired equivalence tests: "as good within ±margin" as a claim with its p-value.

A non-significant difference is absence of evidence, not evidence of absence. The two one-sided
tests procedure (TOST; Schuirmann, 1987) turns the question around: with the per-query
differences d = treatment - baseline, it tests H0: mean(d) <= -margin against mean(d) > -margin
and H0: mean(d) >= +margin against mean(d) < +margin, each with a one-sided paired t-test
(n - 1 degrees of freedom). The treatment is *equivalent* within ±margin when both reject at
level alpha, i.e. when p = max(p_lower, p_upper) <= alpha; the same holds exactly when the
(1 - 2 alpha) confidence interval of the mean difference lies inside (-margin, +margin). This is
statsmodels' ``ttost_paired`` (checked against it in the tests), with the degenerate cases
stated rather than turned into NaN: no variance at all, and fewer than two queries.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError

DEFAULT_EQUIVALENCE_ALPHA = 0.05


@dataclass(frozen=True)
class EquivalenceResult:
    """The TOST of a treatment against a baseline over paired per-query values.

    ``mean_difference`` is mean(treatment - baseline); ``ci_low``/``ci_high`` its (1 - 2 alpha)
    confidence interval (90% at alpha 0.05); ``p_lower`` tests against -margin, ``p_upper`` against
    +margin, ``p_value`` is the larger; ``equivalent`` iff ``p_value <= alpha``."""

    margin: float
    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool
    alpha: float = DEFAULT_EQUIVALENCE_ALPHA
    zero_variance: bool = False

    @property
    def ci_level(self) -> float:
        """Confidence level of ``ci_low``/``ci_high``: 1 - 2 alpha."""
        return 1.0 - 2.0 * self.alpha

    @property
    def verdict(self) -> str:
        """One line a person can quote, e.g. ``equivalent within ±0.01 (TOST p = 0.003; 90% CI of
        the difference [-0.0040, +0.0060]; n = 97)``."""
        within = f"within ±{self.margin:g}"
        if self.n < 2:
            return (f"not testable {within}: {self.n} paired quer{'y' if self.n == 1 else 'ies'} "
                    "(a paired t-test needs at least 2)")
        if self.zero_variance:
            # every difference is the same number: no t-test, the mean itself decides
            head = "equivalent" if self.equivalent else "not equivalent"
            return (f"{head} {within}: every per-query difference is {self.mean_difference:+.4f} "
                    f"(no variance, so no t-test; n = {self.n})")
        head = "equivalent" if self.equivalent else "not shown equivalent"
        return (f"{head} {within} (TOST p = {format_p_value(self.p_value)}; {self.ci_level:.0%} CI of the "
                f"difference [{self.ci_low:+.4f}, {self.ci_high:+.4f}]; n = {self.n})")

    def __str__(self) -> str:
        return self.verdict

    def as_dict(self) -> dict[str, Any]:
        """The fields and the verdict, for a JSON report (NaN where a value does not exist)."""
        return {**asdict(self), "verdict": self.verdict}


@dataclass(frozen=True)
class EquivalenceSpec:
    """What ``--equivalence`` asked for: a margin, on a named metric or (``metric`` None) on the
    command's main metric."""

    margin: float
    metric: str | None = None

    def metric_or(self, default: str) -> str:
        """The named metric, else ``default`` (the command's main metric)."""
        return self.metric or default


def format_p_value(p: float) -> str:
    """A p-value for a line of text: three decimals, or scientific below 0.001."""
    if math.isnan(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 or p == 0.0 else f"{p:.1e}"


def check_margin(margin: Any) -> float:
    """``margin`` as a float; one-line :class:`WorkbenchError` unless it is a finite number > 0."""
    # bool is a number to Python but never a margin; strings are parsed by parse_equivalence
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
        raise WorkbenchError(f"equivalence margin must be a positive number, got {margin!r}")
    value = float(margin)
    if not math.isfinite(value) or value <= 0:
        raise WorkbenchError(f"equivalence margin must be a positive number, got {margin!r}")
    return value


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float; one-line :class:`WorkbenchError` unless it is in (0, 0.5)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 0.5:
        # at alpha >= 0.5 the (1 - 2 alpha) interval is empty or inverted
        raise WorkbenchError(f"equivalence alpha must be a number in (0, 0.5), got {alpha!r}")
    return float(alpha)


def paired_tost(baseline, treatment, margin: float,
                alpha: float = DEFAULT_EQUIVALENCE_ALPHA) -> EquivalenceResult:
    """TOST of ``treatment`` against ``baseline`` (paired per-query values, same order) with the
    equivalence bounds (-margin, +margin); see the module docstring."""
    margin = check_margin(margin)
    alpha = check_alpha(alpha)
    base = np.asarray(baseline, dtype=float).ravel()
    treat = np.asarray(treatment, dtype=float).ravel()
    if base.shape != treat.shape:
        raise WorkbenchError(f"paired values differ in length: {base.size} baseline, {treat.size} treatment")
    if not (np.isfinite(base).all() and np.isfinite(treat).all()):
        raise WorkbenchError("paired values must be finite numbers (a NaN or infinity is in them)")
    differences = treat - base
    n = int(differences.size)
    if n < 2:
        mean = float(differences.mean()) if n else math.nan
        return EquivalenceResult(margin, n, mean, math.nan, math.nan, 1.0, 1.0, 1.0, False, alpha)
    from scipy import stats

    mean = float(differences.mean())
    se = float(differences.std(ddof=1)) / math.sqrt(n)
    # a spread of rounding size around one repeated value is no variance either
    if se <= 1e-15 * max(1.0, abs(mean)):
        # no spread: the mean is known exactly, each one-sided test rejects iff the mean is strictly
        # inside its bound (statsmodels divides by zero here)
        p_lower = 0.0 if mean > -margin else 1.0
        p_upper = 0.0 if mean < margin else 1.0
        p_value = max(p_lower, p_upper)
        return EquivalenceResult(margin, n, mean, mean, mean, p_lower, p_upper, p_value,
                                 p_value <= alpha, alpha, zero_variance=True)
    df = n - 1
    p_lower = float(stats.t.sf((mean + margin) / se, df))   # H0: mean <= -margin
    p_upper = float(stats.t.cdf((mean - margin) / se, df))  # H0: mean >= +margin
    half = float(stats.t.ppf(1.0 - alpha, df)) * se
    p_value = max(p_lower, p_upper)
    return EquivalenceResult(margin, n, mean, mean - half, mean + half, p_lower, p_upper, p_value,
                             p_value <= alpha, alpha)


def parse_equivalence(text: Any) -> EquivalenceSpec:
    """Parse ``--equivalence``: ``0.01`` (the command's main metric) or ``METRIC=0.01``
    (``ndcg@10=0.01``, ``RR(rel=2)@10=0.005``); one-line :class:`WorkbenchError` for a bad spec."""
    if isinstance(text, EquivalenceSpec):
        return text
    spec = str(text).strip()
    # the margin follows the last '=': ir_measures names have '=' inside parentheses
    metric, eq, number = spec.rpartition("=")
    metric = metric.strip()
    if eq and not metric:
        raise WorkbenchError(f"--equivalence {spec!r}: a metric is missing before '=' "
                             "(expected MARGIN or METRIC=MARGIN, as in 0.01 or ndcg@10=0.01)")
    number = number.strip()
    try:
        value = float(number)
    except ValueError:
        raise WorkbenchError(f"--equivalence {spec!r}: {number!r} is not a number "
                             "(expected MARGIN or METRIC=MARGIN, as in 0.01 or ndcg@10=0.01)") from None
    try:
        margin = check_margin(value)
    except WorkbenchError:
        raise WorkbenchError(f"--equivalence {spec!r}: the margin must be a positive number, got {number}") from None
    if metric:
        from ..core.measures import resolve_measure

        try:
            metric = resolve_measure(metric).name
        except WorkbenchError as error:
            raise WorkbenchError(f"--equivalence {spec!r}: {error}") from None
    return EquivalenceSpec(margin, metric or None)
