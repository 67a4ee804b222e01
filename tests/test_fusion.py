"""Fusion systems via ranx fuse, checked against a direct computation."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_rrf_of_two_official_runs_matches_the_formula(workbench):
    a, b = (workbench.produce(name, "dl19").run for name in ("official-bm25", "official-tasb"))
    fused = workbench.produce("rrf[official-bm25|official-tasb]", "dl19")
    assert fused.manifest["config"]["components"] == ["official-bm25", "official-tasb"]
    qid = a.qid.iloc[0]
    expected = {}
    for run in (a, b):
        for docno, rank in run[run.qid == qid][["docno", "rank"]].itertuples(index=False):
            expected[docno] = expected.get(docno, 0.0) + 1.0 / (60 + rank)
    ours = fused.run[fused.run.qid == qid].set_index("docno")["score"]
    assert set(ours.index) == set(expected)
    for docno, score in expected.items():
        assert ours[docno] == pytest.approx(score, abs=1e-6)
    evaluation = workbench.evaluate(fused, "dl19")
    assert evaluation.means["ndcg@10"] > 0.5  # BM25 0.5058, TAS-B 0.7172: fusion sits well above BM25


def test_combsum_and_reuse(workbench):
    first = workbench.produce("combsum[official-bm25|official-tasb]", "dl19")
    again = workbench.produce("combsum[official-bm25|official-tasb]", "dl19")
    assert again.reused and again.manifest["sha256"] == first.manifest["sha256"]
    assert first.run.groupby("qid").score.max().max() <= 2.0 + 1e-9  # two min-max normalised runs summed
