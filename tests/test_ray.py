"""The Ray engine: runs computed on a local Ray cluster equal the local runs byte for byte, the
score cache is reused, a killed worker and an interrupted driver still end in the same run.

One local cluster (``ray.init(num_cpus=2)``) serves the whole module; tiny random models keep
it fast. Skipped with a reason where Ray is not installed (``pip install -e '.[ray]'``).
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_models import write_tiny_bert  # noqa: E402

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'; make setup installs it)")

from workbench.core.errors import WorkbenchError  # noqa: E402
from workbench.data.collection import Collection  # noqa: E402
from workbench.engines.ray import ModelRecipe, PassageEncoder, RayEngine, close_pool  # noqa: E402
from workbench.experiment import Workbench  # noqa: E402
from workbench.models.vector_cache import VectorCache  # noqa: E402

WORDS = ("what is the a of in to and for do does how why when who fish water war world united states "
         "passage query answer long short text words some more relevant").split()


@pytest.fixture(scope="module")
def cluster(session_cache):
    """A local two-CPU Ray cluster for the module (workers inherit this process's environment).

    Started as RayEngine.start starts one: with Ray's SIGSEGV handler off, or the JVM that earlier
    tests started in this process dies at its next Lucene search (see leave_signals_to_the_jvm)."""
    from workbench.engines.ray import leave_signals_to_the_jvm

    leave_signals_to_the_jvm()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ray-models")
    return {"cross": write_tiny_bert(root / "cross", WORDS, characters=True, num_labels=1),
            "bi": write_tiny_bert(root / "bi", WORDS, head="base", characters=True, seed=3)}


def _workbench(data_dir, root: Path, cache: Path, monkeypatch, engine=None, depth=30) -> Workbench:
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    return Workbench(data_dir=data_dir, runs_dir=root, leaderboard=root / "leaderboard.csv", progress=False,
                     rerank_depth=depth, engine=engine)


@pytest.fixture(scope="module")
def local_cross_encoder_run(models, data_dir, tmp_path_factory):
    """The cross-encoder's run computed here (the reference every Ray run must equal)."""
    root = tmp_path_factory.mktemp("local-cross-encoder")
    with pytest.MonkeyPatch.context() as patch:
        return _workbench(data_dir, root / "runs", root / "cache", patch).produce(
            f"official-bm25+{cross_encoder(models)}", "dl19")


def _sha(stored) -> str:
    return stored.manifest["sha256"]


def cross_encoder(models) -> str:
    # torch, so the scores depend on batch composition in the last bits: the chunks must match
    return f"cross-encoder:{models['cross']},backend=torch,max_length=64"


def bi_encoder(models) -> str:
    return f"dense:{models['bi']},pooling=masked_mean,backend=torch,max_length=64"


@pytest.mark.data
def test_reranking_on_ray_is_the_local_run_byte_for_byte(cluster, models, data_dir, tmp_path, monkeypatch,
                                                         local_cross_encoder_run):
    system, local = f"official-bm25+{cross_encoder(models)}", local_cross_encoder_run
    engine = RayEngine(workers=2, progress=False)
    on_ray = _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch, engine).produce(system, "dl19")
    assert _sha(on_ray) == _sha(local)
    assert on_ray.manifest["config_fingerprint"] == local.manifest["config_fingerprint"]
    assert local.manifest["engine"] == "local"
    assert on_ray.manifest["engine"] == "ray" and on_ray.manifest["workers"] == 2
    (stage,) = on_ray.manifest["engine_stages"]
    assert stage["stage"] == "rerank" and stage["items"] == on_ray.manifest["pairs_scored"] == 43 * 30
    assert all(worker["pairs_per_s"] > 0 for worker in stage["per_worker"].values())

    # the score cache the driver wrote is reused: a second computation scores nothing
    again = _workbench(data_dir, tmp_path / "ray-again", tmp_path / "cache-ray", monkeypatch,
                       RayEngine(workers=2, progress=False)).produce(system, "dl19")
    assert _sha(again) == _sha(local)
    assert again.manifest["pairs_scored"] == 0 and again.manifest["cache_hits"] == 43 * 30
    assert again.manifest["workers"] == 0 and again.manifest["engine_stages"] == []


