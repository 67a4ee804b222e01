"""Per-query analysis of two systems: where B gains and loses against A, and why.

For the queries with the largest gains and losses on a metric, shows the query text and
type, and each system's top passages with their relevance grades.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pandas as pd

from ..data.collection import Collection
from ..data.datasets import Dataset
from ..evaluation.metrics import Evaluation
from ..evaluation.stats import wins_ties_losses

TIE_TOLERANCE = 1e-9  # as wins_ties_losses counts ties
UNJUDGED = -1  # the grade top_passages gives a passage without a judgment


def per_query_deltas(a: pd.DataFrame, b: pd.DataFrame, metric: str, topics: pd.DataFrame,
                     labels: pd.DataFrame) -> pd.DataFrame:
    """Per-query ``a``/``b`` values of ``metric`` with ``delta = b - a``, query text and type; sorted by delta."""
    frame = pd.DataFrame({"a": a[metric], "b": b[metric].reindex(a.index).fillna(0.0)})
    frame["delta"] = frame["b"] - frame["a"]
    frame = frame.rename_axis("qid").reset_index()
    frame = frame.merge(topics[["qid", "query"]], on="qid", how="left")
    frame = frame.merge(labels[["qid", "label", "reason"]].rename(columns={"label": "type"}), on="qid", how="left")
    return frame.sort_values(["delta", "qid"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def gains_and_losses(deltas: pd.DataFrame, top: int, tolerance: float = TIE_TOLERANCE
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``top`` largest gains (delta descending) and losses (most negative first) of a
    :func:`per_query_deltas` table; a difference within ``tolerance`` is a tie, as
    :func:`~workbench.evaluation.stats.wins_ties_losses` counts it, and shown in neither."""
    gains = deltas[deltas["delta"] > tolerance].head(top)
    losses = deltas[deltas["delta"] < -tolerance].sort_values("delta", kind="mergesort").head(top)
    return gains.reset_index(drop=True), losses.reset_index(drop=True)


def top_passages(run: pd.DataFrame, qid: str, qrels: pd.DataFrame, collection: Collection | None,
                 k: int = 3) -> pd.DataFrame:
    """A run's top ``k`` passages for a query with their grades (-1: unjudged) and text."""
    top = run[run["qid"] == qid].nsmallest(k, "rank")[["rank", "docno", "score"]]
    grades = qrels[qrels["qid"] == qid].set_index("docno")["label"]
    top = top.assign(grade=top["docno"].map(grades).fillna(UNJUDGED).astype(int))
    if collection is not None:
        top = top.assign(text=[collection.get(docno, "") for docno in top["docno"]])
    return top.reset_index(drop=True)


@dataclass
class Comparison:
    """Result of comparing system ``b`` against system ``a`` on one dataset and metric."""

    dataset: str
    a: str
    b: str
    metric: str
    deltas: pd.DataFrame  # every judged query, sorted by delta descending
    gains: pd.DataFrame
    losses: pd.DataFrame
    passages: dict[tuple[str, str], pd.DataFrame]  # (system, qid) -> top passages

    @property
    def wins_ties_losses(self):
        return wins_ties_losses(self.deltas["a"], self.deltas["b"])


def compare_runs(dataset: Dataset, a: str, b: str, evaluations: dict[str, Evaluation], runs: dict[str, pd.DataFrame],
                 labels: pd.DataFrame, collection: Collection | None = None, metric: str = "ndcg@10", top: int = 5,
                 passages: int = 3) -> Comparison:
    """Compare system ``b`` with system ``a`` query by query, from their evaluations and runs
    (``Workbench.compare`` produces them by name)."""
    deltas = per_query_deltas(evaluations[a].per_query, evaluations[b].per_query, metric, dataset.topics, labels)
    gains, losses = gains_and_losses(deltas, top)
    shown = {}
    for qid in list(gains["qid"]) + list(losses["qid"]):
        for name in (a, b):
            shown[(name, qid)] = top_passages(runs[name], qid, dataset.qrels, collection, passages)
    return Comparison(dataset.name, a, b, metric, deltas, gains, losses, shown)


def format_comparison(comparison: Comparison, width: int = 100) -> str:
    """Human-readable report of a :class:`Comparison`."""
    c = comparison
    lines = [f"{c.dataset}: {c.b} vs {c.a} on {c.metric} over {len(c.deltas)} judged queries: "
             f"mean {c.deltas['a'].mean():.4f} -> {c.deltas['b'].mean():.4f} "
             f"(delta {c.deltas['delta'].mean():+.4f}); wins/ties/losses {c.wins_ties_losses}"]
    for title, rows in (("Largest gains", c.gains), ("Largest losses", c.losses)):
        lines.append(f"\n== {title} ==")
        if rows.empty:
            lines.append("(none)")
        for row in rows.itertuples(index=False):
            lines.append(f"\n[{row.qid}] {row.query}  ({row.type}: {row.reason})")
            lines.append(f"  {c.metric}: {c.a} {row.a:.4f} -> {c.b} {row.b:.4f} ({row.delta:+.4f})")
            for name in (c.a, c.b):
                lines.append(f"  {name} top passages (grade -1 = unjudged):")
                for passage in c.passages[(name, row.qid)].itertuples(index=False):
                    text = textwrap.shorten(getattr(passage, "text", ""), width=width - 30, placeholder=" ...")
                    lines.append(f"    {passage.rank:>3}. [{passage.grade:>2}] {passage.docno}: {text}")
    return "\n".join(lines)
