"""The bi-encoder through the one list trainer, on tiny random models: every list loss and InfoNCE
with in-batch negatives, configuration rules, the saved fold model (sentence-transformers directory,
ranker.json, leakage record), ``finetuned:<name>`` as a dense reranker and a dense first stage, the
leakage guard, resuming an interrupted run, and a smoke run on the real folds; plus the
sentence-transformers style examples ``make bench`` trains the reference with."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("accelerate")

from helpers_data import make_tiny_data  # noqa: E402
from helpers_models import offline, write_tiny_bert  # noqa: E402,F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.train.biencoder import contrastive_examples  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.data import Fold, RankingList  # noqa: E402
from workbench.train.losses import LOSSES  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

WORDS = "capital france paris city eggs boil minutes water river town cook hot cold lyon".split()


def write_tiny_st(directory: Path, characters: bool = False) -> Path:
    """A tiny random BERT wrapped as a sentence-transformers model: masked mean + Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    bert = write_tiny_bert(directory / "bert", WORDS, head="base", characters=characters)
    body = Transformer(str(bert), max_seq_length=32)
    model = SentenceTransformer(modules=[body, Pooling(32, pooling_mode="mean"), Normalize()], device="cpu")
    model.save(str(directory / "st"), create_model_card=False)
    return directory / "st"


def synthetic_lists(n: int, size: int = 6, seed: int = 0, source: str = "synthetic") -> list[RankingList]:
    rng = np.random.default_rng(seed)
    lists = []
    for q in range(n):
        topic = rng.choice(WORDS, 2, replace=False)
        passages = [" ".join(rng.choice(WORDS, 5)) + f" {q} {i}" for i in range(size)]
        labels = np.array([float(len(set(topic) & set(p.split()))) for p in passages], dtype=np.float32)
        labels[0] = max(labels[0], 1.0)
        labels[-1] = 0.0
        lists.append(RankingList(source, f"q{q}", " ".join(topic) + f" {q}", [f"d{q}-{i}" for i in range(size)],
                                 passages, labels))
    return lists


def synthetic_fold(n: int = 12, name: str = "synthetic") -> Fold:
    lists = synthetic_lists(n)
    return Fold(name, name, lists[:-3], lists[-3:], ("synthetic",))


def config(backbone: Path, **overrides) -> TrainConfig:
    values = dict(name="t", backbone=str(backbone), architecture="bi-encoder", loss="infonce", epochs=2,
                  max_length=32, precision="fp32", checkpoint_every=1000, seed=3, lists_per_batch=3, list_size=4,
                  lr_embeddings=1e-3, lr_encoder=1e-3)
    return TrainConfig(**{**values, **overrides})


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_st(tmp_path / "tiny")


def test_examples_positives_at_the_level_hard_negatives_graded_zero():
    labels = np.array([0, 1, 3, 0, 2, 2, 0, 0, 2], dtype=np.float32)  # BM25 order
    lst = RankingList("dl20", "7", "q", [f"d{i}" for i in range(9)], [f"p{i}" for i in range(9)], labels)
    examples = contrastive_examples([lst], max_positives=3, hard_negatives=2, negative_depth=3, seed=0)
    assert [x.positive for x in examples][0] == "p2"  # the highest grade first
    assert {x.positive for x in examples} <= {"p2", "p4", "p5", "p8"} and len(examples) == 3  # DL: grade >= 2
    negatives = [n for x in examples for n in x.negatives]
    assert set(negatives) <= {"p0", "p3", "p6"}  # grade 0, first 3 in BM25 order; grade 1 is neither
    assert all(len(set(x.negatives)) == 2 for x in examples)
    assert examples == contrastive_examples([lst], 3, 2, 3, seed=0)  # seeded
    dev = RankingList("dev600", "8", "q", ["a", "b"], ["pa", "pb"], np.array([0, 1], dtype=np.float32))
    assert [x.positive for x in contrastive_examples([dev], 4, 1)] == ["pb"]  # dev: grade >= 1
    assert contrastive_examples([dev], 4, hard_negatives=2) == []  # too few grade-0 candidates


