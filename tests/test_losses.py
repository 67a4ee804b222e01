"""Each ranking loss on a tiny hand-computed example (to 1e-6), the top-5 pair selection, and
LambdaLoss against sentence-transformers' implementation."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from workbench.train import losses  # noqa: E402

# one list: scores 2, 1, 0 for candidates graded 2, 0, 1
S = torch.tensor([[2.0, 1.0, 0.0]])
Y = torch.tensor([[2.0, 0.0, 1.0]])
M = torch.ones_like(S, dtype=torch.bool)


class Stub(torch.nn.Module):
    """Stands in for a CrossEncoder in sentence-transformers' losses: returns preset scores in pair order."""

    num_labels = 1
    device = torch.device("cpu")

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def preprocess(self, pairs, **kwargs):
        return {}

    def forward(self, tokens):
        return {"scores": self.scores}


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def log_softmax(values: list[float]) -> list[float]:
    top = max(values)
    norm = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - norm for v in values]


def test_pointwise_bce():
    # targets 1[y >= 1] = 1, 0, 1
    expected = (softplus(-2.0) + softplus(1.0) + softplus(-0.0)) / 3
    assert float(losses.pointwise_bce(S, Y, M)) == pytest.approx(expected, abs=1e-6)
    # level 2: only the grade-2 candidate is relevant
    expected = (softplus(-2.0) + softplus(1.0) + softplus(0.0)) / 3
    assert float(losses.pointwise_bce(S, Y, M, level=2)) == pytest.approx(expected, abs=1e-6)


def test_pairwise_logistic_and_hinge():
    # pairs with y_i > y_j: (0,1) d=1, (0,2) d=2, (2,1) d=-1
    expected = (softplus(-1.0) + softplus(-2.0) + softplus(1.0)) / 3
    assert float(losses.pairwise_logistic(S, Y, M)) == pytest.approx(expected, abs=1e-6)
    capped = (softplus(-math.tanh(1.0)) + softplus(-math.tanh(2.0)) + softplus(math.tanh(1.0))) / 3
    assert float(losses.pairwise_logistic(S, Y, M, cap=1.0)) == pytest.approx(capped, abs=1e-6)
    assert float(losses.pairwise_hinge(S, Y, M, margin=1.0)) == pytest.approx((0 + 0 + 2) / 3, abs=1e-6)


def test_listwise_softmax_and_poly1():
    log_p = log_softmax([2.0, 1.0, 0.0])
    targets = [2 / 3, 0.0, 1 / 3]
    ce = -sum(t * lp for t, lp in zip(targets, log_p))
    assert float(losses.listwise_softmax(S, Y, M)) == pytest.approx(ce, abs=1e-6)
    poly = ce + 1.0 * sum(t * (1 - math.exp(lp)) for t, lp in zip(targets, log_p))
    assert float(losses.poly1(S, Y, M, epsilon=1.0)) == pytest.approx(poly, abs=1e-6)


def test_padding_and_lists_without_relevant_candidates_add_nothing():
    scores = torch.tensor([[2.0, 1.0, 0.0, 9.0], [0.5, 0.1, 0.0, 0.0]])
    labels = torch.tensor([[2.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    for name in ("pairwise", "listwise", "poly1", "hinge"):
        fn = losses.LOSSES[name]
        assert float(fn(scores, labels, mask)) == pytest.approx(float(fn(S, Y, M)), abs=1e-6), name


def test_top5_pairs_are_those_touching_the_current_top():
    # 7 candidates, current ranking by score: c0 > c1 > ... > c6
    scores = torch.tensor([[7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    labels = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 1.0]])
    mask = torch.ones_like(scores, dtype=torch.bool)
    pairs = losses.top_pairs(scores, labels, mask, top=5)[0]
    chosen = {(i, j) for i in range(7) for j in range(7) if pairs[i, j]}
    # more relevant first; at least one of the two among c0..c4; (5,6): both outside the top 5
    assert chosen == {(1, 0), (1, 2), (1, 3), (1, 4), (5, 0), (5, 1), (5, 2), (5, 3), (5, 4), (6, 0), (6, 2),
                      (6, 3), (6, 4)}
    assert (5, 6) not in chosen


def test_hybrid_combines_top_pairs_and_listwise():
    pairwise = (softplus(-1.0) + softplus(-2.0)) / 2  # top-1 is c0: pairs (0,1) and (0,2)
    log_p = log_softmax([2.0, 1.0, 0.0])
    listwise = -(2 / 3 * log_p[0] + 1 / 3 * log_p[2])
    total, parts = losses.hybrid(S, Y, M, weight=0.3, top=1, cap=None, return_parts=True)
    assert float(parts["pairwise"]) == pytest.approx(pairwise, abs=1e-6)
    assert float(parts["listwise"]) == pytest.approx(listwise, abs=1e-6)
    assert float(total) == pytest.approx(0.3 * pairwise + 0.7 * listwise, abs=1e-6)


def test_lambda_loss_matches_sentence_transformers():
    st_losses = pytest.importorskip("sentence_transformers.cross_encoder.losses")

    generator = torch.Generator().manual_seed(0)
    lists = [torch.randn(5, generator=generator), torch.randn(3, generator=generator)]
    grades = [torch.tensor([3.0, 0.0, 1.0, 2.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])]
    stub = Stub(torch.cat(lists))
    for k in (None, 3):
        reference = st_losses.LambdaLoss(stub, k=k, mini_batch_size=-1)(
            [["q1", "q2"], [["d"] * 5, ["d"] * 3]], grades)
        scores = torch.zeros(2, 5)
        labels = torch.zeros(2, 5)
        mask = torch.zeros(2, 5, dtype=torch.bool)
        for row, (s, y) in enumerate(zip(lists, grades)):
            scores[row, :len(s)], labels[row, :len(y)], mask[row, :len(s)] = s, y, True
        ours = losses.lambda_loss(scores, labels, mask, k=k)
        assert float(ours) == pytest.approx(float(reference), abs=1e-6)


def test_losses_have_gradients():
    scores = S.clone().requires_grad_(True)
    for name, fn in losses.LOSSES.items():
        scores.grad = None
        fn(scores, Y, M).backward()
        assert scores.grad is not None and torch.isfinite(scores.grad).all(), name


def test_listnet_matches_sentence_transformers():
    st_losses = pytest.importorskip("sentence_transformers.cross_encoder.losses")

    s1, s2 = torch.tensor([0.3, -1.0, 2.0, 0.5]), torch.tensor([1.0, 0.0])
    y1, y2 = torch.tensor([1.0, 0.0, 3.0, 0.0]), torch.tensor([0.0, 1.0])
    reference = st_losses.ListNetLoss(Stub(torch.cat([s1, s2])), mini_batch_size=-1)(
        [["q1", "q2"], [["d"] * 4, ["d"] * 2]], [y1, y2])
    scores = torch.tensor([[0.3, -1.0, 2.0, 0.5], [1.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 3.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert float(losses.listnet(scores, labels, mask)) == pytest.approx(float(reference), abs=1e-6)
