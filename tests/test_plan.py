"""The capacity planner (``workbench plan``): the arithmetic, its inputs, one real measurement of a
tiny random cross-encoder on DL19 pairs, and the command end to end with given throughputs."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.cli import main
from workbench.core.errors import WorkbenchError
from workbench.engines import plan as planner
from workbench.engines.plan import (Throughput, Transfer, Workload, format_duration, given_throughput,
                                    parse_pairs, parse_workers, plan)

WORDS = "what is the a of in to and for do does how why when who passage query answer".split()


def _measured(stage: str, unit: str, rate: float) -> Throughput:
    return Throughput(stage, unit, rate, True, "measured: test")


# ----------------------------------------------------------------------------- arithmetic


def test_plan_rows_follow_the_formula():
    workloads = [Workload("rerank", 1000, "pairs"), Workload("bm25", 60, "queries")]
    throughputs = [_measured("rerank", "pairs", 10.0), given_throughput("bm25", "queries", 2.0)]
    transfers = [Transfer("rerank", 100.0, 8.0, "test")]
    table = plan(workloads, throughputs, [1, 4], price_per_worker_hour=2.0, overhead_factor=1.5, startup_s=5.0,
                 transfers=transfers)
    assert list(zip(table["stage"], table["workers"])) == [("rerank", 1), ("rerank", 4), ("bm25", 1), ("bm25", 4)]
    rows = table.set_index(["stage", "workers"])
    assert rows.loc[("rerank", 1), "wall_s"] == pytest.approx(1000 / 10 * 1.5 + 5)  # 155 s
    assert rows.loc[("rerank", 4), "wall_s"] == pytest.approx(1000 / 40 * 1.5 + 5)  # 42.5 s
    assert rows.loc[("rerank", 4), "worker_hours"] == pytest.approx(4 * 42.5 / 3600)
    assert rows.loc[("rerank", 4), "cost"] == pytest.approx(4 * 42.5 / 3600 * 2.0)
    assert rows.loc[("rerank", 1), "wall"] == "2 min 35 s"
    assert rows.loc[("rerank", 1), "bytes_per_item"] == 108.0
    assert rows.loc[("rerank", 1), "data_gb"] == pytest.approx(1000 * 108 / 1e9)
    assert rows.loc[("bm25", 1), "wall_s"] == pytest.approx(60 / 2 * 1.5 + 5)
    assert math.isnan(rows.loc[("bm25", 1), "bytes_per_item"])  # no Transfer declared for it
    # given vs measured is carried into every row
    assert set(rows.xs("rerank")["throughput"]) == {"measured"}
    assert set(rows.xs("bm25")["throughput"]) == {"given"}
    text = planner.format_plan(table)
    assert "measured" in text and "given" in text and "1,000 pairs" in text


def test_defaults_are_the_named_ray_constants():
    table = plan([Workload("rerank", 100, "pairs")], [_measured("rerank", "pairs", 1.0)], [1])
    expected = 100 / 1.0 * planner.RAY_OVERHEAD_FACTOR + planner.RAY_STARTUP_S
    assert table["wall_s"].iloc[0] == pytest.approx(expected)


def test_format_duration():
    assert format_duration(4.24) == "4.2 s"
    assert format_duration(45) == "45 s"
    assert format_duration(750) == "12 min 30 s"
    assert format_duration(64 * 3600 + 38 * 60 + 10) == "64 h 38 min"
    assert format_duration(3599) == "1 h 00 min"


@pytest.mark.parametrize("text, pairs", [("6980x1000", 6_980_000), ("6980X1000", 6_980_000), ("12 * 3", 36),
                                         ("6980000", 6_980_000), (" 6_980_000 ", 6_980_000)])
def test_parse_pairs(text, pairs):
    assert parse_pairs(text) == pairs


@pytest.mark.parametrize("text", ["", "abc", "6980x", "x1000", "0x1000", "-5", "1.5x2", "6980x1000x2", "0"])
def test_parse_pairs_rejects(text):
    with pytest.raises(WorkbenchError, match="--pairs"):
        parse_pairs(text)


def test_parse_workers():
    assert parse_workers("1,8,32,128") == [1, 8, 32, 128]
    assert parse_workers("4") == [4]
    for bad in ("", "0,8", "a,b", "1.5"):
        with pytest.raises(WorkbenchError, match="--workers"):
            parse_workers(bad)


def test_plan_errors():
    rerank = [Workload("rerank", 10, "pairs")]
    with pytest.raises(WorkbenchError, match="no throughput for stage 'rerank'"):
        plan(rerank, [], [1])
    with pytest.raises(WorkbenchError, match="passages/s"):
        plan(rerank, [_measured("rerank", "passages", 1.0)], [1])
    with pytest.raises(WorkbenchError, match="workers"):
        plan(rerank, [_measured("rerank", "pairs", 1.0)], [0])
    with pytest.raises(WorkbenchError, match="overhead"):
        plan(rerank, [_measured("rerank", "pairs", 1.0)], [1], overhead_factor=0)
    with pytest.raises(WorkbenchError, match="throughput"):
        plan(rerank, [_measured("rerank", "pairs", 0.0)], [1])
    for bad in (0, -3, float("nan"), float("inf")):
        with pytest.raises(WorkbenchError, match="positive"):
            given_throughput("rerank", "pairs", bad)
    assert given_throughput("rerank", "pairs", 50).source == "given"


# ----------------------------------------------------------------------------- on the real data


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-ce", WORDS, characters=True, num_labels=1)


def test_measure_tiny_cross_encoder_on_dl19_pairs(tiny_cross_encoder, data_dir):
    import torch

    from workbench.models.devices import available_cpus

    threads = torch.get_num_threads()
    measured = planner.measure_reranker(f"cross-encoder:{tiny_cross_encoder}", sample_pairs=64, data_dir=data_dir,
                                        warmup_pairs=8, threads=1)
    assert torch.get_num_threads() == threads  # the one-thread setting does not leak
    assert measured.stage == "rerank" and measured.unit == "pairs" and measured.measured
    assert measured.per_worker_per_s > 0 and math.isfinite(measured.per_worker_per_s)
    assert "1 thread" in measured.how and "64 DL19 official-BM25 pairs" in measured.how
    assert measured.threads == 1 and measured.load_s > 0 and "model load" in measured.how
    # by default a worker's thread count is the driver's (as on Ray), or the spec's threads=N
    assert planner.worker_threads() == min(threads, available_cpus())
    assert planner.worker_threads("cross-encoder:x,threads=3") == 3 and planner.worker_threads(None, 2) == 2
    queries, passages = planner.candidate_pairs(data_dir, 64)
    assert len(queries) == len(passages) == 64 and len(set(queries)) == 1  # one query's 64 candidates
    transfer = planner.pair_transfer(data_dir)
    assert 100 < transfer.bytes_in < 2000 and transfer.bytes_out == 8


class _SlowToStart:
    """A reranker that takes 1.5 s to load and 1.5 s more on its first call, then scores a pair in 0.5 ms."""

    LOAD_S = FIRST_CALL_S = 1.5

    def __init__(self):
        time.sleep(self.LOAD_S)
        self.calls = 0

    def score_pairs(self, queries, passages):
        self.calls += 1
        time.sleep((self.FIRST_CALL_S if self.calls == 1 else 0.0) + 0.0005 * len(passages))
        return np.zeros(len(passages))


def test_load_and_first_call_are_not_in_the_rate(data_dir, monkeypatch):
    """The rate is the steady state: model load is timed apart (reported as start-up) and the
    slow first call is the untimed warm-up."""
    from workbench.rerankers import registry

    monkeypatch.setattr(registry, "get_reranker", lambda spec, context=None, **options: _SlowToStart())
    planner.measure._load.cache_clear()
    try:
        measured = planner.measure_reranker("tfidf:slow-to-start", sample_pairs=64, warmup_pairs=8,
                                            threads=1, data_dir=data_dir)
    finally:
        planner.measure._load.cache_clear()
    assert measured.load_s >= _SlowToStart.LOAD_S
    # steady state ~2,000 pairs/s; 3 s of load and first call inside the timing would give < 300
    assert measured.per_worker_per_s > 800, measured.how
    assert f"model load {measured.load_s:.1f} s (start-up, not in the rate)" in measured.how
    table = plan([Workload("rerank", 10_000, "pairs")], [measured], [1])
    assert table["load_s"].iloc[0] == measured.load_s
    assert table["wall_s"].iloc[0] == pytest.approx(10_000 / measured.per_worker_per_s * planner.RAY_OVERHEAD_FACTOR
                                                    + planner.RAY_STARTUP_S)
    assert "load s" in planner.format_plan(table)


def test_cli_plan_end_to_end_with_given_throughputs(tiny_cross_encoder, data_dir, tmp_path, capsys):
    encoder = write_tiny_bert(tmp_path / "tiny-dense", WORDS, head="base", characters=True)
    out = tmp_path / "plan.json"
    status = main(["plan", "--data-dir", str(data_dir), "--pairs", "6980x1000",
                   "--reranker", f"cross-encoder:{tiny_cross_encoder}", "--throughput", "120",
                   "--encoder", f"dense:{encoder},backend=torch", "--encode-throughput", "300",
                   "--bm25-throughput", "40", "--workers", "1,8", "--price-per-hour", "0.1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "Assumptions:" in printed and "6,980,000 pairs" in printed and "an assumption, not measured" in printed
    assert "measured by bench/bench_ray.py" in printed
    saved = json.loads(out.read_text())
    rows = {(row["stage"], row["workers"]): row for row in saved["rows"]}
    assert set(rows) == {(s, w) for s in ("rerank", "encode", "bm25") for w in (1, 8)}
    assert all(row["throughput"] == "given" for row in rows.values())
    overhead, startup = planner.RAY_OVERHEAD_FACTOR, planner.RAY_STARTUP_S
    assert rows[("rerank", 8)]["wall_s"] == pytest.approx(6_980_000 / (8 * 120) * overhead + startup)
    assert rows[("encode", 1)]["items"] == 8_841_823
    assert rows[("encode", 1)]["cost"] == pytest.approx(rows[("encode", 1)]["wall_s"] / 3600 * 0.1)
    transfers = {t["stage"]: t for t in saved["transfers"]}
    assert transfers["encode"]["bytes_out"] == 32 * 4  # the tiny encoder's 32-dim float32 vector
    assert transfers["bm25"]["bytes_out"] > 1000 * 8  # 1000 (docno, score) pairs


def test_cli_overrides_and_skipped_stages(tiny_cross_encoder, data_dir, capsys):
    status = main(["plan", "--data-dir", str(data_dir), "--pairs", "100", "--reranker", "anything",
                   "--throughput", "10", "--queries", "0", "--workers", "2", "--overhead", "2", "--startup-s", "0"])
    printed = capsys.readouterr().out
    assert status == 0
    assert not any(line.lstrip().startswith("bm25") for line in printed.splitlines())  # no bm25 row
    assert "overhead factor 2 and start-up 0 s: given" in printed
    assert " 100 pairs" in printed and "10 s" in printed  # 100 / (2 * 10) * 2 + 0 = 10 s


def test_cli_cuda_without_gpu_needs_a_given_throughput(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: its throughput can be measured")
    status = main(["plan", "--reranker", "dense-minilm", "--device", "cuda", "--encoder", "dense-minilm"])
    error = capsys.readouterr().err
    assert status == 2
    assert "cannot measure GPU throughput here" in error and "--throughput" in error
    assert "--encode-throughput" in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--pairs", "6980y1000"], "bad --pairs"),
    (["--workers", "0"], "bad --workers"),
    (["--encode-throughput", "5"], "needs --encoder"),
    (["--throughput", "-1"], "positive"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys):
    status = main(["plan", "--reranker", "dense-minilm", *argv])
    error = capsys.readouterr().err
    assert status == 2 and message in error and len(error.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- training plans (plan --train)


def _training_config(tmp_path, backbone: str) -> str:
    path = tmp_path / "tiny-train.toml"
    path.write_text(f'name = "tiny"\nbackbone = "{backbone}"\nloss = "listwise"\nfolds = ["dl19"]\nlimit_queries = 6\n'
                    'epochs = 2\nlists_per_batch = 3\nlist_size = 5\nmax_length = 48\nprecision = "fp32"\n'
                    'validation = 0.3\n', encoding="utf-8")
    return str(path)


def test_cli_training_plan_with_a_given_throughput(data_dir, tmp_path, capsys):
    from workbench.train.config import TrainConfig
    from workbench.train.cost import FORWARD_SPEEDUP, config_folds

    path = _training_config(tmp_path, "not-loaded")  # a given throughput loads no model
    out = tmp_path / "train-plan.json"
    assert main(["plan", "--data-dir", str(data_dir), "--train", path, "--throughput", "10", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    (fold,) = config_folds(TrainConfig.from_file(path), data_dir, None)  # the lists as training builds them
    (row,) = saved["folds"]
    steps = math.ceil(len(fold.train) / 3)
    pairs = sum(min(len(lst), 5) for lst in fold.train)
    validation = sum(len(lst) for lst in fold.validation)
    assert (row["train_lists"], row["steps_per_epoch"], row["total_steps"]) == (len(fold.train), steps, 2 * steps)
    assert row["pairs_per_epoch"] == pairs and row["pairs_per_step"] == pytest.approx(pairs / steps)
    assert saved["wall_s"] == pytest.approx(2 * pairs / 10 + 2 * validation / (10 * FORWARD_SPEEDUP))
    assert "given: 10 pairs/s" in printed and f"{2 * steps} in all" in printed and "wall time:" in printed


def test_training_plan_measured_with_the_real_trainer(data_dir, tmp_path, monkeypatch):
    from workbench.train.config import TrainConfig
    from workbench.train.cost import training_plan

    backbone = write_tiny_bert(tmp_path / "tiny-train", WORDS, head="base", characters=True)
    monkeypatch.chdir(tmp_path)
    result = training_plan(TrainConfig.from_file(_training_config(tmp_path, str(backbone))), data_dir, steps=2)
    timing = result.timing
    assert timing.source.startswith("measured here:") and "2 steps after 1 warm-up" in timing.source
    assert timing.seconds_per_step > 0 and 0 < timing.pairs_per_step <= 3 * 5  # 3 lists of at most 5 candidates
    assert timing.pairs_per_s == pytest.approx(timing.pairs_per_step / timing.seconds_per_step)
    assert result.wall_s > 0 and "wall time:" in result.text()
    assert not (tmp_path / "models").exists()  # nothing written for the user


def test_training_plan_says_what_it_cannot_measure(data_dir, tmp_path):
    from workbench.train.config import TrainConfig
    from workbench.train.cost import training_plan

    result = training_plan(TrainConfig.from_file(_training_config(tmp_path, "no/such-model-offline")), data_dir)
    assert result.timing is None and result.wall_s is None and result.folds[0].total_steps > 0
    assert any("give --throughput" in note for note in result.notes)
