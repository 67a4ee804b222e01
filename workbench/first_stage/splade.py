"""First-stage SPLADE retrieval (``splade-mini``): sparse passage vectors of the whole collection
(through the encoder's vector cache, shared with the SPLADE reranker) searched through an inverted index (a term x passage CSR
matrix) by sparse dot product. Mini-collection runs: not comparable with full-collection figures.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.trec import sort_run
from ..models.splade import SpladeEncoder
from .learned import LearnedFirstStage, learned_stage_factory


class SpladeIndex:
    """Sparse passage vectors of a whole collection, searched by sparse dot product."""

    def __init__(self, encoder: SpladeEncoder, docnos: list[str], vectors):
        self.encoder = encoder
        self.docnos = docnos
        self.vectors = vectors  # (n passages, vocab) CSR
        self.inverted = vectors.T.tocsr()  # (vocab, n passages): one posting list per term

    @classmethod
    def build(cls, collection: Collection, encoder: SpladeEncoder, progress: bool = True,
              cache: bool = True) -> "SpladeIndex":
        """Encode ``collection`` through the encoder's vector cache (``cache=False``: encoded now)."""
        docnos = list(collection.texts)
        texts = list(collection.texts.values())
        vectors = encoder.encode_passages(texts, progress=progress, desc="splade collection", cache=cache)
        return cls(encoder, docnos, vectors.tocsr().astype(np.float32))

    def __len__(self) -> int:
        return len(self.docnos)

    def config(self) -> dict[str, Any]:
        return {"kind": "splade-index", "encoder": self.encoder.config()}

    def search(self, topics: pd.DataFrame, k: int = 1000, query_batch: int = 64) -> pd.DataFrame:
        """Top ``k`` passages with a positive score for every topic, as a run ``qid, docno, score, rank``."""
        if topics.empty:
            raise WorkbenchError("no topics to search")
        k = max(1, min(int(k), len(self.docnos)))
        qids = topics["qid"].astype(str).tolist()
        queries = self.encoder.encode(topics["query"].astype(str).tolist())
        docnos = np.asarray(self.docnos, dtype=object)
        parts = []
        for start in range(0, len(qids), query_batch):
            scores = (queries[start:start + query_batch] @ self.inverted).toarray()
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
                np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
            top_scores = np.take_along_axis(scores, top, axis=1)
            for row in range(scores.shape[0]):
                keep = top_scores[row] > 0
                parts.append(pd.DataFrame({"qid": qids[start + row], "docno": docnos[top[row][keep]],
                                           "score": top_scores[row][keep].astype(np.float64)}))
        run = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["qid", "docno", "score"])
        if run.empty:
            raise WorkbenchError("no passage shares a term with any query")
        return sort_run(run)


class SpladeMini(LearnedFirstStage):
    """SPLADE retrieval over the whole collection (``splade-mini``)."""

    kind = "splade-mini"
    label = "SPLADE"

    def build_index(self) -> SpladeIndex:
        return SpladeIndex.build(self.collection, self.encoder, progress=self.context.progress)


#: the ``splade-mini`` factory (options: :data:`~workbench.first_stage.catalogue.SPLADE_MINI_OPTIONS`)
make_splade_mini = learned_stage_factory(SpladeMini)
