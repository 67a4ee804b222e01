"""Cross-encoder reranker on a tiny random BERT built offline: equal to CrossEncoder.predict."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError
from workbench.rerankers import RerankContext, get_reranker
from workbench.models.batching import length_sorted_batches, pad_batch, scatter
from workbench.models.devices import resolve_device

WORDS = ("what is the a of in to and for do does how why when who goldfish grow fish water tank "
         "bluetooth wifi wireless signal range war world entered united states passage query answer "
         "long short text words some more relevant cross encoder model").split()


def _write_tiny_bert(directory, seed=0, st_config=None):
    """A one-label random BERT cross-encoder; any lower-case text tokenizes (character pieces)."""
    return write_tiny_bert(directory, WORDS, seed=seed, characters=True, st_config=st_config, num_labels=1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return _write_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


QUERIES = ["do goldfish grow", "what is wifi vs bluetooth", "why did the us enter ww1"]
PASSAGES = [
    "goldfish grow to the size of their tank, some more than 30 cm",
    "wifi and bluetooth are wireless; bluetooth has a short range",
    "the united states entered the world war in 1917 " * 12,  # truncated at max_length=64
    "short",
    "",
]


def _pairs():
    queries, passages = [], []
    for query in QUERIES:
        for passage in PASSAGES:
            queries.append(query)
            passages.append(passage)
    return queries, passages


def test_scores_equal_sentence_transformers_predict(tiny_dir):
    from sentence_transformers import CrossEncoder

    queries, passages = _pairs()
    expected = CrossEncoder(str(tiny_dir), device="cpu", local_files_only=True).predict(
        list(zip(queries, passages)), show_progress_bar=False)
    reranker = get_reranker(f"cross-encoder:{tiny_dir},batch_size=4", RerankContext(device="cpu"))
    scores = reranker.score_pairs(queries, passages)
    assert scores.shape == (len(queries),)
    assert np.max(np.abs(scores - expected)) <= 1e-5
    assert reranker.config()["activation"].endswith("Sigmoid")  # CrossEncoder's default for one label
    assert np.all((scores > 0) & (scores < 1))
    # The default (backend=auto) on the CPU is ONNX Runtime fp32; torch fp32 agrees just as closely.
    assert (reranker.backend, reranker.precision) == ("onnx", "fp32")
    torch_fp32 = get_reranker(f"cross-encoder:{tiny_dir},backend=torch,batch_size=4", RerankContext(device="cpu"))
    assert np.max(np.abs(torch_fp32.score_pairs(queries, passages) - expected)) <= 1e-5
    assert torch_fp32.fingerprint != reranker.fingerprint
    bf16 = get_reranker(f"cross-encoder:{tiny_dir},precision=bf16", RerankContext(device="cpu"))
    assert (bf16.backend, bf16.precision) == ("torch", "bf16")
    np.testing.assert_allclose(reranker.score(QUERIES[0], PASSAGES), scores[:len(PASSAGES)], atol=1e-6)
    assert reranker.max_length == 64  # tokenizer limit capped at max_position_embeddings, like CrossEncoder


def test_saved_activation_and_sentence_transformers_layout(tmp_path):
    from sentence_transformers import CrossEncoder

    directory = _write_tiny_bert(tmp_path / "identity", seed=1,
                                 st_config={"activation_fn": "torch.nn.modules.linear.Identity"})
    queries, passages = _pairs()
    model = CrossEncoder(str(directory), device="cpu", local_files_only=True)
    expected = model.predict(list(zip(queries, passages)), show_progress_bar=False)
    reranker = get_reranker(f"cross-encoder:{directory}")
    assert reranker.config()["activation"].endswith("Identity")
    assert np.max(np.abs(reranker.score_pairs(queries, passages) - expected)) <= 1e-5
    # the same model saved by sentence-transformers itself (modules.json, config_sentence_transformers.json)
    model.save_pretrained(str(tmp_path / "st-saved"))
    saved = get_reranker(f"cross-encoder:{tmp_path / 'st-saved'}")
    assert np.max(np.abs(saved.score_pairs(queries, passages) - expected)) <= 1e-5


def test_bf16_close_to_fp32(tiny_dir):
    queries, passages = _pairs()
    fp32 = get_reranker(f"cross-encoder:{tiny_dir}").score_pairs(queries, passages)
    bf16 = get_reranker(f"cross-encoder:{tiny_dir},precision=bf16")
    assert bf16.config()["precision"] == "bf16"
    assert np.max(np.abs(bf16.score_pairs(queries, passages) - fp32)) < 0.05


def test_onnx_int8_and_fp32_exports_are_cached(tiny_dir):
    pytest.importorskip("onnx")
    queries, passages = _pairs()
    fp32 = get_reranker(f"cross-encoder:{tiny_dir}").score_pairs(queries, passages)
    int8 = get_reranker(f"cross-encoder:{tiny_dir},backend=onnx")
    assert (int8.backend, int8.precision) == ("onnx", "int8")
    export_dir = int8.onnx_dir
    assert (export_dir / "model.int8.onnx").is_file() and (export_dir / "model.onnx").is_file()
    assert np.max(np.abs(int8.score_pairs(queries, passages) - fp32)) < 0.05
    stamp = (export_dir / "model.int8.onnx").stat().st_mtime_ns
    onnx_fp32 = get_reranker(f"cross-encoder:{tiny_dir},backend=onnx,precision=fp32")
    assert onnx_fp32.onnx_dir == export_dir and (export_dir / "model.int8.onnx").stat().st_mtime_ns == stamp
    assert np.max(np.abs(onnx_fp32.score_pairs(queries, passages) - fp32)) <= 1e-5


def test_fingerprint_tracks_weights_precision_not_install_path(tiny_dir, tmp_path):
    import shutil

    other = _write_tiny_bert(tmp_path / "other", seed=7)
    base = get_reranker(f"cross-encoder:{tiny_dir}")
    config = base.config()
    assert config["model"] == str(tiny_dir.resolve())
    assert len(config["files"]["model.safetensors"]) == 64
    # the files' hashes identify a local model, not where it is installed: a copy shares cached scores
    copy = get_reranker(f"cross-encoder:{shutil.copytree(tiny_dir, tmp_path / 'copy')}")
    assert copy.config()["model"] != config["model"] and copy.fingerprint == base.fingerprint
    fingerprints = {base.fingerprint, get_reranker(f"cross-encoder:{other}").fingerprint,
                    get_reranker(f"cross-encoder:{tiny_dir},precision=bf16").fingerprint,
                    get_reranker(f"cross-encoder:{tiny_dir},max_length=32").fingerprint}
    assert len(fingerprints) == 4
    # batch size and threads do not change scores, so they share cached scores
    assert get_reranker(f"cross-encoder:{tiny_dir},batch_size=3").fingerprint == base.fingerprint
    # overwriting the weights in place changes the fingerprint
    _write_tiny_bert(tmp_path / "other", seed=8)
    assert get_reranker(f"cross-encoder:{other}").fingerprint not in fingerprints


def test_hub_id_resolves_offline_from_the_hf_cache(tiny_dir, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--cross-encoder--tiny-test"
    shutil.copytree(tiny_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = get_reranker("cross-encoder:cross-encoder/tiny-test")
    local = get_reranker(f"cross-encoder:{tiny_dir}")
    assert cached.config()["model"] == "cross-encoder/tiny-test"
    assert cached.config()["files"] == local.config()["files"]
    queries, passages = _pairs()
    np.testing.assert_array_equal(cached.score_pairs(queries, passages), local.score_pairs(queries, passages))


def test_unloadable_model_is_one_clear_line(tmp_path):
    with pytest.raises(WorkbenchError) as caught:
        get_reranker("cross-encoder:no-such-org/no-such-cross-encoder")
    message = str(caught.value)
    assert "\n" not in message and "could not be loaded" in message
    assert "cross-encoder:/path/to/model" in message
    with pytest.raises(WorkbenchError, match="does not exist"):
        get_reranker(f"cross-encoder:{tmp_path / 'missing' / 'model'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WorkbenchError):
        get_reranker(f"cross-encoder:{empty}")


def test_bad_options(tiny_dir):
    with pytest.raises(WorkbenchError, match="unknown option"):
        get_reranker(f"cross-encoder:{tiny_dir},batchsize=4")
    with pytest.raises(WorkbenchError, match="precision"):
        get_reranker(f"cross-encoder:{tiny_dir},precision=fp8")
    with pytest.raises(WorkbenchError, match="backend"):
        get_reranker(f"cross-encoder:{tiny_dir},backend=tensorrt")
    if not torch.cuda.is_available():
        with pytest.raises(WorkbenchError, match="CUDA is not available"):
            get_reranker(f"cross-encoder:{tiny_dir},device=cuda")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_length_sorted_batches_and_padding():
    lengths = [3, 7, 1, 5, 7]
    batches = length_sorted_batches(lengths, 2)
    assert [list(b) for b in batches] == [[1, 4], [3, 0], [2]]
    encoded = {"input_ids": [[1, 2, 3], [4]], "token_type_ids": [[0, 1, 1], [0]]}
    right = pad_batch(encoded, np.array([1, 0]), {"input_ids": 9, "token_type_ids": 0})
    assert right["input_ids"].tolist() == [[4, 9, 9], [1, 2, 3]]
    assert right["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    left = pad_batch(encoded, np.array([1]), {"input_ids": 9}, padding_side="left")
    assert left["input_ids"].tolist() == [[4]]
    left = pad_batch(encoded, np.array([0, 1]), {"input_ids": 9}, padding_side="left")
    assert left["input_ids"].tolist() == [[1, 2, 3], [9, 9, 4]] and left["attention_mask"][1].tolist() == [0, 0, 1]
    assert json.dumps(scatter(2, [np.array([1]), np.array([0])], [np.array([5.0]), np.array([6.0])]).tolist()) \
        == "[6.0, 5.0]"