@pytest.mark.data
def test_a_vector_reranker_encodes_its_passages_on_ray_in_the_local_groups(cluster, models, data_dir, tmp_path,
                                                                          monkeypatch):
    system = f"official-bm25+{bi_encoder(models)}"
    local = _workbench(data_dir, tmp_path / "local", tmp_path / "cache-local", monkeypatch).produce(system, "dl19")
    bench = _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch,
                       RayEngine(workers=2, progress=False))
    on_ray = bench.produce(system, "dl19")
    assert _sha(on_ray) == _sha(local)
    (stage,) = on_ray.manifest["engine_stages"]
    assert stage["stage"] == "encode" and stage["items"] == on_ray.manifest["passages_encoded"] > 0


@pytest.mark.data
def test_one_pool_serves_every_stage_of_an_experiment_and_keeps_its_models(cluster, models, data_dir, tmp_path,
                                                                           monkeypatch):
    system = f"official-bm25+{bi_encoder(models)}"
    local = _workbench(data_dir, tmp_path / "local", tmp_path / "cache-local", monkeypatch)
    close_pool()  # earlier tests' pool (this process keeps one while its settings hold)
    engine = RayEngine(workers=2, progress=False)
    bench = _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch, engine)
    stages = []
    for dataset in ("dl19", "dl20"):
        on_ray = bench.produce(system, dataset)
        assert _sha(on_ray) == _sha(local.produce(system, dataset))
        (stage,) = on_ray.manifest["engine_stages"]
        stages.append(stage)
    first, second = stages
    assert first["pool"]["started"] and first["pool"]["start_s"] > 0
    # DL20's stage found the pool running and its workers holding the model: no start-up at all
    assert not second["pool"]["started"] and second["pool"]["start_s"] == 0 and second["pool"]["stage_of_pool"] == 2
    assert all(worker["init_s"] == 0 for worker in second["per_worker"].values())
    assert set(second["per_worker"]) <= set(first["per_worker"])


@pytest.mark.data
def test_a_killed_worker_is_replaced_and_the_run_is_unchanged(cluster, models, data_dir, tmp_path, monkeypatch,
                                                               local_cross_encoder_run):
    system, local = f"official-bm25+{cross_encoder(models)}", local_cross_encoder_run
    killed: list[int] = []

    def kill_first_worker(event):
        if not killed:  # SIGKILL the worker that returned the first chunk, while it has more to do
            pid = int(event["worker"].rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    engine = RayEngine(workers=2, progress=False, on_result=kill_first_worker)
    on_ray = _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch, engine).produce(system, "dl19")
    assert killed, "no worker was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it is gone
    assert _sha(on_ray) == _sha(local)
    assert on_ray.manifest["pairs_scored"] == 43 * 30
    (stage,) = on_ray.manifest["engine_stages"]
    assert str(killed[0]) in " ".join(stage["per_worker"])  # the killed worker's chunk is in the run


@pytest.mark.data
def test_an_interrupted_driver_resumes_from_the_score_cache(cluster, models, data_dir, tmp_path, monkeypatch,
                                                            local_cross_encoder_run):
    system, local = f"official-bm25+{cross_encoder(models)}", local_cross_encoder_run
    received: list[int] = []

    def interrupt_after_two(event):
        received.append(event["index"])
        if len(received) == 2:
            raise KeyboardInterrupt

    engine = RayEngine(workers=2, progress=False, on_result=interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch, engine).produce(system, "dl19")
    resumed = _workbench(data_dir, tmp_path / "ray", tmp_path / "cache-ray", monkeypatch,
                         RayEngine(workers=2, progress=False)).produce(system, "dl19")
    assert _sha(resumed) == _sha(local)
    assert 0 < resumed.manifest["cache_hits"] < 43 * 30  # the two chunks taken in before the interrupt
    assert resumed.manifest["pairs_scored"] + resumed.manifest["cache_hits"] == 43 * 30