def test_configuration_rules(tmp_path):
    with pytest.raises(WorkbenchError, match='loss = "infonce" needs architecture = "bi-encoder"'):
        TrainConfig(loss="infonce")
    with pytest.raises(WorkbenchError, match='loss = "infonce" takes no'):
        TrainConfig(architecture="bi-encoder", loss="infonce", loss_options={"batch_size": 2})
    with pytest.raises(WorkbenchError, match="similarity must be cosine or dot"):
        TrainConfig(architecture="bi-encoder", similarity="l2")
    with pytest.raises(WorkbenchError, match="unknown loss 'ranknet'"):
        TrainConfig(architecture="bi-encoder", loss="ranknet")
    for loss in LOSSES:  # every list loss takes the bi-encoder
        assert TrainConfig(architecture="bi-encoder", loss=loss).loss == loss
    # the bi-encoder's fields stay out of other architectures' keys (which predate them)
    assert '"scale"' not in TrainConfig().key() and '"scale"' in TrainConfig(architecture="bi-encoder").key()
    shipped = TrainConfig.from_file(Path(__file__).parent.parent / "configs" / "minilm-contrastive.toml")
    assert shipped.architecture == "bi-encoder" and shipped.loss == "infonce"
    for path in sorted((Path(__file__).parent.parent / "configs" / "ablation-bi").glob("*.toml")):
        made = TrainConfig.from_file(path)
        assert made.architecture == "bi-encoder" and made.backbone == "minilm" and made.name == f"ablate-bi-{path.stem}"


