"""Rerank the top-N of a candidate run with any registered reranker, through the score cache."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.trec import sort_run, truncate_run
from .protocol import Reranker
from .score_cache import ScoreCache, pair_key


class RemoteScoring(Protocol):
    """Scoring elsewhere (a Ray cluster, :class:`workbench.engines.ray.BoundEngine`), bound to the
    reranker at hand: results come back as (index, result) in any order, and this process alone
    writes the caches and the run."""

    def score_chunks(self, chunks: Sequence[tuple[Sequence[str], Sequence[str]]]) -> Iterator[tuple[int, np.ndarray]]:
        """Scores of each chunk of (queries, passages), each chunk scored by one ``score_pairs`` call."""

    def encode_groups(self, groups: Sequence[Sequence[str]]) -> Iterator[tuple[int, Any]]:
        """Passage vectors of each group, each group encoded by one ``encode_passages_uncached`` call."""


@dataclass
class RerankStats:
    """What a rerank cost: pairs in the run, pairs scored by the model, cache hits, seconds."""

    pairs: int = 0
    scored: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


def rerank_run(candidates: pd.DataFrame, topics: pd.DataFrame, collection: Collection, reranker: Reranker,
               depth: int = 100, cache: ScoreCache | None = None, progress: bool = True,
               desc: str = "rerank", remote: RemoteScoring | None = None) -> tuple[pd.DataFrame, RerankStats]:
    """Rescore the top ``depth`` candidates of every query that has a topic; returns (run, stats).

    Documents below ``depth`` are dropped. Pairs whose score is cached are not scored again;
    new scores are committed to the cache in chunks, so an interrupted run resumes. With
    ``remote`` the chunks are scored elsewhere (a vector reranker has its passages encoded
    elsewhere instead) and the scores are the same as here, bit for bit.
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
    whole_lists = bool(getattr(reranker, "scores_whole_lists", False))
    if whole_lists:  # a score depends on the list it was ranked in: the key names the list too
        # (with the candidates' scores when the reranker reads them: a PyTerrier stage may interpolate)
        reads_scores = hasattr(reranker, "score_frame")
        entries = (top["docno"].astype(str) + ("\x1e" + top["score"].map(repr) if reads_scores else ""))
        lists = entries.groupby(top["qid"], sort=False).agg(lambda docnos: "\x1f".join(docnos))
        query_texts_keyed = [f"{q}\x00list:{pair_key('', '', lists[qid])}" for q, qid in zip(query_texts, top["qid"])]
    else:
        query_texts_keyed = query_texts
    keys = [pair_key(q, pid, text) for q, pid, text in zip(query_texts_keyed, top["docno"], passage_texts)]
    cached = cache.get_many(model, keys) if cache is not None else {}
    scores = np.array([cached.get(key, np.nan) for key in keys], dtype=np.float64)
    missing = np.flatnonzero(np.isnan(scores))
    stats = RerankStats(pairs=len(keys), cache_hits=len(keys) - len(missing))
    step = max(1, reranker.pairs_batch_size)
    if whole_lists:
        # every query with a missing score is scored whole, in one call, and committed at once
        redo = set(top["qid"].to_numpy()[missing])
        chunks = [np.flatnonzero((top["qid"] == qid).to_numpy()) for qid in pd.unique(top["qid"]) if qid in redo]
        missing = np.concatenate(chunks) if chunks else missing
        stats.cache_hits = len(keys) - len(missing)
        remote = None  # a list must be scored by one call; remote engines split work by pairs
    else:
        # the local path scores these chunks one after another; a remote engine scores the same chunks
        chunks = [missing[start:start + step] for start in range(0, len(missing), step)]

    def commit(chunk: np.ndarray, chunk_scores: Any) -> None:
        chunk_scores = np.asarray(chunk_scores, dtype=np.float64)
        if chunk_scores.shape != (len(chunk),) or not np.all(np.isfinite(chunk_scores)):
            raise WorkbenchError(f"reranker {reranker.kind!r} returned invalid scores")
        scores[chunk] = chunk_scores
        if cache is not None:
            cache.put_many(model, ((keys[i], s) for i, s in zip(chunk, chunk_scores)))
        stats.scored += len(chunk)

    # a vector reranker says which passage vector cache it reads (others have none)
    vector_cache = getattr(reranker, "passage_vector_cache", None)
    if remote is not None and chunks and vector_cache is not None:
        # passages (the expensive part) are encoded remotely in the groups the local chunks would
        # encode them in, and stored; scoring below then encodes only the queries
        groups = vector_cache.plan([[passage_texts[i] for i in chunk] for chunk in chunks])
        for index, vectors in remote.encode_groups(groups):
            vector_cache.store(groups[index], vectors)
    elif remote is not None and chunks:
        for index, chunk_scores in remote.score_chunks(
                [([query_texts[i] for i in chunk], [passage_texts[i] for i in chunk]) for chunk in chunks]):
            commit(chunks[index], chunk_scores)
        chunks = []
    with tqdm(total=sum(len(chunk) for chunk in chunks), desc=desc, unit="pair",
              disable=not progress or not chunks, leave=False) as bar:
        score_frame = getattr(reranker, "score_frame", None)  # a PyTerrier stage reads PyTerrier's columns
        for chunk in chunks:
            if score_frame is not None:
                rows = top.iloc[chunk]
                commit(chunk, score_frame(pd.DataFrame({
                    "qid": rows["qid"].astype(str).to_numpy(), "query": [query_texts[i] for i in chunk],
                    "docno": rows["docno"].astype(str).to_numpy(), "text": [passage_texts[i] for i in chunk],
                    "score": rows["score"].astype(float).to_numpy(), "rank": rows["rank"].to_numpy() - 1})))
            else:
                commit(chunk, reranker.score_pairs([query_texts[i] for i in chunk], [passage_texts[i] for i in chunk]))
            bar.update(len(chunk))
    stats.seconds = time.perf_counter() - started
    reranked = sort_run(pd.DataFrame({"qid": top["qid"], "docno": top["docno"], "score": scores}))
    return reranked, stats
