"""Equivalence of a faster numeric path to the exact one: ``check-precision --equivalence``.

``check-precision`` says whether a fast path moves a metric by more than a fixed tolerance; this adds
the statistical claim: a paired TOST (:func:`~workbench.evaluation.equivalence.paired_tost`) of each
fast path's per-query values against the exact path's, within ±margin, on every dataset checked and
pooled over DL19 + DL20 when both are (the union of both years' judged queries, each scored with its
own qrels, as ``workbench eval --pool`` pools them). "bf16 is as good as fp32 within ±0.01 NDCG@10"
then comes with a p-value and a confidence interval instead of resting on a non-significant
difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from ..core.errors import WorkbenchError
from ..evaluation.equivalence import (DEFAULT_EQUIVALENCE_ALPHA, EquivalenceResult, EquivalenceSpec,
                                      check_alpha, format_p_value, paired_tost, parse_equivalence)

#: check-precision's main metric: what ``--equivalence MARGIN`` (no metric named) tests
PRECISION_MAIN_METRIC = "ndcg@10"
#: pooled views: name -> members; a pool is reported when every member was measured
EQUIVALENCE_POOLS: dict[str, tuple[str, ...]] = {"dl19+dl20": ("dl19", "dl20")}


@dataclass(frozen=True)
class PathEquivalence:
    """The TOST of one fast path against the exact one, on one dataset (or pool) and metric."""

    dataset: str
    path: str
    metric: str
    result: EquivalenceResult
    pooled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values: NaN (no CI with fewer than two queries) becomes null."""
        values = {key: (None if isinstance(value, float) and math.isnan(value) else value)
                  for key, value in self.result.as_dict().items()}
        return {"dataset": self.dataset, "path": self.path, "metric": self.metric,
                "pooled": list(self.pooled), **values}


