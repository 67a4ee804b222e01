"""First-stage BM25 retrieval with Pyserini over a Lucene index."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import WorkbenchError
from .java import ensure_java
from .trec import sort_run

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
        self.searcher = LuceneSearcher(str(index_path))
        self.searcher.set_bm25(config.k1, config.b)

    def search(self, topics: pd.DataFrame, k: int | None = None, batch_size: int = 1000) -> pd.DataFrame:
        """Top-``k`` BM25 results for every topic, as a run DataFrame (``qid, docno, score, rank``)."""
        k = k or self.config.k
        qids, docnos, scores = [], [], []
        threads = self.config.resolved_threads()
        pairs = list(topics[["qid", "query"]].itertuples(index=False))
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            hits = self.searcher.batch_search([q for _, q in chunk], [qid for qid, _ in chunk], k=k,
                                              threads=threads)
            for qid, _ in chunk:
                for hit in hits.get(qid, []):
                    qids.append(qid)
                    docnos.append(hit.docid)
                    scores.append(hit.score)
        if not qids:
            raise WorkbenchError("BM25 retrieved nothing for any query")
        return sort_run(pd.DataFrame({"qid": qids, "docno": docnos, "score": scores}))
