"""Fine-tuning on tiny random models: learning-rate groups, checkpoints that reproduce scores,
the cls checkpoint in sentence-transformers' CrossEncoder, resume = uninterrupted, the T5 path,
the smoke configuration, and the leakage guard on the real folds."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers_models import offline, write_tiny_bert, write_tiny_t5  # noqa: E402,F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.data import Fold, RankingList, split_validation  # noqa: E402
from workbench.train.trainer import Trainer, sample_candidates, warmup_linear  # noqa: E402

WORDS = "capital france paris city eggs boil minutes water river town cook hot cold".split()


def synthetic_lists(n: int = 8, size: int = 6, seed: int = 0) -> list[RankingList]:
    rng = np.random.default_rng(seed)
    lists = []
    for q in range(n):
        topic = rng.choice(WORDS, 2)
        passages = [" ".join(rng.choice(WORDS, 5)) for _ in range(size)]
        labels = np.array([float(len(set(topic) & set(p.split()))) for p in passages], dtype=np.float32)
        labels[0] = max(labels[0], 1.0)
        lists.append(RankingList("synthetic", f"q{q}", " ".join(topic), [f"d{q}-{i}" for i in range(size)], passages,
                                 labels))
    return lists


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_bert(tmp_path / "tiny-bert", WORDS, head="base")


def config(backbone, **overrides) -> TrainConfig:
    values = dict(name="t", backbone=str(backbone), epochs=2, lists_per_batch=2, list_size=4, max_length=32,
                  precision="fp32", checkpoint_every=1, validation=0.25, seed=3, pairs_per_forward=5)
    return TrainConfig(**{**values, **overrides})


def fold(n: int = 8) -> Fold:
    train, validation = split_validation(synthetic_lists(n), 0.25, seed=0)
    return Fold("synthetic", "none", train, validation, ("synthetic",))


def test_learning_rate_groups_and_schedule(tiny, tmp_path):
    trainer = Trainer(config(tiny), fold(), tmp_path / "run", progress=False)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    base = {name: g["initial_lr"] for name, g in groups.items()}
    assert base == {"embeddings": 5e-6, "encoder": 5e-5, "head": 2e-4}
    named = {id(p): n for n, p in trainer.model.named_parameters()}
    in_groups = [named[id(p)] for g in trainer.optimizer.param_groups for p in g["params"]]
    assert sorted(in_groups) == sorted(named.values())  # every parameter in exactly one group
    assert all("embeddings" in named[id(p)] for p in groups["embeddings"]["params"])
    assert {named[id(p)] for p in groups["head"]["params"]} == {"head.weight", "head.bias"}
    assert trainer.optimizer.defaults["betas"] == (0.9, 0.97)
    factor = warmup_linear(10, 0.2)
    assert [round(factor(s), 4) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]


def test_sampling_keeps_relevant_candidates():
    labels = np.array([0, 0, 3, 0, 0, 1, 0, 0], dtype=np.float32)
    chosen = sample_candidates(labels, 4, np.random.default_rng(0))
    assert len(chosen) == 4 and {2, 5} <= set(chosen)
    assert list(sample_candidates(labels, 0, np.random.default_rng(0))) == list(range(8))


def test_training_logs_and_checkpoint_round_trip(tiny, tmp_path):
    from workbench.models.ranker import load_encoder_ranker
    from workbench.rerankers.finetuned import EncoderRankerReranker

    the_fold = fold()
    trainer = Trainer(config(tiny), the_fold, tmp_path / "run", progress=False)
    summary = trainer.train()
    assert summary["epochs_run"] == 2 and summary["best_epoch"] in (0, 1)
    steps = (tmp_path / "run" / "steps.csv").read_text().splitlines()
    assert steps[0].split(",")[:5] == ["step", "epoch", "loss", "loss_pairwise", "loss_listwise"]
    assert len(steps) == 1 + 2 * 3  # header + 2 epochs x 3 steps (6 training lists, 2 per step)
    epochs = [json.loads(line) for line in (tmp_path / "run" / "epochs.jsonl").read_text().splitlines()]
    assert {"val_loss", "mrr@10", "ndcg@5", "ndcg@10", "separation", "drift_embeddings", "drift_encoder",
            "drift_head", "lr_head"} <= set(epochs[0])
    # the saved (best) model, reloaded, scores exactly as the trainer scores those weights
    model_dir = tmp_path / "run" / "model"
    best = Trainer(config(tiny), the_fold, tmp_path / "copy", progress=False)
    best.model.load_state_dict(load_encoder_ranker(
        model_dir).state_dict())
    lst = the_fold.validation[0]
    expected = best.score_lists([best._encode(lst)])[0]
    reloaded = EncoderRankerReranker(model_dir, device="cpu", batch_size=5)  # the trainer's chunk size
    np.testing.assert_array_equal(reloaded.score(lst.query, lst.passages), expected)
    # one epoch: the saved model is the trained model, weight for weight
    once = Trainer(config(tiny, epochs=1), the_fold, tmp_path / "once", progress=False)
    once.train()
    saved = load_encoder_ranker(tmp_path / "once" / "model")
    trained = once.model.state_dict()
    assert all(torch.equal(trained[name], value) for name, value in saved.state_dict().items())
    record = json.loads((model_dir / "workbench-training.json").read_text())
    assert {row["qid"] for row in record["queries"]} == {x.qid for x in the_fold.train + the_fold.validation}
    from workbench.train.plot import plot_training

    assert plot_training(tmp_path / "run").stat().st_size > 10_000


def test_cls_checkpoint_loads_in_crossencoder(tmp_path):
    from sentence_transformers import CrossEncoder

    backbone = write_tiny_bert(tmp_path / "tiny-cls", WORDS, head="base")
    the_fold = fold()
    trainer = Trainer(config(backbone, pooling="cls", epochs=1), the_fold, tmp_path / "run", progress=False)
    trainer.train()
    model_dir = tmp_path / "run" / "model"
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    lst = the_fold.validation[0]
    ours = trainer.score_lists([trainer._encode(lst)])[0]
    theirs = CrossEncoder(str(model_dir), device="cpu", local_files_only=True, max_length=32).predict(
        [(lst.query, p) for p in lst.passages], convert_to_numpy=True)
    np.testing.assert_allclose(theirs, 1 / (1 + np.exp(-ours)), atol=1e-5)  # CrossEncoder applies a sigmoid
    from workbench.rerankers import get_reranker

    reranker = get_reranker(f"cross-encoder:{model_dir},backend=torch,max_length=32")
    np.testing.assert_allclose(reranker.score(lst.query, lst.passages), theirs, atol=1e-5)


def test_resume_after_interruption_reaches_the_same_weights(tiny, tmp_path):
    the_fold = fold(10)
    uninterrupted = Trainer(config(tiny), the_fold, tmp_path / "a", progress=False)
    uninterrupted.train()
    first = Trainer(config(tiny), the_fold, tmp_path / "b", progress=False)
    with pytest.raises(KeyboardInterrupt):
        first.train(stop_after_steps=5)  # mid second epoch (4 steps per epoch)
    resumed = Trainer(config(tiny), the_fold, tmp_path / "b", progress=False)
    summary = resumed.train()
    assert summary["resumed"]
    a, b = uninterrupted.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert (tmp_path / "a" / "steps.csv").read_text() == (tmp_path / "b" / "steps.csv").read_text()


def test_encoder_decoder_ranker_trains_and_loads_in_monot5(tmp_path):
    from workbench.rerankers import get_reranker

    backbone = write_tiny_t5(tmp_path / "tiny-t5")
    the_fold = fold(6)
    trainer = Trainer(config(backbone, architecture="encoder-decoder", true_token="t", epochs=1,
                          max_length=64), the_fold, tmp_path / "run", progress=False)
    trainer.train()
    model_dir = tmp_path / "run" / "model"
    reranker = get_reranker(f"monot5:{model_dir},true_token=t,false_token=f")
    lst = the_fold.validation[0]
    scores = reranker.score(lst.query, lst.passages)
    assert scores.shape == (len(lst),) and np.all(np.isfinite(scores))


def test_t5_encoder_with_masked_mean(tmp_path):
    backbone = write_tiny_t5(tmp_path / "tiny-t5")
    trainer = Trainer(config(backbone, epochs=1, max_length=64), fold(4), tmp_path / "run", progress=False)
    assert trainer.model.t5 and trainer.model.pooling == "masked_mean"
    assert trainer.train()["epochs_run"] == 1


def test_config_files_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\nloss = "listwise"\n[loss_options]\n', encoding="utf-8")
    assert TrainConfig.from_file(path).loss == "listwise"
    path.write_text('name = "x"\nlos = "listwise"\n', encoding="utf-8")
    with pytest.raises(WorkbenchError, match="unknown training option"):
        TrainConfig.from_file(path)
    with pytest.raises(WorkbenchError, match="unknown loss"):
        TrainConfig(loss="magic")
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("name: y\nloss: pointwise\nepochs: 1\n", encoding="utf-8")
    assert TrainConfig.from_file(yaml_path).epochs == 1


@pytest.mark.data
def test_smoke_configuration_and_the_leakage_guard(data_dir, tmp_path, monkeypatch):
    """The shipped smoke config on the real DL folds (tiny model), then the guard refuses the
    fold model on the year it was trained on."""
    from workbench.experiment import Workbench
    from workbench.train.run import train_config

    backbone = write_tiny_bert(tmp_path / "tiny-smoke", WORDS, head="base", characters=True)
    smoke = TrainConfig.from_file(__import__("pathlib").Path(__file__).parent.parent / "configs" / "smoke.toml")
    smoke.backbone = str(backbone)
    result = train_config(smoke, data_dir, tmp_path / "models", progress=False)
    assert [f["fold"] for f in result["folds"]] == ["dl19"]
    fold_model = tmp_path / "models" / "smoke" / "dl19" / "model"
    record = json.loads((fold_model / "workbench-training.json").read_text())
    assert {row["dataset"] for row in record["queries"]} == {"dl20", "dev600"}
    assert "NOT comparable with models trained on MS MARCO train" in (tmp_path / "models" / "smoke" / "README.md").read_text()
    bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False, rerank_depth=5)
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "models"))
    result = bench.run_system("official-bm25+finetuned:smoke", "dl19")
    assert result.stored.manifest["comparability"].startswith("fine-tuned on TREC DL judgments of the other year")
    with pytest.raises(WorkbenchError, match="leakage: this model was trained on .* queries of dataset 'dl20'"):
        bench.produce(f"official-bm25+cross-encoder:{fold_model}", "dl20")
    with pytest.raises(WorkbenchError, match="no fold model of 'smoke' for dl20"):
        bench.produce("official-bm25+finetuned:smoke", "dl20")


def test_msmarco_train_lists_from_ir_datasets_records(tmp_path):
    """Lists from MS MARCO train records (ir_datasets' query and qrel tuples) and a BM25 run."""
    from collections import namedtuple

    from workbench.data.collection import Collection
    from workbench.train.data import msmarco_train_lists

    Query = namedtuple("Query", "query_id text")
    Qrel = namedtuple("Qrel", "query_id doc_id relevance iteration")
    (tmp_path / "c.tsv").write_text("1\tparis is the capital\n2\teggs boil\n3\trivers flow\n4\tlyon is a city\n")
    run = tmp_path / "train.trec"
    run.write_text("q1 Q0 2 1 9.0 bm25\nq1 Q0 4 2 8.0 bm25\nq2 Q0 3 1 5.0 bm25\nq3 Q0 1 1 5.0 bm25\n")
    lists = msmarco_train_lists([Query("q1", "capital of france"), Query("q2", "how do rivers flow")],
                                [Qrel("q1", "1", 1, "0"), Qrel("q2", "3", 1, "0")], run,
                                Collection(tmp_path / "c.tsv"), depth=2)
    assert [(lst.qid, lst.docnos, lst.labels.tolist()) for lst in lists] == [
        ("q1", ["2", "4", "1"], [0.0, 0.0, 1.0]),  # the relevant passage BM25 missed is added
        ("q2", ["3"], [1.0])]                        # q3 has no query text: skipped
    assert lists[0].passages[2] == "paris is the capital"
