"""Statistics of reranking depth: each depth of one system against its deepest depth.

The runs of one reranked system at several depths k (the top k of the same candidates reranked
by the same scores) are paired per query. Per depth and metric: the mean with its confidence
interval; against the deepest depth the mean difference, a two-sided paired randomization test
(:func:`~.stats.randomization_result`), its p-value corrected over the shallower depths (one family
per dataset and metric: the question is asked once per depth), and, given a margin, the two one-sided
tests of equivalence (:func:`~.equivalence.paired_tost`).

:func:`smallest_sufficient_depth` then answers the question the table is for: the smallest depth
from which on no depth is significantly worse than the deepest, and whether it is shown
equivalent to the deepest within the margin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from .equivalence import paired_tost
from .stats import (DEFAULT_ALPHA, DEFAULT_CORRECTION, DEFAULT_PERMUTATIONS, adjust_p_values, confidence_interval,
                    randomization_result, significance_marker, wins_ties_losses)


def depth_statistics(per_query: Mapping[int, pd.DataFrame], metrics: list[str],
                     margins: Mapping[str, float] | None = None, alpha: float = DEFAULT_ALPHA,
                     correction: str = DEFAULT_CORRECTION, ci_level: float = 0.95,
                     permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> pd.DataFrame:
    """One row per depth (deepest first) for one dataset or pool.

    ``per_query`` maps each depth to its per-query metric table (index qid; the same queries at
    every depth). Columns: ``depth``, ``n_queries``, each metric with ``<m>_ci_low``/``<m>_ci_high``
    (t interval at ``ci_level``); against the deepest depth ``delta_<m>``, ``p_<m>`` (randomization,
    exact up to 40 non-zero differences), ``p_adj_<m>`` (``correction`` over the shallower depths),
    ``sig_<m>`` ('*'/'**' at alpha/alpha/5 after correction), ``worse_<m>`` (significantly worse:
    negative delta and corrected p <= alpha), ``wtl_<m>``; for a metric with a margin in
    ``margins`` also ``margin_<m>``, ``tost_p_<m>``, ``tost_ci_low_<m>``/``tost_ci_high_<m>`` (the
    (1 - 2 alpha) interval of the difference) and ``equivalent_<m>``. The deepest row has no test
    (NaN, empty). ``margins`` may only name metrics in ``metrics``.
    """
    if not per_query:
        raise WorkbenchError("no depth to compare")
    margins = dict(margins or {})
    unknown = [metric for metric in margins if metric not in metrics]
    if unknown:
        raise WorkbenchError(f"equivalence margin on {', '.join(unknown)}, which is not among the metrics "
                             f"({', '.join(metrics)})")
    depths = sorted(per_query, reverse=True)
    deepest = per_query[depths[0]]
    qids = deepest.index
    for depth in depths[1:]:
        if set(per_query[depth].index) != set(qids):
            raise WorkbenchError(f"depth {depth} was evaluated on other queries than depth {depths[0]}: "
                                 "the depths of one dataset must be paired per query")
    rows = []
    for depth in depths:
        table = per_query[depth].loc[qids]
        row: dict[str, object] = {"depth": depth, "n_queries": len(qids)}
        for metric in metrics:
            values = table[metric].to_numpy(dtype=float)
            base = deepest[metric].to_numpy(dtype=float)
            low, high = confidence_interval(values, ci_level)
            row[metric] = float(values.mean()) if len(values) else float("nan")
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
            shallower = depth != depths[0]
            row[f"delta_{metric}"] = float(values.mean() - base.mean()) if len(values) else float("nan")
            row[f"p_{metric}"] = randomization_result(base, values, permutations, seed).p_value if shallower else np.nan
            row[f"wtl_{metric}"] = str(wins_ties_losses(base, values)) if shallower else ""
            if metric in margins:
                row[f"margin_{metric}"] = float(margins[metric])
                tost = paired_tost(base, values, margins[metric], alpha) if shallower else None
                row[f"tost_p_{metric}"] = tost.p_value if tost else np.nan
                row[f"tost_ci_low_{metric}"] = tost.ci_low if tost else np.nan
                row[f"tost_ci_high_{metric}"] = tost.ci_high if tost else np.nan
                row[f"equivalent_{metric}"] = tost.equivalent if tost else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    for metric in metrics:
        frame[f"p_adj_{metric}"] = adjust_p_values(frame[f"p_{metric}"].to_numpy(dtype=float), correction)
        frame[f"sig_{metric}"] = [significance_marker(p, alpha) for p in frame[f"p_adj_{metric}"]]
        frame[f"worse_{metric}"] = (frame[f"delta_{metric}"] < 0) & (frame[f"p_adj_{metric}"] <= alpha)
    return frame


@dataclass(frozen=True)
class DepthChoice:
    """The answer for one dataset and metric: ``not_worse`` is the smallest depth from which on
    (it and every deeper depth) none is significantly worse than the ``deepest``; ``equivalent``
    whether that depth is shown equivalent to the deepest within ``margin`` (None: no margin, or
    ``not_worse`` is the deepest itself); ``smallest_equivalent`` the smallest depth from which on
    every shallower depth is shown equivalent (None: not even the next one, or no margin)."""

    metric: str
    deepest: int
    not_worse: int
    equivalent: bool | None
    margin: float | None
    smallest_equivalent: int | None

    @property
    def verdict(self) -> str:
        """One line, e.g. ``k = 20 is the smallest depth not significantly worse than k = 100; k = 20 is
        equivalent within ±0.01; ...``."""
        if self.not_worse == self.deepest:
            parts = [f"every depth below k = {self.deepest} is significantly worse"]
        else:
            parts = [f"k = {self.not_worse} is the smallest depth not significantly worse than k = {self.deepest}"]
        if self.margin is None:
            return parts[0]
        if self.not_worse != self.deepest:
            shown = "equivalent" if self.equivalent else "not shown equivalent"
            parts.append(f"k = {self.not_worse} is {shown} within ±{self.margin:g}")
        if self.smallest_equivalent is None:
            parts.append(f"no shallower depth is shown equivalent within ±{self.margin:g}")
        else:
            parts.append(f"every depth from k = {self.smallest_equivalent} on is shown equivalent")
        return "; ".join(parts)


def smallest_sufficient_depth(table: pd.DataFrame, metric: str) -> DepthChoice:
    """The smallest sufficient depth of one metric in a :func:`depth_statistics` table.

    Walking from the deepest depth down, a depth is kept while it is not significantly worse
    (``worse_<metric>`` false); the answer is the last depth kept, so a shallow depth that is not
    significantly worse by chance below a deeper one that is does not count. Likewise for the
    smallest equivalent depth with ``equivalent_<metric>``."""
    ordered = table.sort_values("depth", ascending=False)
    depths = [int(depth) for depth in ordered["depth"]]
    deepest = depths[0]
    not_worse = deepest
    for depth, worse in zip(depths[1:], ordered[f"worse_{metric}"].to_numpy()[1:]):
        if bool(worse):
            break
        not_worse = depth
    column = f"equivalent_{metric}"
    if column not in ordered.columns:
        return DepthChoice(metric, deepest, not_worse, None, None, None)
    margin = float(ordered[f"margin_{metric}"].iloc[0])
    flags = dict(zip(depths, ordered[column]))
    smallest_equivalent = None
    for depth in depths[1:]:
        if not bool(flags[depth]):
            break
        smallest_equivalent = depth
    # the deepest depth is the reference itself: whether it is equivalent to itself is no question
    equivalent = None if not_worse == deepest else bool(flags[not_worse])
    return DepthChoice(metric, deepest, not_worse, equivalent, margin, smallest_equivalent)