@pytest.mark.parametrize("loss", [*LOSSES, "infonce"])
def test_every_loss_trains_the_bi_encoder(tiny, tmp_path, loss):
    """Each loss moves the weights through the one loop; the score it trains on is scale x the
    cosine of vectors encoded apart (+ the bias), which is what sentence-transformers computes."""
    the_fold = synthetic_fold()
    trainer = Trainer(config(tiny, loss=loss), the_fold, tmp_path / loss, progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.train()
    assert summary["epochs_run"] == 2 and summary["steps"] == 6 and summary["pairs_per_s"] > 0
    moved = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoder.layer" in k for k in moved)
    steps = (tmp_path / loss / "steps.csv").read_text().splitlines()
    assert len(steps) == 7 and all(np.isfinite(float(line.split(",")[2])) for line in steps[1:])
    epochs = [json.loads(line) for line in (tmp_path / loss / "epochs.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in epochs] == [-1, 0, 1]  # the backbone first: what fine-tuning must beat
    meta = json.loads((tmp_path / loss / "model" / "ranker.json").read_text())
    assert meta["kind"] == "bi-encoder" and meta["loss"] == loss and meta["similarity"] == "cosine"
    lst = the_fold.validation[0]
    trainer.model.eval()
    scores = trainer.score_lists([trainer._encode(lst)])[0]
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tmp_path / loss / "model"), device="cpu", local_files_only=True)
    vectors = st.encode([lst.query, *lst.passages], convert_to_numpy=True, normalize_embeddings=True)
    best = json.loads((tmp_path / loss / "model" / "ranker.json").read_text())
    if best["epoch"] == 1:  # the saved model is the final weights: the same scores
        np.testing.assert_allclose(scores, 20.0 * (vectors[1:] @ vectors[0]) + meta["bias"], atol=1e-4)


def test_infonce_scores_each_query_against_the_whole_batch(tiny, tmp_path):
    lists = synthetic_lists(3, size=4)
    # the same passage (docno) in two lists: for the other query it is masked, not a negative
    lists[1] = RankingList("synthetic", "q1", lists[1].query, [lists[0].docnos[0], *lists[1].docnos[1:]],
                           [lists[0].passages[0], *lists[1].passages[1:]], lists[1].labels)
    trainer = Trainer(config(tiny), Fold("f", "f", lists, [], ("synthetic",)), tmp_path / "x", progress=False)
    encoded = [trainer._encode(lst) for lst in lists]
    scores, labels, mask = trainer._batch(encoded, None, in_batch=True)
    assert scores.shape == labels.shape == mask.shape == (3, 12)
    own, _, own_mask = trainer._batch(encoded, None)
    for row in range(3):  # each query's own candidates, scored as in the list view
        torch.testing.assert_close(scores[row, 4 * row:4 * row + 4], own[row, :4])
        assert labels[row, 4 * row:4 * row + 4].tolist() == lists[row].labels.tolist()
        assert labels[row].sum() == float(lists[row].labels.sum())  # other lists' candidates: label 0
    assert not mask[0, 4] and not mask[1, 0] and int(mask.sum()) == 36 - 2


def test_fold_model_loads_as_a_dense_reranker_and_first_stage(tiny, tmp_path, monkeypatch):
    from workbench.experiment import Workbench
    from workbench.rerankers.dense import DenseReranker

    data = make_tiny_data(tmp_path / "data")
    models = tmp_path / "models"
    the_fold = synthetic_fold(name="dl19")
    summary = Trainer(config(tiny), the_fold, models / "t" / "dl19", progress=False).train()
    assert summary["epochs_run"] == 2 and summary["best_epoch"] in (0, 1)
    model_dir = models / "t" / "dl19" / "model"
    meta = json.loads((model_dir / "ranker.json").read_text())
    assert meta["kind"] == "bi-encoder" and meta["pooling"] == "masked_mean" and meta["normalize"] is True
    assert meta["loss"] == "infonce" and meta["max_length"] == 32
    assert (model_dir / "modules.json").is_file() and (model_dir / "2_Normalize").is_dir()
    record = json.loads((model_dir / "workbench-training.json").read_text())
    assert {row["qid"] for row in record["queries"]} == {x.qid for x in the_fold.train + the_fold.validation}
    epochs = [json.loads(line) for line in (models / "t" / "dl19" / "epochs.jsonl").read_text().splitlines()]
    assert {"mrr@10", "ndcg@10", "separation", "drift_encoder"} <= set(epochs[1])
    from workbench.train.plot import plot_training

    assert plot_training(models / "t").stat().st_size > 10_000
    # the same model under another fold name: finetuned:<name> must pick the dataset's own fold
    shutil.copytree(models / "t" / "dl19", models / "t" / "dl20")
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    bench = Workbench(data_dir=data, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv", progress=False)
    reranker = bench.session.reranker("finetuned:t", bench.dataset("dl19"))
    assert isinstance(reranker, DenseReranker) and reranker.per_dataset
    assert Path(reranker.encoder.directory) == model_dir and reranker.encoder.max_length == 32
    assert reranker.encoder.pooling == "masked_mean" and reranker.encoder.normalize
    # cosine of the encoder's vectors = what sentence-transformers computes with the saved model
    from sentence_transformers import SentenceTransformer

    lst = the_fold.validation[0]
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    vectors = st.encode([lst.query, *lst.passages], convert_to_numpy=True)
    np.testing.assert_allclose(reranker.score(lst.query, lst.passages), vectors[1:] @ vectors[0], atol=1e-5)
    stored = bench.produce("official-bm25+finetuned:t", "dl19")
    assert stored.manifest["comparability"].startswith("fine-tuned on TREC DL judgments of the other year")
    dense = bench.produce("dense-mini:encoder=finetuned:t,k=3", "dl19")
    assert set(dense.run["qid"]) == {"1", "2"} and dense.run.groupby("qid").size().max() == 3


def test_leakage_guard_refuses_a_dataset_the_model_saw(tiny, tmp_path, monkeypatch):
    from workbench.experiment import Workbench

    data = make_tiny_data(tmp_path / "data")
    lists = synthetic_lists(8)
    # a DL19 query (qid 1, "capital of france") among the training queries of the "dl19" fold
    lists[0] = RankingList("dl19", "1", "Capital of France?", lists[0].docnos, lists[0].passages, lists[0].labels)
    leaky = Fold("dl19", "dl19", lists[:-2], lists[-2:], ("dl19", "synthetic"))
    models = tmp_path / "models"
    Trainer(config(tiny, epochs=1), leaky, models / "leaky" / "dl19", progress=False).train()
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    bench = Workbench(data_dir=data, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv", progress=False)
    with pytest.raises(WorkbenchError, match="leakage: this model was trained on 1 queries of dataset 'dl19'"):
        bench.produce("official-bm25+finetuned:leaky", "dl19")
    with pytest.raises(WorkbenchError, match="leakage"):
        bench.produce("dense-mini:encoder=finetuned:leaky", "dl19")
    with pytest.raises(WorkbenchError, match="leakage"):
        bench.produce(f"official-bm25+dense:{models / 'leaky' / 'dl19' / 'model'}", "dl19")


@pytest.mark.parametrize("loss", ["hybrid", "infonce"])
def test_resume_after_interruption_reaches_the_same_weights(tiny, tmp_path, loss):
    the_fold = synthetic_fold(16)
    settings = dict(checkpoint_every=2, loss=loss)
    uninterrupted = Trainer(config(tiny, **settings), the_fold, tmp_path / "a", progress=False)
    first = uninterrupted.train()
    steps = first["steps"]
    assert steps >= 6
    stopped = Trainer(config(tiny, **settings), the_fold, tmp_path / "b", progress=False)
    with pytest.raises(KeyboardInterrupt):
        stopped.train(stop_after_steps=steps // 2 + 1)  # in the second epoch, past a checkpoint
    assert (tmp_path / "b" / "checkpoint" / "trainer.pt").is_file()
    resumed = Trainer(config(tiny, **settings), the_fold, tmp_path / "b", progress=False)
    summary = resumed.train()
    assert summary["resumed"] and summary["steps"] == steps
    a, b = uninterrupted.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[name], b[name], atol=1e-6) for name in a)
    assert (tmp_path / "a" / "steps.csv").read_text() == (tmp_path / "b" / "steps.csv").read_text()

    def ndcg(run: str) -> list[float]:
        return [json.loads(line)["ndcg@10"] for line in (tmp_path / run / "epochs.jsonl").read_text().splitlines()]

    assert ndcg("a") == pytest.approx(ndcg("b"), abs=1e-9)
    # a finished fold is not trained again; another configuration in the way is refused
    again = Trainer(config(tiny, **settings), the_fold, tmp_path / "b", progress=False).train()
    assert again["resumed"] and again["best_val_ndcg@10"] == summary["best_val_ndcg@10"]
    with pytest.raises(WorkbenchError, match="another configuration is in the way"):
        Trainer(config(tiny, lr_encoder=1e-2, **settings), the_fold, tmp_path / "b", progress=False).train()


@pytest.mark.data
def test_real_folds_smoke(data_dir, tmp_path, monkeypatch):
    """A real fold's lists on a tiny model: the fold model carries the other year's queries and is
    refused on them."""
    from workbench.experiment import Workbench
    from workbench.train.run import train_config

    backbone = write_tiny_st(tmp_path / "tiny", characters=True)
    smoke = TrainConfig(name="bi-smoke", backbone=str(backbone), architecture="bi-encoder", loss="listwise",
                        folds=["dl19"], limit_queries=6, epochs=1, max_length=48, precision="fp32",
                        validation=0.2, list_size=6)
    result = train_config(smoke, data_dir, tmp_path / "models", progress=False)
    assert [f["fold"] for f in result["folds"]] == ["dl19"] and result["folds"][0]["steps"] > 0
    fold_model = tmp_path / "models" / "bi-smoke" / "dl19" / "model"
    record = json.loads((fold_model / "workbench-training.json").read_text())
    assert {row["dataset"] for row in record["queries"]} == {"dl20", "dev600"}
    card = (tmp_path / "models" / "bi-smoke" / "README.md").read_text()
    assert "bi-encoder" in card and "dense-mini:encoder=finetuned:bi-smoke" in card
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "models"))
    bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False, rerank_depth=5)
    bench.produce("official-bm25+finetuned:bi-smoke", "dl19")
    with pytest.raises(WorkbenchError, match="leakage: this model was trained on .* queries of dataset 'dl20'"):
        bench.produce(f"official-bm25+dense:{fold_model}", "dl20")
