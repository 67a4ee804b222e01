"""Ranking losses over padded lists of candidates, one small function each.

Every loss takes ``scores`` ``[B, L]`` (the model's scores of B queries' lists of up to L
candidates), ``labels`` ``[B, L]`` (graded relevance: 0-3 for TREC DL, 0/1 for MS MARCO) and
``mask`` ``[B, L]`` (True on real candidates, False on padding), and returns a scalar. Lists
without what a loss needs (a relevant candidate, a pair with different labels) add nothing.

Notation per list: ``s_i`` scores, ``y_i`` labels, ``P`` = the pairs ``(i, j)`` with ``y_i > y_j``.

* :func:`pointwise_bce` — ``mean_i BCE(sigmoid(s_i), t_i)``, ``t_i = 1[y_i >= level]``
* :func:`pairwise_logistic` (RankNet) — ``mean_P log(1 + exp(-(s_i - s_j)))``
* :func:`pairwise_hinge` — ``mean_P max(0, margin - (s_i - s_j))``
* :func:`listwise_softmax` — ``-sum_i t_i log softmax(s)_i``, ``t_i = y_i / sum_j y_j`` (RankT5's softmax CE
  with graded targets), averaged over lists
* :func:`poly1` — softmax CE ``+ epsilon * sum_i t_i (1 - softmax(s)_i)`` (Poly-1, as in RankT5)
* :func:`listnet` — ``-sum_i softmax(y)_i log softmax(s)_i`` (ListNet, as sentence-transformers' ``ListNetLoss``)
* :func:`lambda_loss` — LambdaLoss with the NDCG-Loss2++ weighting (Wang et al. 2018), as
  sentence-transformers' ``LambdaLoss`` computes it (its strongest listwise loss: the anchor to beat)
* :func:`hybrid` — ``w * pairwise(top-5 pairs of the current ranking) + (1 - w) * listwise(full list)``

``cap`` (pairwise losses): the score difference ``d = s_i - s_j`` enters as ``cap * tanh(d / cap)``,
so a pair already separated by much more than ``cap`` stops driving the loss (and a grossly
misordered one, often a labelling error, cannot dominate it).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NEG = -1e4  # masked scores: far below any real score, finite so gradients stay finite


def _pairs(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, L, L]``: True where candidate i is strictly more relevant than j (both real)."""
    valid = mask[:, :, None] & mask[:, None, :]
    return valid & (labels[:, :, None] > labels[:, None, :])


def _differences(scores: torch.Tensor, cap: float | None) -> torch.Tensor:
    """``[B, L, L]`` score differences ``s_i - s_j``, tanh-capped when ``cap`` is set."""
    diffs = scores[:, :, None] - scores[:, None, :]
    return cap * torch.tanh(diffs / cap) if cap else diffs