@pytest.mark.data
@pytest.mark.slow
def test_bm25_on_ray_searches_topic_shards_and_gives_the_local_run(cluster, data_dir, tmp_path, monkeypatch,
                                                                   session_cache):
    # one Lucene index (built once per test session), two runs directories
    local = Workbench(data_dir=data_dir, runs_dir=tmp_path / "local", progress=False).produce("bm25-mini", "dl20")
    engine = RayEngine(workers=2, progress=False, topics_per_shard=20)
    on_ray = Workbench(data_dir=data_dir, runs_dir=tmp_path / "ray", progress=False, engine=engine).produce(
        "bm25-mini", "dl20")
    assert _sha(on_ray) == _sha(local)
    (stage,) = on_ray.manifest["engine_stages"]
    assert stage["stage"] == "bm25" and stage["items"] == 54 and stage["workers"] == 2
    # every worker is up before the first shard is dealt: both search (3 shards of 20, 20, 14 topics)
    assert stage["workers_busy"] == 2


@pytest.mark.data
def test_planned_groups_reproduce_the_sequential_vector_cache(models, data_dir, tmp_path, monkeypatch):
    """VectorCache.plan + store (what the Ray path does) leaves the vectors sequential get calls would."""
    from workbench.rerankers.registry import get_reranker

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    texts = list(Collection(Path(data_dir) / "collection.tsv").texts.values())[:300]
    calls = [texts[0:120], texts[60:200], texts[150:300] + texts[:10]]
    encoder = get_reranker(bi_encoder(models)).encoder
    sequential = VectorCache(encoder.fingerprint, "dense", root=tmp_path / "sequential")
    for call in calls:
        sequential.get(list(dict.fromkeys(call)), encoder.encode_passages_uncached, chunk=64)
    planned = VectorCache(encoder.fingerprint, "dense", root=tmp_path / "planned")
    groups = planned.plan([list(dict.fromkeys(call)) for call in calls], chunk=64)
    assert [len(g) for g in groups] == [64, 56, 64, 16, 64, 36]
    for group in reversed(groups):  # stored in any order, as Ray returns them
        planned.store(group, encoder.encode_passages_uncached(group))
    assert np.array_equal(planned.get(texts, lambda _: pytest.fail("nothing should be encoded")),
                          sequential.get(texts, lambda _: pytest.fail("nothing should be encoded")))


