"""How a fold's validation lists are judged after every epoch: the list loss over each scored
list, MRR@10, NDCG@5 and NDCG@10 (ranx, averaged over the queries of all sources, binary metrics at
each source's relevance level) and the separation of the relevant candidates' mean score from the
others'. The trainer keeps the checkpoint of the best NDCG@10 and stops early on these figures.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..data.datasets import relevance_level_of
from ..evaluation.metrics import evaluate_run
from .batches import Encoded
from .data import RankingList


def validation_metrics(lists: list[RankingList], scored: list[np.ndarray]) -> dict[str, float]:
    """MRR@10, NDCG@5 and NDCG@10 of scored lists (ranx), averaged over queries of all sources
    (binary metrics at each source's relevance level)."""
    totals: dict[str, float] = {}
    count = 0
    for source in sorted({lst.source for lst in lists}):
        members = [(lst, s) for lst, s in zip(lists, scored) if lst.source == source]
        run = pd.DataFrame([(lst.qid, d, float(v)) for lst, s in members for d, v in zip(lst.docnos, s)],
                           columns=["qid", "docno", "score"])
        qrels = pd.DataFrame([(lst.qid, d, int(g)) for lst, _ in members for d, g in zip(lst.docnos, lst.labels)
                              if g > 0], columns=["qid", "docno", "label"])
        if qrels.empty:
            continue
        evaluation = evaluate_run(run, qrels, relevance_level_of(source), ["mrr@10", "ndcg@5", "ndcg@10"])
        n = evaluation.n_queries
        for metric, value in evaluation.means.items():
            totals[metric] = totals.get(metric, 0.0) + value * n
        count += n
    return {metric: value / count for metric, value in totals.items()} if count else {}


def validation_figures(lists: list[RankingList], encoded: list[Encoded], scored: list[np.ndarray],
                       loss: Callable[..., tuple[torch.Tensor, dict]]) -> dict[str, float]:
    """``val_loss`` (``loss`` of each whole list, averaged), the ranking metrics and ``separation``
    of the validation ``lists`` (``encoded``: their tokenized form; ``scored``: their scores)."""
    losses = []
    with torch.inference_mode():
        for item, values in zip(encoded, scored):
            scores = torch.as_tensor(values, dtype=torch.float32)[None]
            labels = torch.as_tensor(item.labels)[None]
            losses.append(float(loss(scores, labels, torch.ones_like(scores, dtype=torch.bool))[0]))
    metrics = validation_metrics(lists, scored)
    positives = np.concatenate([v[lst.labels > 0] for lst, v in zip(lists, scored)])
    negatives = np.concatenate([v[lst.labels <= 0] for lst, v in zip(lists, scored)])
    separation = float(positives.mean() - negatives.mean()) if len(positives) and len(negatives) else 0.0
    return {"val_loss": float(np.mean(losses)), **metrics, "separation": separation}