@dataclass
class PrecisionEquivalence:
    """Collects every path's per-query values during a check, then tests each fast path against the
    exact one. The first path recorded on a dataset is the exact reference (check-precision's order)."""

    specs: list[EquivalenceSpec]
    alpha: float = DEFAULT_EQUIVALENCE_ALPHA
    _values: dict[tuple[str, str, str], pd.Series] = field(default_factory=dict, repr=False)
    _reference: dict[str, str] = field(default_factory=dict, repr=False)
    _paths: list[str] = field(default_factory=list, repr=False)
    _datasets: list[str] = field(default_factory=list, repr=False)

    @property
    def metrics(self) -> list[str]:
        """The tested metrics, in the order asked (the main metric where none was named)."""
        return list(dict.fromkeys(spec.metric_or(PRECISION_MAIN_METRIC) for spec in self.specs))

    def margin(self, metric: str) -> float:
        """The margin asked for ``metric`` (the last one given wins)."""
        return [s.margin for s in self.specs if s.metric_or(PRECISION_MAIN_METRIC) == metric][-1]

    def record(self, dataset_name: str, path: str, run: pd.DataFrame, dataset: Any, evaluation: Any) -> None:
        """Keep ``path``'s per-query values of every tested metric on ``dataset_name``: from
        ``evaluation`` where it has them, else by evaluating ``run`` with the dataset's qrels."""
        from ..evaluation.metrics import evaluate_run

        missing = [m for m in self.metrics if m not in evaluation.per_query.columns]
        extra = (evaluate_run(run, dataset.qrels, dataset.relevance_level, missing).per_query
                 if missing else None)
        for metric in self.metrics:
            source = evaluation.per_query if metric in evaluation.per_query.columns else extra
            self._values[(dataset_name, path, metric)] = source[metric].astype(float)
        self._reference.setdefault(dataset_name, path)
        for seen, item in ((self._paths, path), (self._datasets, dataset_name)):
            if item not in seen:
                seen.append(item)

    def _paired(self, dataset: str, path: str, metric: str) -> tuple[pd.Series, pd.Series] | None:
        key = (dataset, path, metric)
        if key not in self._values:
            return None
        exact = self._values[(dataset, self._reference[dataset], metric)]
        fast = self._values[key].reindex(exact.index)  # both score every judged query (absent: 0)
        if fast.isna().any():
            raise WorkbenchError(f"{path} on {dataset}: per-query {metric} values differ in their queries "
                                 "from the exact path's")
        return exact, fast

    def results(self) -> list[PathEquivalence]:
        """One TOST per fast path, metric and dataset, then per pool whose members were all measured."""
        checks: list[PathEquivalence] = []
        pools = {name: members for name, members in EQUIVALENCE_POOLS.items()
                 if all(member in self._datasets for member in members)}
        for path in self._paths:
            for metric in self.metrics:
                margin = self.margin(metric)
                for dataset in self._datasets:
                    if self._reference[dataset] == path or (pair := self._paired(dataset, path, metric)) is None:
                        continue
                    checks.append(PathEquivalence(dataset, path, metric,
                                                  paired_tost(pair[0], pair[1], margin, self.alpha)))
                for name, members in pools.items():
                    pairs = [self._paired(m, path, metric) for m in members]
                    if any(self._reference[m] == path for m in members) or any(p is None for p in pairs):
                        continue
                    # the union of the members' judged queries: concatenated, each member's own values
                    exact = pd.concat([p[0] for p in pairs], ignore_index=True)
                    fast = pd.concat([p[1] for p in pairs], ignore_index=True)
                    checks.append(PathEquivalence(name, path, metric, paired_tost(exact, fast, margin, self.alpha),
                                                  pooled=members))
        return checks

    def markdown_lines(self) -> list[str]:
        """The report's equivalence section: a table, then one verdict line per path on the widest
        views: every pool, and every dataset that no pool of that path and metric covers."""
        checks = self.results()
        level = 1 - 2 * self.alpha
        explained = (f"Paired per query, d = fast - exact; two one-sided t-tests against -margin and +margin at "
                     f"α = {self.alpha:g}: equivalent when TOST p = max(p lower, p upper) <= α, that is when the "
                     f"{level:.0%} CI of the mean difference lies inside (-margin, +margin).")
        if any(c.pooled for c in checks):
            explained += " Pooled rows: the union of the members' judged queries, each with its own qrels."
        lines = ["", "## Equivalence to the exact path (TOST)", "", explained, "",
                 f"| dataset | path | metric | margin | n | mean Δ | {level:.0%} CI | p lower / upper | TOST p | "
                 "equivalent |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in checks:
            r = c.result
            verdict = ("n/a (n < 2)" if r.n < 2 else
                       ("yes" if r.equivalent else "no") + (" (no variance)" if r.zero_variance else ""))
            ci = "-" if r.n < 2 else f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
            lines.append(f"| {c.dataset} | {c.path} | {c.metric} | ±{r.margin:g} | {r.n} | {r.mean_difference:+.4f} | "
                         f"{ci} | {format_p_value(r.p_lower)} / {format_p_value(r.p_upper)} | "
                         f"{format_p_value(r.p_value)} | {verdict} |")
        if not checks:
            lines.append("| - | no fast path measured | | | | | | | | |")
        lines.append("")
        pooled = {(c.path, c.metric, member) for c in checks for member in c.pooled}
        widest = [c for c in checks if c.pooled or (c.path, c.metric, c.dataset) not in pooled]
        for c in widest:
            lines.append(f"- **{c.path}**, {c.metric} on {c.dataset}: {c.result.verdict}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The specs, alpha and every TOST, for the JSON report."""
        return {"alpha": self.alpha, "main_metric": PRECISION_MAIN_METRIC,
                "margins": {metric: self.margin(metric) for metric in self.metrics},
                "results": [c.to_json() for c in self.results()]}


def precision_equivalence(specs: Sequence[EquivalenceSpec | str] | EquivalenceSpec | str | None | PrecisionEquivalence,
                          alpha: float = DEFAULT_EQUIVALENCE_ALPHA) -> PrecisionEquivalence | None:
    """A collector for ``--equivalence`` specs (``0.01``, ``ndcg@10=0.01``; parsed here, so a bad one
    fails before any scoring; a collector is returned as it is), or None when none is given."""
    if specs is None or isinstance(specs, PrecisionEquivalence):
        return specs
    if isinstance(specs, (str, EquivalenceSpec)):
        specs = [specs]
    parsed = [parse_equivalence(spec) for spec in specs]
    if not parsed:
        return None
    return PrecisionEquivalence(parsed, check_alpha(alpha))
