"""Rerank the top-N of a candidate run with any registered reranker, through the score cache."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.trec import sort_run, truncate_run
from .protocol import Reranker
from .score_cache import ScoreCache, pair_key


@dataclass
class RerankStats:
    """What a rerank cost: pairs in the run, pairs scored by the model, cache hits, seconds."""

    pairs: int = 0
    scored: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


def rerank_run(candidates: pd.DataFrame, topics: pd.DataFrame, collection: Collection, reranker: Reranker,
               depth: int = 100, cache: ScoreCache | None = None, progress: bool = True,
               desc: str = "rerank") -> tuple[pd.DataFrame, RerankStats]:
    """Rescore the top ``depth`` candidates of every query that has a topic; returns (run, stats).

    Documents below ``depth`` are dropped. Pairs whose score is cached are not scored again;
    new scores are committed to the cache in chunks, so an interrupted run resumes.
    """
    started = time.perf_counter()
    queries = dict(zip(topics["qid"], topics["query"]))
    top = truncate_run(candidates, depth)
    top = top[top["qid"].isin(queries)].reset_index(drop=True)
    if top.empty:
        raise WorkbenchError("no candidate has a query in the topics: do the run and the dataset match?")
    query_texts = [queries[qid] for qid in top["qid"]]
    passage_texts = collection.texts_for(top["docno"])
    model = reranker.fingerprint
    keys = [pair_key(q, pid, text) for q, pid, text in zip(query_texts, top["docno"], passage_texts)]
    cached = cache.get_many(model, keys) if cache is not None else {}
    scores = np.array([cached.get(key, np.nan) for key in keys], dtype=np.float64)
    missing = np.flatnonzero(np.isnan(scores))
    stats = RerankStats(pairs=len(keys), cache_hits=len(keys) - len(missing))
    step = max(1, reranker.pairs_batch_size)
    with tqdm(total=len(missing), desc=desc, unit="pair", disable=not progress or len(missing) == 0,
              leave=False) as bar:
        for start in range(0, len(missing), step):
            chunk = missing[start:start + step]
            chunk_scores = np.asarray(
                reranker.score_pairs([query_texts[i] for i in chunk], [passage_texts[i] for i in chunk]),
                dtype=np.float64)
            if chunk_scores.shape != (len(chunk),) or not np.all(np.isfinite(chunk_scores)):
                raise WorkbenchError(f"reranker {reranker.kind!r} returned invalid scores")
            scores[chunk] = chunk_scores
            if cache is not None:
                cache.put_many(model, ((keys[i], s) for i, s in zip(chunk, chunk_scores)))
            stats.scored += len(chunk)
            bar.update(len(chunk))
    stats.seconds = time.perf_counter() - started
    reranked = sort_run(pd.DataFrame({"qid": top["qid"], "docno": top["docno"], "score": scores}))
    return reranked, stats
