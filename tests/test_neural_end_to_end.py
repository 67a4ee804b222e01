"""Neural reranking on the real data through the score cache: re-running scores 0 new pairs."""
from __future__ import annotations

import pytest

from workbench.experiment import Workbench

pytestmark = pytest.mark.slow


def test_dense_rerank_of_official_bm25_uses_the_score_cache(data_dir, session_cache, tmp_path):
    bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "lb.csv",
                      rerank_depth=10, progress=False)
    system = "official-bm25+dense-minilm"
    first = bench.produce(system, "dl19")
    assert first.manifest["pairs"] == 430 and first.manifest["pairs_scored"] == 430
    assert first.manifest["model_ids"]["pooling"] == "masked_mean"
    # The stored run is gone (a new checkout, a changed depth...): the scores are not.
    first.path.unlink()
    again = bench.produce(system, "dl19")
    assert not again.reused
    assert again.manifest["pairs_scored"] == 0 and again.manifest["cache_hits"] == 430
    assert again.manifest["sha256"] == first.manifest["sha256"]
    # Reranking the top-10 by MiniLM changes the order but not the set: recall@10 stays, NDCG@10 moves.
    base = bench.evaluate(bench.produce("official-bm25", "dl19"), "dl19").per_query
    ours = bench.evaluate(again, "dl19").per_query
    assert (ours["ndcg@10"] != base["ndcg@10"]).any()
