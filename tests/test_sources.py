"""Training data named by a configuration (``train = [...]``, ``negatives``, ``validation_source``),
offline, on small ir_datasets datasets registered here (mimicking msmarco-passage/train/judged,
train/triples-small and dev/small): a tiny training run end to end through the streamed shards,
resuming an interrupted candidate computation, the errors, BM25 negatives over a tiny Lucene index."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from helpers_models import offline, write_tiny_bert  # noqa: E402,F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.data.datasets import get_dataset  # noqa: E402
from workbench.train import candidates, list_shards, sources  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.candidates import compute_candidates  # noqa: E402
from workbench.train.list_shards import ShardedLists  # noqa: E402
from workbench.train.sources import training_fold  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

WORDS = ["cat", "dog", "bird", "fish", "tree", "car", "road", "sun", "rain", "snow", "book", "song"]
PREFIX = "workbench-test/sources/"
TRAIN, TRIPLES, DEV = "irds:" + PREFIX + "train/judged", "irds:" + PREFIX + "train/triples", "irds:" + PREFIX + "dev"
EVAL, NO_QRELS, NO_PAIRS = "irds:" + PREFIX + "eval", "irds:" + PREFIX + "no-qrels", "irds:" + PREFIX + "other-pairs"
FRESH = "irds:" + PREFIX + "fresh"
N_TRAIN, N_DEV = 10, 6


def _docs() -> list[tuple[str, str]]:
    """Two relevant passages per word pair topic, and distractors."""
    docs = []
    for i in range(40):
        a, b = WORDS[i % len(WORDS)], WORDS[(i * 5 + 1) % len(WORDS)]
        docs.append((f"p{i}", f"{a} {b} {WORDS[(i * 7 + 3) % len(WORDS)]} passage {i}"))
    return docs


@pytest.fixture(scope="module")
def irds(tmp_path_factory):
    """Register the fake datasets once per process (ir_datasets' registry is global)."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocPairs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    root = tmp_path_factory.mktemp("irds-sources")
    before = os.environ.get("IR_DATASETS_HOME")
    os.environ["IR_DATASETS_HOME"] = str(root / "home")
    (root / "docs.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in _docs()))
    train_queries = [(f"t{q}", f"{WORDS[q]} {WORDS[(q * 5 + 1) % len(WORDS)]} question {q}") for q in range(N_TRAIN)]
    dev_queries = [(f"v{q}", f"{WORDS[q + 2]} {WORDS[q]} dev {q}") for q in range(N_DEV)]
    (root / "train-queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in train_queries))
    (root / "train-qrels.txt").write_text("".join(f"t{q} 0 p{q} 1\n" for q in range(N_TRAIN)))
    (root / "pairs.tsv").write_text("".join(f"t{q}\tp{q}\tp{(q + k) % 40}\n" for q in range(N_TRAIN)
                                            for k in (11, 17, 23, 29)))
    (root / "other-pairs.tsv").write_text("x1\tp1\tp2\n")
    (root / "dev-queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in dev_queries))
    (root / "dev-qrels.txt").write_text("".join(f"v{q} 0 p{q + 20} 1\n" for q in range(N_DEV)))
    (root / "dev-run.trec").write_text("".join(f"v{q} Q0 p{(q + k) % 40} {r} {10 - r} x\n" for q in range(N_DEV)
                                               for r, k in enumerate((3, 20, 9, 30), 1)))
    # an evaluation dataset asking training query t3's question under another id
    (root / "eval-queries.tsv").write_text(f"e1\t{train_queries[3][1].upper()}!\ne2\tsomething else\n")
    (root / "eval-qrels.txt").write_text("e1 0 p3 1\ne2 0 p4 1\n")
    (root / "fresh-queries.tsv").write_text("f1\tsomething else\n")

    def local(name: str) -> LocalDownload:
        return LocalDownload(root / name)

    docs = TsvDocs(local("docs.tsv"))
    train_queries_, train_qrels = TsvQueries(local("train-queries.tsv")), TrecQrels(local("train-qrels.txt"), {})
    datasets = {
        TRAIN: Dataset(docs, train_queries_, train_qrels),
        TRIPLES: Dataset(docs, train_queries_, train_qrels, TsvDocPairs(local("pairs.tsv"))),
        NO_PAIRS: Dataset(docs, train_queries_, train_qrels, TsvDocPairs(local("other-pairs.tsv"))),
        DEV: Dataset(docs, TsvQueries(local("dev-queries.tsv")), TrecQrels(local("dev-qrels.txt"), {}),
                     TrecScoredDocs(local("dev-run.trec"))),
        EVAL: Dataset(docs, TsvQueries(local("eval-queries.tsv")), TrecQrels(local("eval-qrels.txt"), {})),
        NO_QRELS: Dataset(docs, train_queries_),
        FRESH: Dataset(docs, TsvQueries(local("fresh-queries.tsv")), TrecQrels(local("eval-qrels.txt"), {})),
    }
    for name, dataset in datasets.items():
        if name[len("irds:"):] not in ir_datasets.registry:
            ir_datasets.registry.register(name[len("irds:"):], dataset)
    yield root
    if before is None:
        os.environ.pop("IR_DATASETS_HOME", None)
    else:
        os.environ["IR_DATASETS_HOME"] = before


@pytest.fixture
def small_chunks(monkeypatch):
    """Three training queries per chunk and shard: ten queries make four shards."""
    monkeypatch.setattr(candidates, "CHUNK_QUERIES", 3)


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory) -> Path:
    """A tiny random BERT as a sentence-transformers model (masked mean + Normalize)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    directory = tmp_path_factory.mktemp("tiny-st")
    bert = write_tiny_bert(directory / "bert", [*WORDS, "question", "passage", "dev"], head="base", characters=True)
    model = SentenceTransformer(modules=[Transformer(str(bert), max_seq_length=32), Pooling(32, pooling_mode="mean"),
                                         Normalize()], device="cpu")
    model.save(str(directory / "st"), create_model_card=False)
    return directory / "st"


def _config(backbone: Path, **overrides) -> TrainConfig:
    values = dict(name="msmarco-like", backbone=str(backbone), architecture="bi-encoder", loss="listwise", epochs=1,
                  max_length=32, precision="fp32", lists_per_batch=2, list_size=4, checkpoint_every=1000, seed=1,
                  train=[TRAIN], negatives=TRIPLES, negatives_depth=3, validation_source=DEV, validation_queries=4)
    return TrainConfig(**{**values, **overrides})


def test_training_on_named_data_end_to_end_streams_shards(irds, tiny_st, small_chunks, tmp_path):
    from workbench.rerankers.finetuned import make_finetuned
    from workbench.rerankers.protocol import RerankContext
    from workbench.train.run import train_config

    config = _config(tiny_st)
    result = train_config(config, out_root=tmp_path / "models", progress=False)
    (summary,) = result["folds"]
    assert summary["fold"] == "train" and summary["steps"] == 5  # 10 lists, 2 per step
    shards = sorted(Path(os.environ["WORKBENCH_CACHE"]).glob("train-sources/lists/*/shard-*.jsonl"))
    assert [p.name for p in shards] == [f"shard-{n:05d}.jsonl" for n in range(4)]
    assert (shards[0].parent / "manifest.json").is_file()
    first = json.loads(shards[0].read_text().splitlines()[0])
    assert first["qid"] == "t0" and first["docnos"] == ["p0", "p11", "p17", "p23"] and first["labels"] == [1, 0, 0, 0]

    model = tmp_path / "models" / "msmarco-like" / "train" / "model"
    record = json.loads((model / "workbench-training.json").read_text())
    assert sorted(record["train_qids"]) == sorted(f"t{q}" for q in range(N_TRAIN))
    seen = {(row["dataset"], row["qid"]) for row in record["queries"]}
    assert {qid for dataset, qid in seen if dataset == DEV} and len(record["validation_qids"]) == 4
    assert "trained on " + TRAIN in (tmp_path / "models" / "msmarco-like" / "README.md").read_text()

    # finetuned:<name> finds the one model for a dataset it never saw, and refuses one it validated on
    reranker = make_finetuned(RerankContext(dataset=get_dataset(FRESH)), name="msmarco-like",
                              root=str(tmp_path / "models"), device="cpu", batch_size=None, precision=None)
    assert reranker.directory == model and TRAIN in reranker.comparability
    with pytest.raises(WorkbenchError, match="leakage"):
        make_finetuned(RerankContext(dataset=get_dataset(DEV)), name="msmarco-like", root=str(tmp_path / "models"),
                       device="cpu", batch_size=None, precision=None)


def test_the_trainer_reads_lists_lazily_a_shard_at_a_time(irds, tiny_st, small_chunks, tmp_path):
    config = _config(tiny_st, validation_source=None, validation=0.2, validation_queries=2)
    fold = training_fold(config)
    assert isinstance(fold.train, ShardedLists) and len(fold.train) == N_TRAIN - 2 and len(fold.validation) == 2
    assert not {lst.qid for lst in fold.validation} & set(fold.train_qids())  # held out of the shards
    trainer = Trainer(config, fold, tmp_path / "out", progress=False)
    assert trainer.train_encoded is None  # encoded per batch, not all at once
    order = trainer._epoch_order(0)
    assert sorted(order) == list(range(len(fold.train)))
    with pytest.raises(KeyboardInterrupt):  # how the trainer stops as an interruption would
        trainer.train(stop_after_steps=3)
    assert len(fold.train._cache) <= list_shards.SHARDS_IN_MEMORY < len(fold.train.shards)
    # the same order on resume; each shard's lists come together in it (a pass reads each shard once)
    assert trainer._epoch_order(0).tolist() == order.tolist()
    shard_of = np.searchsorted(fold.train.offsets, order, side="right") - 1
    assert int((np.diff(shard_of) != 0).sum()) == len(fold.train.shards) - 1


def test_interrupted_candidates_resume_without_redoing_chunks(irds, small_chunks, monkeypatch, tmp_path):
    from workbench.first_stage.run_files import RunFile

    run = tmp_path / "bm25.trec"
    run.write_text("".join(f"t{q} Q0 p{(q + k) % 40} {r} {9 - r} x\n" for q in range(N_TRAIN)
                           for r, k in enumerate((5, 6, 7), 1)))
    dataset = get_dataset(TRAIN)
    negatives = candidates.Negatives(f"run:{run}", dataset)
    queries = sources.judged_queries(dataset)
    searched: list[list[str]] = []
    search = RunFile.search

    def interrupted(self, topics):
        if len(searched) == 2:
            raise KeyboardInterrupt
        searched.append(list(topics["qid"]))
        return search(self, topics)

    monkeypatch.setattr(RunFile, "search", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compute_candidates(negatives, queries, 2)
    searched.clear()
    monkeypatch.setattr(RunFile, "search",
                        lambda self, topics: searched.append(list(topics["qid"])) or search(self, topics))
    directory = compute_candidates(negatives, queries, 2)
    assert searched == [["t6", "t7", "t8"], ["t9"]]  # only the chunks the interruption left
    assert sorted(p.name for p in directory.glob("chunk-*.tsv")) == [f"chunk-{n:05d}.tsv" for n in range(4)]
    assert not list(directory.glob(".*tmp"))
    assert candidates.read_candidates(directory / "chunk-00003.tsv") == {"t9": ["p14", "p15", "p16"]}
    searched.clear()
    compute_candidates(negatives, queries, 2)
    assert searched == []  # computed once


def test_named_training_data_errors_are_one_line(irds, tiny_st, small_chunks):
    cases = [
        (dict(train=[NO_QRELS]), "has no qrels"),
        (dict(evaluate_on=[EVAL]), "leakage: training query .* t3 .* is also a query of " + EVAL),
        (dict(negatives=NO_PAIRS), "yield no candidates for the 10 training queries"),
        (dict(train=["no-such-dataset"]), "unknown dataset 'no-such-dataset'"),
        (dict(negatives="nonsense:x=1"), "unknown negatives source 'nonsense:x=1'"),
        (dict(negatives="irds:" + PREFIX + "nothing"), "unknown negatives source"),
        (dict(negatives=TRAIN), "has no docpairs"),
    ]
    for overrides, message in cases:
        with pytest.raises(WorkbenchError, match=message) as error:
            training_fold(_config(tiny_st, **overrides))
        assert "\n" not in str(error.value)
    with pytest.raises(WorkbenchError, match="go with train"):
        TrainConfig(negatives=TRIPLES)
    from workbench.train.run import train_config

    with pytest.raises(WorkbenchError, match="has one fold, 'train', not dl19"):
        train_config(_config(tiny_st), folds=["dl19"])


def test_source_fields_stay_out_of_existing_keys():
    assert not {"train", "negatives", "negatives_depth", "validation_source", "validation_queries",
                "evaluate_on"} & set(json.loads(TrainConfig().key()))
    assert json.loads(TrainConfig(train=[TRAIN]).key())["train"] == [TRAIN]


def test_bm25_negatives_over_a_tiny_lucene_index(irds, tiny_st, small_chunks, tmp_path):
    from workbench.data.collection import Collection
    from workbench.first_stage.lucene import build_index

    pytest.importorskip("pyserini")
    index = build_index(Collection(irds / "docs.tsv"), root=tmp_path / "indexes", threads=1)
    fold = training_fold(_config(tiny_st, negatives=f"bm25:index={index.path},k=10"))
    lists = list(fold.train)
    assert len(lists) == N_TRAIN and all(lst.labels[0] == 1 and len(lst) == 4 for lst in lists)
    assert all(lst.docnos[0] == f"p{n}" and f"p{n}" not in lst.docnos[1:] for n, lst in enumerate(lists))