def _mean(values: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    count = selected.sum()
    return (values * selected).sum() / count.clamp(min=1)


def pointwise_bce(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, level: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of ``sigmoid(s_i)`` against ``1[y_i >= level]``, averaged over candidates."""
    targets = (labels >= level).to(scores.dtype)
    losses = F.binary_cross_entropy_with_logits(scores, targets, reduction="none")
    return _mean(losses, mask.to(scores.dtype))


def pairwise_logistic(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, cap: float | None = None,
                      pairs: torch.Tensor | None = None) -> torch.Tensor:
    """RankNet: ``log(1 + exp(-(s_i - s_j)))`` averaged over the pairs with ``y_i > y_j``
    (or over ``pairs``, a ``[B, L, L]`` selection of them)."""
    selected = _pairs(labels, mask) if pairs is None else pairs
    losses = F.softplus(-_differences(scores, cap))
    return _mean(losses, selected.to(scores.dtype))


def pairwise_hinge(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, margin: float = 1.0,
                   cap: float | None = None) -> torch.Tensor:
    """Margin loss ``max(0, margin - (s_i - s_j))`` averaged over the pairs with ``y_i > y_j``."""
    losses = torch.relu(margin - _differences(scores, cap))
    return _mean(losses, _pairs(labels, mask).to(scores.dtype))


def _log_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(scores.masked_fill(~mask, NEG), dim=-1)


def _targets(labels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised graded targets ``y_i / sum_j y_j`` and which lists have any relevant candidate."""
    gains = labels.clamp(min=0) * mask
    totals = gains.sum(dim=-1, keepdim=True)
    has_relevant = totals.squeeze(-1) > 0
    return gains / totals.clamp(min=1e-12), has_relevant


def listwise_softmax(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy with graded targets: ``-sum_i t_i log softmax(s)_i``, averaged over
    the lists that have a relevant candidate."""
    targets, has_relevant = _targets(labels, mask)
    per_list = -(targets * _log_softmax(scores, mask)).sum(dim=-1)
    return _mean(per_list, has_relevant.to(scores.dtype))


def poly1(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, epsilon: float = 1.0) -> torch.Tensor:
    """Poly-1 softmax cross-entropy: ``CE + epsilon * sum_i t_i (1 - softmax(s)_i)``."""
    targets, has_relevant = _targets(labels, mask)
    log_probs = _log_softmax(scores, mask)
    per_list = -(targets * log_probs).sum(dim=-1) + epsilon * (targets * (1 - log_probs.exp())).sum(dim=-1)
    return _mean(per_list, has_relevant.to(scores.dtype))


def listnet(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ListNet: cross-entropy of the score distribution against ``softmax(labels)``, averaged over
    the lists that have a relevant candidate (sentence-transformers' ``ListNetLoss``)."""
    _, has_relevant = _targets(labels, mask)
    targets = torch.softmax(labels.masked_fill(~mask, NEG), dim=-1)
    per_list = -(targets * _log_softmax(scores, mask)).sum(dim=-1)
    return _mean(per_list, has_relevant.to(scores.dtype))


def lambda_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, k: int | None = None,
                mu: float = 10.0, sigma: float = 1.0, eps: float = 1e-10) -> torch.Tensor:
    """LambdaLoss, NDCG-Loss2++ weighting: ``-mean_{pairs} w_ij log2 sigmoid(sigma (s_i - s_j))``.

    Candidates are sorted by score; a pair (ranks i < j or j < i, ``y_i > y_j``, one of them in
    the top ``k``) is weighted ``mu * |1/D(|i-j|) - 1/D(|i-j|+1)| * |G_i - G_j| +
    |1/D(i) - 1/D(j)| * |G_i - G_j|`` with ``D(r) = log2(1 + r)`` and ``G = (2^y - 1) / maxDCG@k``
    (sentence-transformers' ``LambdaLoss`` with ``NDCGLoss2PPScheme``).
    """
    size = scores.shape[1]
    masked_scores = scores.masked_fill(~mask, -1e16)
    masked_labels = labels.masked_fill(~mask, float("-inf"))
    sorted_scores, order = masked_scores.sort(descending=True, dim=-1)
    ideal, _ = masked_labels.sort(descending=True, dim=-1)
    true_by_pred = torch.gather(masked_labels, 1, order)
    true_diffs = true_by_pred[:, :, None] - true_by_pred[:, None, :]
    pairs = torch.isfinite(true_diffs) & (true_diffs > 0)
    k = k or size
    at_k = torch.zeros((size, size), dtype=torch.bool, device=scores.device)
    at_k[:k, :] = True
    at_k[:, :k] = True
    true_by_pred = true_by_pred.clamp(min=0.0)
    ideal = ideal.clamp(min=0.0)
    positions = torch.arange(1, size + 1, device=scores.device)
    discount = torch.log2(1.0 + positions.float())[None, :]
    max_dcg = (((2 ** ideal) - 1) / discount)[:, :k].sum(dim=-1).clamp(min=eps)
    gain = ((2 ** true_by_pred) - 1) / max_dcg[:, None]
    gain_diffs = (gain[:, :, None] - gain[:, None, :]).abs()
    distance = (positions[:, None] - positions[None, :]).abs()
    padded_discount = torch.log2(1.0 + torch.arange(1, size + 2, device=scores.device).float())
    # D(0) is taken as log2(1 + 1)'s neighbour below, as sentence-transformers indexes it (the diagonal is zeroed)
    deltas = (padded_discount[(distance - 1).clamp(min=0)].pow(-1) - padded_discount[distance].pow(-1)).abs()
    deltas.fill_diagonal_(0)
    ndcg_loss2 = deltas[None] * gain_diffs
    lambda_rank = (discount[:, :, None].pow(-1) - discount[:, None, :].pow(-1)).abs() * gain_diffs
    weights = mu * ndcg_loss2 + lambda_rank
    diffs = (sorted_scores[:, :, None] - sorted_scores[:, None, :]).clamp(min=-1e8, max=1e8)
    losses = weights * F.logsigmoid(sigma * diffs) / math.log(2)
    selected = losses[pairs & at_k]
    return -selected.sum() / max(selected.numel(), 1)


def top_pairs(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, top: int = 5) -> torch.Tensor:
    """``[B, L, L]``: the pairs with ``y_i > y_j`` of which at least one candidate is in the top
    ``top`` of the current ranking (by the detached scores)."""
    ranks = scores.detach().masked_fill(~mask, float("-inf")).argsort(dim=-1, descending=True).argsort(dim=-1)
    in_top = (ranks < top) & mask
    return _pairs(labels, mask) & (in_top[:, :, None] | in_top[:, None, :])


def hybrid(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, weight: float = 0.5, top: int = 5,
           cap: float | None = 5.0, return_parts: bool = False):
    """``weight * RankNet(pairs touching the top ``top`` of the current ranking)
    + (1 - weight) * listwise_softmax(full list)``: precision at the top from the pairwise part,
    the order deeper down from the listwise part. ``return_parts`` also returns both parts."""
    pairwise = pairwise_logistic(scores, labels, mask, cap=cap, pairs=top_pairs(scores, labels, mask, top))
    listwise = listwise_softmax(scores, labels, mask)
    total = weight * pairwise + (1 - weight) * listwise
    return (total, {"pairwise": pairwise, "listwise": listwise}) if return_parts else total


#: loss names of training configs -> function
LOSSES = {
    "pointwise": pointwise_bce,
    "pairwise": pairwise_logistic,
    "hinge": pairwise_hinge,
    "listwise": listwise_softmax,
    "poly1": poly1,
    "listnet": listnet,
    "lambda": lambda_loss,
    "hybrid": hybrid,
}
