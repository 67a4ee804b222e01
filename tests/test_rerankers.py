"""The rerank protocol, the registry, TF-IDF, and the score cache (resume, no re-scoring)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import pytest

from workbench.data.collection import Collection
from workbench.core.errors import WorkbenchError
from workbench.rerankers.rerank import rerank_run
from workbench.rerankers import REGISTRY, RerankContext, Reranker, get_reranker, parse_reranker_spec, register
from workbench.rerankers.score_cache import ScoreCache

PASSAGES = {
    "p1": "goldfish grow to the size of their tank and can live for decades",
    "p2": "the stock market closed higher on tuesday",
    "p3": "goldfish are freshwater fish",
    "p4": "a recipe for tomato soup with basil",
}


@pytest.fixture
def collection(tmp_path):
    path = tmp_path / "collection.tsv"
    path.write_text("".join(f"{pid}\t{text}\n" for pid, text in PASSAGES.items()))
    return Collection(path)


@pytest.fixture
def candidates():
    return pd.DataFrame({"qid": ["1"] * 4 + ["2"] * 2, "docno": ["p2", "p4", "p3", "p1", "p4", "p2"],
                         "score": [4.0, 3, 2, 1, 2, 1]}).pipe(lambda f: f.assign(rank=f.groupby("qid").cumcount() + 1))


@pytest.fixture
def topics():
    return pd.DataFrame({"qid": ["1", "2"], "query": ["do goldfish grow", "tomato soup recipe"]})


def test_parse_reranker_spec():
    assert parse_reranker_spec("tfidf") == ("tfidf", {})
    assert parse_reranker_spec("cross-encoder:org/model") == ("cross-encoder", {"model": "org/model"})
    assert parse_reranker_spec("dense:/m,pooling=cls") == ("dense", {"model": "/m", "pooling": "cls"})
    with pytest.raises(WorkbenchError, match="expected key=value"):
        parse_reranker_spec("dense:/m,cls")


def test_unknown_reranker():
    with pytest.raises(WorkbenchError, match="unknown reranker 'nope'; known rerankers: .*tfidf"):
        get_reranker("nope")


def test_tfidf_is_cosine_of_tfidf_vectors(collection):
    from sklearn.feature_extraction.text import TfidfVectorizer

    reranker = get_reranker("tfidf", RerankContext(collection=collection))
    scores = reranker.score("do goldfish grow", list(PASSAGES.values()))
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(list(PASSAGES.values()))
    q = vectorizer.transform(["do goldfish grow"]).toarray()[0]
    d = vectorizer.transform(list(PASSAGES.values())).toarray()
    expected = d @ q / (np.linalg.norm(d, axis=1) * np.linalg.norm(q))
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert scores.argmax() == 0 and scores[1] == 0
    pairs = reranker.score_pairs(["do goldfish grow"] * 4, list(PASSAGES.values()))
    np.testing.assert_allclose(pairs, scores, atol=1e-6)


def test_tfidf_needs_a_collection():
    with pytest.raises(WorkbenchError, match="needs a collection"):
        get_reranker("tfidf")


def test_rerank_orders_by_new_scores_and_uses_cache(collection, candidates, topics, tmp_path):
    reranker = get_reranker("tfidf", RerankContext(collection=collection))
    cache = ScoreCache(tmp_path / "scores.sqlite")
    run, stats = rerank_run(candidates, topics, collection, reranker, depth=3, cache=cache, progress=False)
    assert run[run.qid == "1"].docno.tolist()[0] == "p3"  # p1 was below depth 3
    assert "p1" not in set(run.docno)
    assert run[run.qid == "2"].docno.tolist() == ["p4", "p2"]
    assert (stats.pairs, stats.scored, stats.cache_hits) == (5, 5, 0)
    again, stats2 = rerank_run(candidates, topics, collection, reranker, depth=3, cache=cache, progress=False)
    assert (stats2.scored, stats2.cache_hits) == (0, 5)
    pd.testing.assert_frame_equal(run, again)


class CountingReranker(Reranker):
    """Word-overlap scores; fails after ``fail_after`` batches to simulate an interruption."""

    kind = "counting"

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.scored = 0
        self.fail_after = fail_after

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        words = set(query.split())
        return np.array([len(words & set(p.split())) for p in passages], dtype=float)

    def score_pairs(self, queries, passages):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.scored += len(passages)
        return super().score_pairs(queries, passages)

    @property
    def pairs_batch_size(self) -> int:
        return 2


def test_interrupted_rerank_resumes_where_it_stopped(collection, candidates, topics, tmp_path):
    cache = ScoreCache(tmp_path / "scores.sqlite")
    with pytest.raises(KeyboardInterrupt):
        rerank_run(candidates, topics, collection, CountingReranker(fail_after=2), depth=10, cache=cache,
                   progress=False)
    resumed = CountingReranker()
    _, stats = rerank_run(candidates, topics, collection, resumed, depth=10, cache=cache, progress=False)
    assert (stats.cache_hits, stats.scored, resumed.scored) == (4, 2, 2)


def test_a_new_reranker_plugs_in_through_the_registry(collection, candidates, topics):
    @register("test-overlap", help="word overlap (test)")
    def make(context, **options):
        return CountingReranker()

    try:
        reranker = get_reranker("test-overlap", RerankContext(collection=collection))
        run, _ = rerank_run(candidates, topics, collection, reranker, progress=False)
        assert run[run.qid == "1"].docno.iloc[0] in {"p1", "p3"}
    finally:
        REGISTRY.unregister("test-overlap")


def test_invalid_scores_are_rejected(collection, candidates, topics):
    class Broken(CountingReranker):
        def score(self, query, passages):
            return np.full(len(passages), np.nan)

    with pytest.raises(WorkbenchError, match="returned invalid scores"):
        rerank_run(candidates, topics, collection, Broken(), progress=False)


def test_collection_rejects_duplicates(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tx\nb\ty\na\tz\n")
    with pytest.raises(WorkbenchError, match=r"c.tsv:3: duplicate passage id 'a'"):
        Collection(path).texts


def test_system_grammar_splits_rerankers_and_fusions():
    from workbench.experiment import split_fusion, split_reranker
    from workbench.experiment.systems import default_baseline

    assert split_reranker("official-bm25+tfidf") == ("official-bm25", "tfidf")
    assert split_reranker("rrf[a|b+c]") is None
    assert split_reranker("rrf[a|b+c]+tfidf") == ("rrf[a|b+c]", "tfidf")
    assert split_fusion("rrf[a|b+c]") == ("rrf", ["a", "b+c"])
    assert split_fusion("rrf[a|rrf[b|c]]") == ("rrf", ["a", "rrf[b|c]"])
    assert split_fusion("official-bm25") is None
    with pytest.raises(WorkbenchError, match="at least two systems"):
        split_fusion("rrf[a]")
    assert default_baseline("rrf[official-bm25|official-bm25+dense-minilm]") == "official-bm25"
