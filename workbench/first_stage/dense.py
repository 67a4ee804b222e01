"""First-stage dense retrieval (``dense-mini``): encode the whole collection once, search it with faiss.

The passage vectors go through the encoder's :class:`~workbench.models.vector_cache.VectorCache`
(keyed by encoder fingerprint and passage text hash, resumable), which the dense reranker with
the same encoder shares: a passage is encoded once per encoder::

    from workbench.data.collection import Collection
    from workbench.first_stage.dense import DenseIndex
    from workbench.models.dense import DenseEncoder, minilm_path

    encoder = DenseEncoder(minilm_path(), pooling="masked_mean", normalize=True, max_length=256)
    index = DenseIndex.build(Collection(path), encoder, kind="flat")   # or "ivf", "hnsw"
    run = index.search(topics, k=1000)                                  # qid, docno, score, rank

Runs over the mini collection are mini-collection runs: not comparable with published
full-collection numbers (see the data README).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.trec import sort_run
from .catalogue import DENSE_INDEX_KINDS as KINDS
from .learned import LearnedFirstStage, learned_stage_factory


def encode_collection(collection: Collection, encoder: Any, progress: bool = True,
                      cache: bool = True) -> tuple[list[str], np.ndarray]:
    """(docnos, float32 vectors) of every passage, in collection order, through the encoder's
    vector cache (``cache=False``: encoded now, nothing stored)."""
    docnos = list(collection.texts)
    texts = list(collection.texts.values())
    encode = getattr(encoder, "encode_passages", None)
    if encode is None:
        return docnos, np.asarray(encoder.encode(texts), dtype=np.float32)
    vectors = encode(texts, progress=progress, desc="encode collection", cache=cache)
    return docnos, np.ascontiguousarray(vectors, dtype=np.float32)


def _l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class DenseIndex:
    """faiss index over a collection's vectors; ``search`` returns a TREC run DataFrame."""

    def __init__(self, encoder: Any, docnos: list[str], embeddings: np.ndarray, index: Any,
                 kind: str, similarity: str, params: dict[str, Any]):
        self.encoder = encoder
        self.docnos = docnos
        self.embeddings = embeddings
        self.index = index
        self.kind = kind
        self.similarity = similarity
        self.params = params

    @classmethod
    def build(cls, collection: Collection, encoder: Any, kind: str = "flat", similarity: str = "cosine",
              nlist: int | None = None, nprobe: int = 16, hnsw_m: int = 32, ef_construction: int = 200,
              ef_search: int = 128, progress: bool = True, cache: bool = True, seed: int = 0) -> "DenseIndex":
        """Encode ``collection`` (through the encoder's vector cache) and index it.

        ``kind``: ``flat`` (exact inner product, the default), ``ivf`` (IndexIVFFlat with
        ``nlist`` clusters, ``nprobe`` searched; approximate) or ``hnsw`` (IndexHNSWFlat with
        ``hnsw_m`` links, ``ef_construction``/``ef_search``; approximate). ``similarity``
        ``cosine`` L2-normalises vectors, ``dot`` keeps them as encoded.
        """
        import faiss

        kind = str(kind).lower()
        if kind not in KINDS:
            raise WorkbenchError(f"unknown dense index kind {kind!r}; known: {', '.join(KINDS)}")
        if similarity not in ("cosine", "dot"):
            raise WorkbenchError(f"similarity must be cosine or dot, not {similarity!r}")
        docnos, embeddings = encode_collection(collection, encoder, progress=progress, cache=cache)
        vectors = _l2_normalize(embeddings) if similarity == "cosine" else embeddings
        n, dim = vectors.shape
        params: dict[str, Any] = {}
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = int(nlist) if nlist else max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(vectors)
            index.nprobe = max(1, min(int(nprobe), nlist))
            params = {"nlist": nlist, "nprobe": index.nprobe}
        else:
            index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            index.hnsw.efSearch = int(ef_search)
            params = {"hnsw_m": int(hnsw_m), "ef_construction": int(ef_construction),
                      "ef_search": int(ef_search)}
        index.add(vectors)
        return cls(encoder, docnos, vectors, index, kind, similarity, params)

    def __len__(self) -> int:
        return len(self.docnos)

    def config(self) -> dict[str, Any]:
        """What determines this index's runs (for manifests)."""
        return {"kind": "dense-index", "index": self.kind, "similarity": self.similarity, **self.params,
                "encoder": self.encoder.config()}

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        encode = getattr(self.encoder, "encode_queries", None) or self.encoder.encode
        vectors = np.asarray(encode(list(queries)), dtype=np.float32)
        return _l2_normalize(vectors) if self.similarity == "cosine" else np.ascontiguousarray(vectors)

    def search(self, topics: pd.DataFrame, k: int = 1000) -> pd.DataFrame:
        """Top ``k`` passages of every topic (columns ``qid, query``) as a run ``qid, docno, score, rank``."""
        if topics.empty:
            raise WorkbenchError("no topics to search")
        k = max(1, min(int(k), len(self.docnos)))
        queries = self.encode_queries(topics["query"].astype(str).tolist())
        scores, ids = self.index.search(queries, k)
        qids = np.repeat(topics["qid"].astype(str).to_numpy(), k)
        ids, scores = ids.ravel(), scores.ravel()
        found = ids >= 0  # approximate indexes may return fewer than k
        docnos = np.asarray(self.docnos, dtype=object)[ids[found]]
        run = pd.DataFrame({"qid": qids[found], "docno": docnos, "score": scores[found].astype(np.float64)})
        return sort_run(run)


class DenseMini(LearnedFirstStage):
    """Dense retrieval over the whole collection with faiss (``dense-mini``)."""

    kind = "dense-mini"
    label = "dense"

    def build_index(self) -> DenseIndex:
        return DenseIndex.build(self.collection, self.encoder, kind=self.index_kind, progress=self.context.progress)


#: the ``dense-mini`` factory (options: :data:`~workbench.first_stage.catalogue.DENSE_MINI_OPTIONS`)
make_dense_mini = learned_stage_factory(DenseMini)
