"""Judged-only evaluation: any rank metric over a run's condensed list (Sakai, 2007, "Alternatives to
bpref"; trec_eval's ``-J``; ir_measures' ``judged_only=True``).

The condensed list of a query is its ranking with every document that has no judgment for that
query (of any grade, 0 included) removed and the ranks closed up; the metric is then computed on it
as usual. Standard and judged-only values that disagree say that a system's score moves with the
documents nobody judged: a reranker whose gain over its baseline is made of unjudged passages shows
a gain in the standard metric and none in the judged-only one (or the reverse).

A cutoff applies to the condensed list: ``mrr@10:judged`` is the reciprocal rank of the first
relevant document among the first 10 *judged* ones. (``trec_eval -J -M 10`` differs: trec_eval cuts
the run at ``-M`` before it removes the unjudged documents.)
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..core.measures import JUDGED_SUFFIX, Measure, resolve_measure


def condensed_run(run: pd.DataFrame, qrels: pd.DataFrame) -> pd.DataFrame:
    """``run`` restricted, per query, to the documents with a judgment of any grade for that query,
    in trec_eval's order (score descending, ties by docno descending) with ranks 1..n closed up.

    The scores are kept, so the order of the documents that remain is the order they had."""
    from ..data.trec import sort_run

    ordered = sort_run(run)
    judged = pd.MultiIndex.from_arrays([qrels["qid"].astype(str), qrels["docno"].astype(str)])
    kept = ordered[pd.MultiIndex.from_arrays([ordered["qid"], ordered["docno"]]).isin(judged)].copy()
    kept["rank"] = kept.groupby("qid", sort=False).cumcount() + 1
    return kept.reset_index(drop=True)


def condensed_values(run: pd.DataFrame, qrels: pd.DataFrame, relevance_level: int, measures: dict[str, Measure],
                     evaluate: Callable[..., Any]) -> dict[str, pd.Series]:
    """Per-query values of judged-only measures (``engine == "condensed"``): each one's base
    measure evaluated by ``evaluate`` (:func:`~.metrics.evaluate_run`, which calls this) on the
    condensed run. A query whose condensed list is empty (nothing it retrieved was judged) scores
    0, as in trec_eval."""
    bases = {metric: measure.base.name for metric, measure in measures.items()}
    condensed = condensed_run(run, qrels)
    if condensed.empty:  # nothing judged retrieved at all: every measure is 0 on every query
        return {metric: pd.Series(0.0, index=pd.unique(run["qid"].astype(str))) for metric in measures}
    per_query = evaluate(condensed, qrels, relevance_level, list(dict.fromkeys(bases.values()))).per_query
    return {metric: per_query[base].astype(np.float64) for metric, base in bases.items()}


def judged_pairs(metrics: Iterable[str]) -> list[tuple[str, str]]:
    """(standard, judged-only) pairs among ``metrics``: every judged-only variant whose base metric is
    there too (``("ndcg@10", "ndcg@10:judged")``, ``("nDCG@10", "nDCG(judged_only=True)@10")``)."""
    metrics = list(metrics)
    pairs = []
    for metric in metrics:
        if not (metric.endswith(JUDGED_SUFFIX) or "judged_only" in metric):  # only these can be condensed
            continue
        try:
            measure = resolve_measure(metric)
        except WorkbenchError:  # a column this machine cannot resolve (an ir_measures name without it)
            continue
        if measure.engine == "condensed" and measure.base.name in metrics:
            pairs.append((measure.base.name, metric))
    return pairs


def judged_disagreement(record: Mapping[str, object], standard: str, judged: str) -> str:
    """How a leaderboard row's delta against its baseline on ``standard`` and on its judged-only
    variant ``judged`` disagree: ``"sign"`` (one gains where the other loses or stays level),
    ``"significance"`` (one is significant after correction, its ``sig_`` column non-empty, and the
    other is not), both joined by ``" and "``, or ``""`` when they agree or the row has no deltas."""
    deltas = [_number(record.get(f"delta_{metric}")) for metric in (standard, judged)]
    if any(delta is None for delta in deltas):
        return ""
    signs = [0 if abs(delta) < _LEVEL else (1 if delta > 0 else -1) for delta in deltas]
    marked = [bool(_text(record.get(f"sig_{metric}"))) for metric in (standard, judged)]
    reasons = (["sign"] if signs[0] != signs[1] else []) + (["significance"] if marked[0] != marked[1] else [])
    return " and ".join(reasons)


def judged_disagreements(record: Mapping[str, object], metrics: Iterable[str]) -> dict[str, str]:
    """Every (standard, judged-only) pair of ``metrics`` on which the row's deltas disagree:
    ``standard -> a one-line explanation`` (``"Δ ndcg@10 -0.1785** but Δ ndcg@10:judged -0.0300:
    significance differs"``); empty when all agree."""
    notes = {}
    for standard, judged in judged_pairs(metrics):
        reason = judged_disagreement(record, standard, judged)
        if reason:
            shown = [f"Δ {m} {_number(record.get(f'delta_{m}')):+.4f}{_text(record.get(f'sig_{m}'))}"
                     for m in (standard, judged)]
            notes[standard] = f"{shown[0]} but {shown[1]}: {reason} differ" + ("s" if " and " not in reason else "")
    return notes


#: deltas closer to 0 than this count as level (a mean difference of identical lists can be 1e-17, not 0)
_LEVEL = 1e-9


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
