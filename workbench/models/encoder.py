"""Text encoders: a transformer turning each text into one output (dense vectors, SPLADE
weights), shared by the vector rerankers, the learned first stages and training.

Texts are tokenized once, sorted by token length and batched (at most ``batch_size`` texts and
``max_tokens`` padded tokens), each batch padded only to its own longest text. ``precision``
other than fp32 runs under autocast; ``backend=onnx`` runs the transformer in ONNX Runtime.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..core.errors import WorkbenchError
from .batching import length_sorted_batches, pad_batch, to_device
from .calibration import cached_choice, calibrate, candidates_for, keep_path, split_path
from .devices import configure_threads, resolve_device
from .hub import load_config, load_tokenizer, load_weights, resolve_model_dir
from .identity import files_digest, model_file_hashes, scores_fingerprint
from .onnx import ONNX_RECIPE, export_output, onnx_cache_dir, onnx_device, onnx_installed, onnx_session
from .options import AUTO_BACKEND, BACKEND, MAX_TOKENS, PRECISION, THREADS  # noqa: F401 - declared there
from .options import BATCH_SIZE as ANY_BATCH_SIZE
from .precision import TORCH_DTYPE_NAMES, autocast, check_allowed
from .vector_cache import VectorCache

#: an encoder's batch size: 32 texts unless given
BATCH_SIZE = ANY_BATCH_SIZE.but(default=32)
TORCH_PRECISIONS = ("fp32", "bf16", "fp16")
ONNX_PRECISIONS = ("int8", "fp32")


def given_precision(precision: str | None, dtype: str | None, owner: str) -> str | None:
    """The canonical precision asked for (``dtype`` is the alias of ``precision``), or None."""
    if precision is not None and dtype is not None:
        raise WorkbenchError(f"options precision and dtype of the {owner} are the same option; give one")
    given = precision if precision is not None else dtype
    canonical = PRECISION.parse(given, owner) if given is not None else None
    if canonical == "auto":
        raise WorkbenchError(f"precision=auto is no longer accepted by the {owner}: a system's name must say "
                             "what it computes, so name the precision (fp32, the exact default, or bf16)")
    return canonical


def encoder_dtype(precision: str | None, backend: str) -> str:
    """The dtype an encoder records: float32/bfloat16/float16 (torch) or int8/fp32 (ONNX; int8
    when ``backend=onnx`` is asked for without a precision)."""
    if backend == "onnx":
        return check_allowed(precision or "int8", ONNX_PRECISIONS, "encoder with backend=onnx")
    return TORCH_DTYPE_NAMES[check_allowed(precision or "fp32", TORCH_PRECISIONS, "encoder")]


#: the exact paths backend=auto measures on the CPU, and the texts it measures them on
AUTO_CANDIDATES = ("torch", "onnx")
CALIBRATION_TEXTS = 192
#: a call with fewer texts does not decide (its timings would be noise): it runs the default path
MIN_CALIBRATION_TEXTS = 96


def choose_backend(backend: str, precision: str | None, device: str | None) -> str:
    """``auto``: ONNX Runtime at fp32 when the model runs on the CPU, fp32 is wanted and onnx and
    onnxruntime are installed (exact, and faster than torch here); else torch."""
    if backend != "auto":
        return backend
    if precision == "int8":  # only ONNX Runtime computes int8 (an explicit GPU device is then an error)
        return "onnx"
    if precision not in (None, "fp32") or resolve_device(device, auto_mps=True).type != "cpu":
        return "torch"
    return "onnx" if onnx_installed() else "torch"


class TextEncoder:
    """A transformer turning texts into one output each (dense vectors, SPLADE weights).

    Loads offline (a local directory or a cached hub id, never a download) on ``device``
    (``auto``/None: CUDA, then MPS, else the CPU); texts are tokenized once, sorted by token
    length and batched (at most ``batch_size`` texts and ``max_tokens`` padded tokens), each
    batch padded only to its own longest text. ``precision`` other than fp32 runs under autocast
    (``dtype`` is an alias).
    Subclasses set ``kind`` and ``max_length`` and implement ``encode`` and ``config``.

    ``backend=onnx`` (subclasses that set ``onnx_output``): the transformer runs in ONNX Runtime
    on the CPU (``precision`` ``int8``, the default, or ``fp32``); its ``onnx_output`` (e.g.
    ``last_hidden_state``) is exported once, with dynamic batch and sequence axes, and cached
    under ``cache_dir('onnx')``; ``self.model`` is then None and ``hidden(arrays)`` runs the session.
    """

    kind = "encoder"
    max_length: int
    #: the model output exported for ``backend=onnx`` (None: this encoder has no ONNX path)
    onnx_output: str | None = None
    onnx_recipe = ONNX_RECIPE
    onnx_inputs = ("input_ids", "attention_mask")

    def __init__(self, model: str | os.PathLike, model_class: Any, *, batch_size: int | None = 32,
                 max_tokens: int | None = None, device: str | None = None, precision: str | None = None,
                 backend: str = "torch", threads: int | None = None, dtype: str | None = None):
        owner = f"{self.kind} encoder"
        self.model_name = str(model)
        canonical = given_precision(precision, dtype, owner)
        asked_auto = backend == "auto"
        if backend == "auto":
            backend = choose_backend(backend, canonical, device) if self.onnx_output else "torch"
            canonical = canonical or "fp32"  # auto never trades exactness for speed
        self.backend = BACKEND.parse(backend, owner)
        #: backend=auto between two exact fp32 paths (torch, ONNX Runtime): chosen by measurement
        #: (:mod:`.calibration`); the key says "auto" whichever path runs
        self.auto_exact = asked_auto and self.backend == "onnx" and canonical == "fp32"
        self.calibrating: tuple[str, ...] | None = None
        self.choice = None
        if self.backend == "onnx" and self.onnx_output is None:
            raise WorkbenchError(f"the {self.kind} reranker has no backend=onnx; use backend=torch")
        self.directory = resolve_model_dir(self.model_name, self.kind, download=False)
        self.identity = files_digest(model_file_hashes(self.directory))
        #: None: the batch size is the workbench's to choose (32, or what backend=auto measured faster)
        self.tune_batch = batch_size is None
        self.batch_size = BATCH_SIZE.parse(32 if batch_size is None else batch_size, owner)
        candidates = candidates_for(AUTO_CANDIDATES, self.tune_batch)
        if self.auto_exact:
            found = cached_choice(self.kind, self.identity, candidates, configure_threads(
                THREADS.parse(threads, owner)))
            if found is not None:
                self.choice = found
                self.backend, size = split_path(found.path)
                self.batch_size = size or self.batch_size
            else:
                self.calibrating = candidates
        self.tokenizer = load_tokenizer(self.directory, self.kind)
        self.model_class = model_class
        self.max_tokens = MAX_TOKENS.parse(None if max_tokens == 0 else max_tokens, owner)
        threads = THREADS.parse(threads, owner)
        self.session: Any = None
        if self.backend == "torch":
            self.model = load_weights(model_class, self.directory, self.kind)
            self.model_config = self.model.config
            self.device = resolve_device(device, auto_mps=True)
            self.threads = configure_threads(threads) if threads is not None else torch.get_num_threads()
            self.model.to(self.device)
        else:
            self.model = None
            self.model_config = load_config(self.directory, self.kind)
            self.device = onnx_device(device)
            self.threads = configure_threads(threads)
            if self.calibrating:  # torch fp32 is timed beside ONNX Runtime, and is the exactness reference
                self.model = load_weights(model_class, self.directory, self.kind).to(self.device)
        # recorded as the torch dtype name (float32, bfloat16) or the ONNX precision (int8, fp32)
        self.dtype = "fp32" if self.auto_exact else encoder_dtype(canonical, self.backend)
        self._vector_cache: VectorCache | None = None

    def pin(self, path: str) -> None:
        """Run ``path`` (``torch``/``onnx``, ``@N`` with a batch size) without measuring: a Ray worker
        takes the driver's choice."""
        if self.calibrating and path in self.calibrating:
            keep_path(self, path)

    def _calibrate(self, sample: Sequence[str], encode: Callable[[Sequence[str]], Any]) -> None:
        """Time torch fp32 and ONNX Runtime fp32 (at each candidate batch size) on ``sample``
        (``encode``: texts -> outputs), keep the fastest exact one, drop the other backend
        (:func:`.calibration.calibrate`)."""
        session, model, candidates, batch_size = self.session, self.model, self.calibrating, self.batch_size
        self.calibrating = None

        def outputs_with(path: str) -> np.ndarray:
            backend, size = split_path(path)
            self.session, self.batch_size = (session if backend == "onnx" else None), size or batch_size
            return np.asarray(encode(sample), dtype=np.float64).reshape(-1)

        try:
            self.choice = calibrate(self.kind, self.identity, {name: (lambda name=name: outputs_with(name))
                                                               for name in candidates}, self.threads,
                                    items=len(sample))
        finally:
            self.session, self.batch_size = session, batch_size
        keep_path(self, self.choice.path)

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """Key of this encoder's outputs (e.g. cached embeddings): independent of where the
        weights are installed, since a model is identified by its files' hashes."""
        return scores_fingerprint(self.config(), hub_id=False)

    @property
    def precision(self) -> str:
        """What the numbers are computed in: ``fp32`` (exact), ``bf16``, ``fp16`` or ``int8``."""
        return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(self.dtype, self.dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.dtype)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                 padding=False, return_attention_mask=False, return_token_type_ids=False)
        return encoded["input_ids"]

    def padded_batches(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(indices, {input_ids, attention_mask} int64 arrays), batch by batch."""
        ids = {"input_ids": self.tokenize(texts)}
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        side = getattr(self.tokenizer, "padding_side", "right")
        for indices in length_sorted_batches([len(s) for s in ids["input_ids"]], self.batch_size, self.max_tokens):
            yield indices, pad_batch(ids, indices, {"input_ids": pad_id}, side)

    def batch_plan(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The batches (index arrays into ``texts``) that encoding ``texts`` forms, in order.

        The texts of a contiguous run of these batches, encoded in this order, form the same
        batches again (:func:`~workbench.models.batching.contiguous_parts`): what lets a remote
        engine split one encoding call between workers with bit-identical vectors."""
        return length_sorted_batches([len(ids) for ids in self.tokenize(texts)], self.batch_size, self.max_tokens)

    def passage_batch_plan(self, passages: Sequence[str]) -> list[np.ndarray]:
        """:meth:`batch_plan` of what :meth:`encode_passages_uncached` encodes (prefix included)."""
        return self.batch_plan(passages)

    def text_batches(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """(indices, input_ids, attention_mask) on the device, batch by batch."""
        for indices, arrays in self.padded_batches(texts):
            tensors = to_device(arrays, self.device)
            yield indices, tensors["input_ids"], tensors["attention_mask"]

    # -- backend=onnx

    @property
    def onnx_dir(self) -> Path:
        """Cache directory of this model's ONNX export (fp32 and int8 files)."""
        return onnx_cache_dir({"identity": self.identity, "recipe": self.onnx_recipe,
                               "inputs": list(self.onnx_inputs), "output": self.onnx_output})

    def open_onnx(self) -> None:
        """The ONNX Runtime session of ``self.dtype``, exporting the model first when not cached."""
        self.session = onnx_session(self.onnx_dir, self.dtype, self.threads, self._export_onnx)

    def _export_onnx(self) -> None:
        model = load_weights(self.model_class, self.directory, self.kind, attention="eager")
        # two texts of different lengths, so the traced graph contains real padding
        sample = self.tokenizer(["a longer text to trace the export with padding", "short"], padding=True,
                                truncation=True, max_length=self.max_length, return_tensors="pt")
        names = list(self.onnx_inputs)
        export_output(model, sample, names, self.onnx_output, {0: "batch", 1: "sequence"}, self.onnx_dir,
                      {"model": self.model_name, "files": model_file_hashes(self.directory),
                       "recipe": self.onnx_recipe, "inputs": names, "output": self.onnx_output}, self.model_name)

    def onnx_run(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """``onnx_output`` of one padded batch (float32, on the CPU)."""
        return self.session.run([self.onnx_output], {name: arrays[name] for name in self.onnx_inputs})[0]

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "encode") -> Any:
        raise NotImplementedError

    def encode_queries(self, queries: Sequence[str], **kwargs: Any) -> Any:
        return self.encode(queries, **kwargs)

    def encode_passages(self, passages: Sequence[str], progress: bool = False, desc: str = "encode passages",
                        cache: bool = True) -> Any:
        """Passage outputs in the order of ``passages``, through the :class:`VectorCache` of this
        encoder (``cache=False``: always computed): a passage is encoded once per encoder."""
        if not cache or not len(passages):
            return self.encode_passages_uncached(list(passages), progress=progress, desc=desc)
        return self.vector_cache.get(list(passages), self.encode_passages_uncached, progress=progress, desc=desc)

    def encode_passages_uncached(self, passages: Sequence[str], progress: bool = False,
                                 desc: str = "encode passages") -> Any:
        """Passage outputs computed now (subclasses add a passage prefix)."""
        return self.encode(passages, progress=progress, desc=desc)

    @property
    def vector_cache(self) -> VectorCache:
        """The on-disk cache of this encoder's passage outputs (keyed by its fingerprint)."""
        if self._vector_cache is None:
            self._vector_cache = VectorCache(self.fingerprint, self.kind, {"encoder": self.config()})
        return self._vector_cache


@runtime_checkable
class EncoderModel(Protocol):
    """A model that scores texts encoded apart (the dense and SPLADE rerankers): its ``encoder``
    can also encode a whole collection for a first stage."""

    encoder: TextEncoder

    def config(self) -> dict[str, Any]: ...