def test_a_worker_refuses_a_model_that_differs_from_the_drivers(models, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    recipe = ModelRecipe(f"cross-encoder:{models['cross']},backend=torch", None, None, "cpu", "reranker", "0" * 64)
    with pytest.raises(WorkbenchError, match="fingerprint"):
        recipe.build()


def test_bad_engine_settings_get_one_line_errors():
    with pytest.raises(WorkbenchError, match="at least 1"):
        RayEngine(workers=0)
    from workbench.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--engine", "spark"])


@pytest.mark.data
def test_eval_engine_ray_from_the_command_line(cluster, data_dir, tmp_path, monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    status = main(["eval", "--data-dir", str(data_dir), "--runs-dir", str(runs), "--datasets", "dl19",
                   "--systems", "official-bm25+tfidf", "--depth", "20", "--engine", "ray", "--ray-workers", "2",
                   "--quiet"])
    assert status == 0
    (manifest,) = [json.loads(p.read_text()) for p in (runs / "dl19").glob("official-bm25+tfidf-*.manifest.json")]
    assert manifest["engine"] == "ray" and manifest["engine_stages"][0]["stage"] == "rerank"
    assert "official-bm25+tfidf" in capsys.readouterr().out
    assert main(["eval", "--ray-address", "auto", "--datasets", "dl19", "--quiet"]) == 2


@pytest.mark.data
def test_a_group_encoded_in_parts_at_batch_boundaries_is_the_whole_group_bit_for_bit(data_dir, tmp_path,
                                                                                    monkeypatch):
    """SPLADE-tiny in torch: its weights move in the last bits with the batch composition, so a
    group split anywhere else would differ; split at its own batch boundaries it does not."""
    from workbench.engines.ray import _assemble
    from workbench.models.batching import contiguous_parts
    from workbench.rerankers.registry import get_reranker

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    texts = list(Collection(Path(data_dir) / "collection.tsv").texts.values())[1000:1200]
    encoder = get_reranker("splade-tiny").encoder
    encoder.batch_size = 16  # several batches per part
    whole = encoder.encode_passages_uncached(texts)
    plan = encoder.passage_batch_plan(texts)
    for parts in (2, 3, 7):
        runs = contiguous_parts(plan, parts)
        assert sorted(np.concatenate(runs).tolist()) == list(range(len(texts)))
        pieces = [(run, encoder.encode_passages_uncached([texts[i] for i in run])) for run in runs]
        assembled = _assemble(pieces[::-1], len(texts))  # parts arrive in any order
        assert (assembled != whole).nnz == 0


def test_contiguous_parts_cut_at_batch_boundaries():
    from workbench.models.batching import contiguous_parts

    batches = [np.arange(i * 4, i * 4 + 4) for i in range(5)] + [np.array([20, 21])]
    runs = contiguous_parts(batches, 3)
    assert [len(run) for run in runs] == [8, 8, 6]
    assert np.array_equal(np.concatenate(runs), np.arange(22))
    assert sorted(len(run) for run in contiguous_parts(batches[:2], 4)) == [0, 0, 4, 4]  # fewer batches than parts
    assert contiguous_parts([], 2)[0].size == 0


@pytest.mark.data
@pytest.mark.slow
def test_a_jvm_already_running_survives_the_engine_starting_ray(data_dir, session_cache, tmp_path):
    """Pyserini's JVM first, then RayEngine.start in the same process, then Lucene searches: Ray's
    own SIGSEGV handler would turn HotSpot's deliberate signals into a crash (it did, in CI)."""
    import subprocess

    script = tmp_path / "jvm_then_ray.py"
    script.write_text(f"""
from workbench.data.collection import Collection
from workbench.data.datasets import get_dataset
from workbench.engines.ray import RayEngine
from workbench.first_stage.bm25 import BM25Config, BM25Retriever
from workbench.first_stage.lucene import shared_index

dataset = get_dataset("dl20", {str(data_dir)!r})
retriever = BM25Retriever(shared_index(Collection(dataset.collection_path), {{}}).path, BM25Config(threads=2))
retriever.search(dataset.judged_topics)
RayEngine(init_options={{"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024}}).start()
for _ in range(20):
    retriever.search(dataset.judged_topics)
print("searched after ray.init")
""")
    env = {key: value for key, value in os.environ.items() if key != "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"}
    result = subprocess.run([sys.executable, "-X", "faulthandler", str(script)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "searched after ray.init" in result.stdout


def test_workers_run_the_drivers_thread_count_and_the_default_pool_fits_it(cluster, models, tmp_path, monkeypatch):
    """Some kernels' last bits depend on the thread count, so a worker's model runs the driver's;
    the default pool then has one worker per that many CPUs (2 CPUs here)."""
    from workbench.rerankers import get_reranker

    assert RayEngine(threads=2)._pool("cpu") == (1, 0.0)
    assert RayEngine(threads=1)._pool("cpu") == (2, 0.0)
    assert RayEngine(workers=2, threads=2)._pool("cpu") == (2, 0.0)  # asked for: threads shared, results the same
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    spec = bi_encoder(models)
    bound = RayEngine(threads=3).bind(spec, None, "cpu", get_reranker(spec))
    assert bound.scorer.threads == bound.encoder.threads == 3
    import torch

    before = torch.get_num_threads()
    try:
        assert PassageEncoder(bound.encoder, cpus=1.0).threads == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)  # the component set this process's threads, as it does a worker's
