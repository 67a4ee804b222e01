"""First-stage BM25 retrieval with Pyserini over the Lucene index of the collection (``bm25-mini``).

Over the mini collection these numbers are NOT comparable with published full-collection
figures (different term statistics); the runs say so in the leaderboard's candidates column.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..core.options import Option
from ..data.collection import Collection
from ..data.trec import sort_run
from .java import ensure_java
from .lucene import LuceneIndex, index_fingerprint, shared_index
from .protocol import FirstStage, StageContext
from .registry import register

BM25_PRESETS = {"anserini": (0.9, 0.4), "msmarco-tuned": (0.82, 0.68)}


@dataclass(frozen=True)
class BM25Config:
    """BM25 parameters; defaults are Anserini's (k1=0.9, b=0.4)."""

    k1: float = 0.9
    b: float = 0.4
    k: int = 1000
    threads: int = 0  # 0: all cores

    def resolved_threads(self) -> int:
        return self.threads or max(1, os.cpu_count() or 1)


class BM25Retriever:
    """Pyserini ``LuceneSearcher`` with BM25, searching many queries at once with threads."""

    def __init__(self, index_path: str | Path, config: BM25Config = BM25Config()):
        ensure_java()
        from pyserini.search.lucene import LuceneSearcher

        if not Path(index_path, "segments_1").exists() and not any(Path(index_path).glob("segments_*")):
            raise WorkbenchError("not a Lucene index", index_path)
        self.config = config
        try:
            self.searcher = LuceneSearcher(str(index_path))
        except Exception as error:  # a jnius.JavaException from a damaged index (CorruptIndexException)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise WorkbenchError(f"cannot open the Lucene index ({first}); rebuild it with `workbench index "
                                 "--force`", index_path) from None
        self.searcher.set_bm25(config.k1, config.b)

    def search(self, topics: pd.DataFrame, k: int | None = None, batch_size: int = 1000) -> pd.DataFrame:
        """Top-``k`` BM25 results for every topic, as a run DataFrame (``qid, docno, score, rank``)."""
        return run_from_hits(*self.hits(topics["qid"].tolist(), topics["query"].tolist(), k, batch_size))

    def hits(self, qids: list[str], queries: list[str], k: int | None = None,
             batch_size: int = 1000) -> tuple[list[str], list[str], list[float]]:
        """(qids, docnos, scores) of the top-``k`` of each query, ``batch_size`` queries per batch search."""
        k = k or self.config.k
        found_qids, docnos, scores = [], [], []
        threads = self.config.resolved_threads()
        pairs = list(zip(qids, queries))
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            hits = self.searcher.batch_search([q for _, q in chunk], [qid for qid, _ in chunk], k=k,
                                              threads=threads)
            for qid, _ in chunk:
                for hit in hits.get(qid, []):
                    found_qids.append(qid)
                    docnos.append(hit.docid)
                    scores.append(hit.score)
        return found_qids, docnos, scores


def run_from_hits(qids: list[str], docnos: list[str], scores: list[float]) -> pd.DataFrame:
    """The run of BM25 hits (as :meth:`BM25Retriever.hits` returns them, from one searcher or many
    shards), ordered as trec_eval ranks it; an error when nothing was retrieved."""
    if not qids:
        raise WorkbenchError("BM25 retrieved nothing for any query")
    return sort_run(pd.DataFrame({"qid": qids, "docno": docnos, "score": scores}))


class BM25Mini(FirstStage):
    """BM25 over the Lucene index of the context's collection (built once and cached on disk)."""

    kind = "bm25-mini"
    candidates = "mini-collection BM25 (not comparable with full-collection figures)"

    def __init__(self, collection: Collection, config: BM25Config, shared: dict | None = None, engine: Any = None):
        self.collection = collection
        self.bm25 = config
        self.shared = shared if shared is not None else {}
        self.engine = engine  # None: search here; else topics are searched by the engine's workers
        self.index: LuceneIndex | None = None

    def config(self) -> dict[str, Any]:
        return {"type": "bm25", "k1": self.bm25.k1, "b": self.bm25.b, "k": self.bm25.k,
                "collection": str(self.collection.path), "collection_sha256": self.collection.fingerprint}

    def run_key(self, topics_sha256: str) -> str:
        # the index (collection bytes, index options, Anserini version) is part of the key
        return fingerprint(self.run_config(topics_sha256), index_fingerprint(self.collection))

    def lucene_index(self) -> LuceneIndex:
        """The collection's Lucene index, built (or found in the cache) once per process."""
        return shared_index(self.collection, self.shared, threads=self.bm25.threads or None)

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        self.index = self.lucene_index()
        if self.engine is not None:
            return self.engine.bm25_search(self.index.path, self.bm25.k1, self.bm25.b, self.bm25.k, topics)
        key = ("bm25-searcher", str(self.index.path), self.bm25.k1, self.bm25.b)
        if key not in self.shared:
            self.shared[key] = BM25Retriever(self.index.path, self.bm25)
        return self.shared[key].search(topics, k=self.bm25.k)

    def details(self) -> dict[str, Any]:
        return {"threads": self.bm25.resolved_threads(), "index": str(self.index.path) if self.index else None}


@register("bm25-mini", help="Pyserini BM25 over the Lucene index of collection.tsv (mini collection: not "
          "comparable with full-collection figures)",
          options=(Option("k1", float, 0.9, minimum=0, help="term saturation (Anserini 0.9; MS MARCO-tuned 0.82)"),
                   Option("b", float, 0.4, minimum=0, help="length normalisation (Anserini 0.4; tuned 0.68)"),
                   Option("k", int, 1000, minimum=1, help="passages retrieved per query")))
def make_bm25_mini(context: StageContext, *, k1: float, b: float, k: int) -> BM25Mini:
    return BM25Mini(context.collection, BM25Config(k1=k1, b=b, k=k, threads=context.threads), context.shared,
                    context.engine)
