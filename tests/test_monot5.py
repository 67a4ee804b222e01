"""monoT5 reranker on a tiny random T5 with a file-free ByT5 tokenizer, built offline."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from helpers_models import offline, write_tiny_t5 as _write_tiny_t5  # noqa: F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError
from workbench.rerankers import RerankContext, get_reranker

# ByT5 tokenizes bytes, so "true"/"false" are 4-5 tokens; single letters stand in for them.
TOKENS = "true_token=y,false_token=n"


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    return _write_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-t5")


QUERIES = ["do goldfish grow", "what is wifi vs bluetooth"]
PASSAGES = ["Goldfish grow to the size of their tank.", "Bluetooth has a short range; wifi a longer one. " * 3,
            "short", ""]


def _reference(tokenizer, model, query, passage, true_id, false_id):
    """Independent computation: greedy generate one token, raw logits of the first step."""
    inputs = tokenizer(f"Query: {query} Document: {passage} Relevant:", return_tensors="pt",
                       truncation=True, max_length=512)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=1, do_sample=False, output_logits=True,
                             return_dict_in_generate=True)
    logits = out.logits[0][0]
    pair = torch.log_softmax(logits[[false_id, true_id]], dim=-1)
    return float(pair[1]), float(pair[0])


def test_score_is_log_probability_of_true(tiny_t5):
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_t5))
    model = T5ForConditionalGeneration.from_pretrained(str(tiny_t5)).eval()
    reranker = get_reranker(f"monot5:{tiny_t5},{TOKENS},batch_size=3", RerankContext(device="cpu"))
    assert (reranker.true_id, reranker.false_id) == (ord("y") + 3, ord("n") + 3)  # ByT5: byte + 3
    queries = [q for q in QUERIES for _ in PASSAGES]
    passages = [p for _ in QUERIES for p in PASSAGES]
    scores = reranker.score_pairs(queries, passages)
    assert scores.shape == (len(passages),) and np.all(scores <= 0)
    for query, passage, score in zip(queries, passages, scores):
        true_lp, false_lp = _reference(tokenizer, model, query, passage, reranker.true_id, reranker.false_id)
        assert abs(score - true_lp) <= 1e-5
        assert abs(np.exp(score) + np.exp(false_lp) - 1.0) <= 1e-6
    np.testing.assert_allclose(reranker.score(QUERIES[1], PASSAGES), scores[len(PASSAGES):], atol=1e-6)


def test_bf16_fingerprint_and_options(tiny_t5, tmp_path):
    fp32 = get_reranker(f"monot5:{tiny_t5},{TOKENS}")
    bf16 = get_reranker(f"monot5:{tiny_t5},{TOKENS},precision=bf16")
    scores = fp32.score_pairs(QUERIES, PASSAGES[:2])
    assert np.max(np.abs(bf16.score_pairs(QUERIES, PASSAGES[:2]) - scores)) < 0.05
    by_id = get_reranker(f"monot5:{tiny_t5},true_id={fp32.true_id},false_id={fp32.false_id}")
    np.testing.assert_allclose(by_id.score_pairs(QUERIES, PASSAGES[:2]), scores, atol=1e-6)
    config = fp32.config()
    assert config["model"] == str(tiny_t5.resolve()) and "model.safetensors" in config["files"]
    other = _write_tiny_t5(tmp_path / "other", seed=3)
    assert len({fp32.fingerprint, bf16.fingerprint, by_id.fingerprint,
                get_reranker(f"monot5:{other},{TOKENS}").fingerprint,
                get_reranker(f"monot5:{tiny_t5},true_token=t,false_token=f").fingerprint}) == 4
    assert by_id.fingerprint == fp32.fingerprint  # the same tokens, however named
    copy = shutil.copytree(tiny_t5, tmp_path / "copy")  # installed elsewhere: the same model
    assert get_reranker(f"monot5:{copy},{TOKENS}").fingerprint == fp32.fingerprint


def test_multi_token_words_and_missing_models(tiny_t5):
    with pytest.raises(WorkbenchError, match="true_token="):
        get_reranker(f"monot5:{tiny_t5}")  # "true" is 4 bytes for ByT5
    with pytest.raises(WorkbenchError) as caught:
        get_reranker("monot5")  # castorini/monot5-base-msmarco: not cached, hub offline
    assert "could not be loaded" in str(caught.value) and "monot5:/path/to/model" in str(caught.value)
    with pytest.raises(WorkbenchError, match="unknown option"):
        get_reranker(f"monot5:{tiny_t5},{TOKENS},backend=onnx")
