"""End to end on the real data: a real Lucene index, BM25, TF-IDF reranking, ranx, the leaderboard."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.core.files import sha256_file
from workbench.experiment.store import manifest_path_of
from workbench.experiment import FOUNDATION_SYSTEMS as DEFAULT_SYSTEMS
from workbench.report.leaderboard import read_leaderboard

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_experiment(workbench):
    return workbench.run_experiment(["dl19", "dl20"], DEFAULT_SYSTEMS)


def test_leaderboard_has_one_row_per_dataset_and_system(workbench, first_experiment):
    board = read_leaderboard(workbench.leaderboard)
    assert len(board) == 8 * 3  # slices: all, qa, exploratory
    assert list(board.slice[:3]) == ["all", "qa", "exploratory"]
    board = board[board.slice == "all"]
    assert set(zip(board.dataset, board.system)) == {(d, s) for d in ("dl19", "dl20") for s in DEFAULT_SYSTEMS}
    for column in ("mrr@10", "ndcg@5", "ndcg@10", "recall@100", "map", "n_queries", "wall_time_s",
                   "queries_per_s", "run_path", "fingerprint"):
        assert column in board.columns
    official = board.set_index(["dataset", "system"]).loc[("dl19", "official-bm25")]
    assert round(official["ndcg@10"], 4) == 0.5058
    assert official["n_queries"] == 43
    dl20 = board[board.dataset == "dl20"]
    assert (dl20.n_queries == 54).all() and (dl20.n_unjudged_excluded == 146).all()


def test_mini_collection_bm25_is_a_real_lucene_run(workbench, first_experiment):
    stored = workbench.produce("bm25-mini", "dl19")
    run = stored.run
    assert run.qid.nunique() == 43
    assert run.groupby("qid").size().max() == 1000
    assert stored.manifest["config"]["k1"] == 0.9 and stored.manifest["config"]["b"] == 0.4
    assert "not comparable" in stored.manifest["candidates"]
    # Higher than zero but not absurd: the mini collection is made of judged pools.
    ndcg = first_experiment.set_index(["dataset", "system", "slice"]).loc[("dl19", "bm25-mini", "all"), "ndcg@10"]
    assert 0.3 < ndcg < 0.8


def test_manifest_records_config_versions_timings_and_checksum(workbench, first_experiment):
    stored = workbench.produce("official-bm25+tfidf", "dl19")
    manifest = json.loads(manifest_path_of(stored.path).read_text())
    assert manifest["sha256"] == sha256_file(stored.path)
    assert manifest["config"]["reranker"] == "tfidf" and manifest["config"]["depth"] == 100
    assert manifest["candidates"] == "official full-collection run"
    assert {"pyserini", "ranx", "scikit-learn", "python"} <= set(manifest["versions"])
    assert manifest["pairs"] == 4300 and manifest["wall_time_s"] > 0
    assert manifest["qrels"]["relevance_level"] == 2 and len(manifest["qrels"]["sha256"]) == 64
    lines = stored.path.read_text().splitlines()
    assert len(lines) == 4300 and all(len(line.split()) == 6 for line in lines)


def test_second_run_reuses_everything_and_replaces_rows(workbench, first_experiment):
    index_before = workbench.index(workbench.dataset("dl19"))
    again = workbench.run_experiment(["dl19", "dl20"], DEFAULT_SYSTEMS)
    board = read_leaderboard(workbench.leaderboard)
    assert len(board) == 24  # replaced, not duplicated
    for system in DEFAULT_SYSTEMS:
        stored = workbench.produce(system, "dl19")
        assert stored.reused
        manifest = json.loads(manifest_path_of(stored.path).read_text())
        assert manifest["last_invocation"]["reused"] and manifest["last_invocation"]["pairs_scored"] == 0
    pd.testing.assert_frame_equal(again[["mrr@10", "ndcg@10", "p_mrr@10"]],
                                  first_experiment[["mrr@10", "ndcg@10", "p_mrr@10"]])
    from workbench.first_stage.lucene import build_index

    assert not build_index(workbench.collection(workbench.dataset("dl19"))).built
    assert index_before.path.is_dir()


def test_changed_candidates_invalidate_the_reranked_run(workbench, first_experiment, tmp_path):
    stored = workbench.produce("official-bm25", "dl20")
    custom = tmp_path / "custom.trec"
    custom.write_text("\n".join(stored.path.read_text().splitlines()[:500]) + "\n")
    reranked = workbench.produce(f"run:{custom}+tfidf", "dl20")
    assert not reranked.reused and reranked.manifest["pairs_scored"] == 0  # every pair already cached
    assert reranked.manifest["cache_hits"] == reranked.manifest["pairs"] == 500
