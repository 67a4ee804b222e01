"""Cross-encoder reranker: a sequence-classification transformer reads (query, passage) together.

Scores equal sentence-transformers' ``CrossEncoder(model).predict(pairs)`` with its defaults
(same tokenization, truncation ``longest_first`` at the same maximum length, same activation:
the one saved with the model, else sigmoid for one label), computed faster:

* pairs are tokenized once, sorted by token length and padded per batch only as far as needed;
* ``torch.inference_mode``; the GPU when present (``device=auto``);
* ``precision=bf16`` runs under bfloat16 autocast (CUDA, or CPUs with AVX512-BF16/AMX);
* ``backend=onnx`` runs an ONNX export in ONNX Runtime, int8-quantised by default
  (``precision=int8``; ``precision=fp32`` keeps float weights). The export is cached under
  ``$WORKBENCH_CACHE/onnx`` keyed by the model files' hashes.
* ``backend=auto`` (the default) on the CPU runs the faster of torch fp32 and ONNX Runtime fp32
  *on this machine*, chosen by measurement the first time (a few seconds on real pairs; cached per
  CPU, thread count and model: :mod:`workbench.models.calibration`); both are exact (within 1e-6),
  so the run's key says ``auto`` and the manifest says which path ran. ONNX fp32 was 1.36x faster
  than torch fp32 on an AMD EPYC, torch fp32 faster on an Intel Xeon with AMX. On a GPU, for
  ``precision=bf16``, or when the export fails: torch.

Spec examples: ``cross-encoder`` (ms-marco-MiniLM-L-6-v2), ``cross-encoder:/path/to/model``,
``cross-encoder:cross-encoder/ms-marco-MiniLM-L-12-v2,backend=onnx,batch_size=64``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import WorkbenchError
from ..models.batching import length_sorted_batches, pad_batch, scatter, to_device
from ..models.calibration import cached_choice, calibrate, candidates_for, keep_path, split_path
from ..models.devices import configure_threads, resolve_device
from ..models.hub import activation_from_path, load_config, load_tokenizer, load_weights, resolve_model_dir
from ..models.identity import files_digest, model_identity
from ..models.onnx import (ONNX_PRECISIONS, ONNX_RECIPE, export_output, onnx_cache_dir, onnx_device, onnx_installed,
                           onnx_session)
from ..models.options import AUTO_BACKEND as BACKEND
from ..models.options import PRECISION
from ..models.precision import autocast, check_allowed, check_precision_supported
from .catalogue import CROSS_ENCODER_MODEL as DEFAULT_MODEL
from .neural import PairReranker
from .protocol import RerankContext

TORCH_PRECISIONS = ("fp32", "bf16")
DEFAULT_BATCH_SIZE = {"cpu": 32, "cuda": 128}
CHECKPOINT_PAIRS = {"cpu": 256, "cuda": 2048}
#: real pairs backend=auto times each exact path on, once per machine and model (a few seconds)
CALIBRATION_PAIRS = 192
MIN_CALIBRATION_PAIRS = 96
SIGMOID = "torch.nn.modules.activation.Sigmoid"
IDENTITY = "torch.nn.modules.linear.Identity"


def sentence_transformers_activation(directory: Path, config: Any) -> str:
    """The activation ``CrossEncoder.predict`` applies by default (sentence-transformers 6.2).

    In order: ``activation_fn`` in ``config_sentence_transformers.json`` (read only for models
    saved with ``modules.json``), ``config.sentence_transformers["activation_fn"]``, the legacy
    ``config.sbert_ce_default_activation_function``; only ``torch.*`` paths are trusted. Else
    sigmoid for one label, identity for several.
    """
    if (directory / "modules.json").is_file() and (directory / "config_sentence_transformers.json").is_file():
        saved = _read_json(directory / "config_sentence_transformers.json").get("activation_fn")
        if isinstance(saved, str) and saved.startswith("torch."):
            return saved
    path = None
    st_config = getattr(config, "sentence_transformers", None)
    if isinstance(st_config, dict) and "activation_fn" in st_config:
        path = st_config["activation_fn"]
    elif getattr(config, "sbert_ce_default_activation_function", None) is not None:
        path = config.sbert_ce_default_activation_function
    if isinstance(path, str) and path.startswith("torch."):
        return path
    return SIGMOID if config.num_labels == 1 else IDENTITY


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WorkbenchError(f"unreadable JSON: {error}", path) from None
    return data if isinstance(data, dict) else {}


def _check_sentence_transformers_layout(directory: Path) -> None:
    """A model saved by sentence-transformers must be a bare transformer (no extra modules)."""
    modules_path = directory / "modules.json"
    if not modules_path.is_file():
        return
    try:
        modules = json.loads(modules_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkbenchError("unreadable modules.json", modules_path) from None
    if not (isinstance(modules, list) and len(modules) == 1 and modules[0].get("path", "") in ("", ".")):
        raise WorkbenchError("this sentence-transformers model has modules beyond one transformer; "
                             "only plain sequence-classification cross-encoders are supported", modules_path)


def default_max_length(directory: Path, tokenizer: Any, config: Any) -> int:
    """What ``CrossEncoder`` truncates at: the saved ``max_seq_length``, else the tokenizer's
    ``model_max_length`` capped at ``max_position_embeddings``; 512 when neither is known."""
    st_path = directory / "sentence_bert_config.json"
    if (directory / "modules.json").is_file() and st_path.is_file():
        saved = _read_json(st_path).get("max_seq_length")
        if isinstance(saved, int) and saved > 0:
            return saved
    limits = [value for value in (getattr(tokenizer, "model_max_length", None),
                                  getattr(config, "max_position_embeddings", None))
              if isinstance(value, int) and 0 < value < 1_000_000]
    return min(limits) if limits else 512


class CrossEncoderReranker(PairReranker):
    """Scores (query, passage) pairs with a sequence-classification model."""

    kind = "cross-encoder"
    checkpoint_pairs = CHECKPOINT_PAIRS

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int | None = None,
                 max_length: int | None = None, device: str | None = None, precision: str | None = None,
                 backend: str = "auto", threads: int | None = None, label: int | None = None,
                 context_device: str | None = None, activation: str = "auto"):
        precision = PRECISION.parse(precision, "cross-encoder reranker") if precision is not None else None
        self.backend = self._choose_backend(backend, precision, device or context_device)
        precisions = TORCH_PRECISIONS if self.backend == "torch" else ONNX_PRECISIONS
        if backend == "auto" and self.backend == "onnx":
            precision = "fp32"  # auto never trades exactness for speed
        self.precision = check_allowed(precision or precisions[0], precisions,
                                       f"cross-encoder reranker with backend={self.backend}")
        self.device = (resolve_device(device or context_device) if self.backend == "torch"
                       else onnx_device(device, context_device))
        check_precision_supported(self.precision, self.device)
        self.threads = configure_threads(threads)
        self.model_name = str(model)
        self.directory = resolve_model_dir(self.model_name, self.kind)
        _check_sentence_transformers_layout(self.directory)
        self.identity = model_identity(self.model_name, self.directory)
        self.hf_config = load_config(self.directory, self.kind)
        self.tokenizer = load_tokenizer(self.directory, self.kind)
        self.max_length = (max_length if max_length is not None
                           else default_max_length(self.directory, self.tokenizer, self.hf_config))
        self.num_labels = int(self.hf_config.num_labels)
        if label is None and self.num_labels != 1:
            raise WorkbenchError(f"{self.model_name} has {self.num_labels} labels; pass label=<index> to choose "
                                 "the one that means relevant")
        if label is not None and not 0 <= label < self.num_labels:
            raise WorkbenchError(f"label={label} is out of range for a model with {self.num_labels} labels")
        self.label = 0 if label is None else label
        self.activation_path = {"sigmoid": SIGMOID, "identity": IDENTITY}.get(
            activation, sentence_transformers_activation(self.directory, self.hf_config))
        self.activation = activation_from_path(self.activation_path)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 32)
        #: whether backend=auto may time other batch sizes too (the user left the batch size to it)
        self.tune_batch = batch_size is None
        self.input_names = [name for name in self.tokenizer.model_input_names
                            if name in ("input_ids", "attention_mask", "token_type_ids")]
        if "input_ids" not in self.input_names or "attention_mask" not in self.input_names:
            self.input_names = ["input_ids", "attention_mask"]
        self.pad_values = {"input_ids": self.tokenizer.pad_token_id or 0,
                           "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0}
        self.model: torch.nn.Module | None = None
        self.session: Any = None
        if self.backend == "onnx":
            try:
                self.session = self._onnx_session()
            except Exception as error:  # noqa: BLE001 - auto falls back; an explicit onnx request fails
                if backend != "auto":
                    raise
                warnings.warn(f"ONNX export of {self.model_name} failed ({type(error).__name__}); "
                              "using torch fp32", RuntimeWarning, stacklevel=2)
                self.backend, self.precision, self.device = "torch", "fp32", resolve_device("cpu")
        #: the exact paths backend=auto chooses between by measurement (None: forced, or only one)
        self.calibrating: tuple[str, ...] | None = None
        self.choice = None
        if backend == "auto" and self.session is not None:
            # torch fp32 and ONNX Runtime fp32 are both exact here: which is faster depends on the CPU
            candidates = candidates_for(("torch", "onnx"), self.tune_batch)
            found = cached_choice(self.kind, files_digest(self.identity["files"]), candidates, self.threads)
            if found is not None:
                self.choice = found
                keep_path(self, found.path)
            else:
                self.calibrating = candidates
        if self.backend == "torch" or self.calibrating:
            self.model = self._load_torch_model().to(self.device if self.backend == "torch" else resolve_device("cpu"))

    def _calibrate(self, features: dict[str, list[list[int]]], items: int) -> None:
        """Time torch fp32 and ONNX fp32 (at each candidate batch size) on the same real pairs,
        keep the fastest exact one (:mod:`workbench.models.calibration`), drop the other backend."""
        session, model = self.session, self.model
        lengths = [len(ids) for ids in features["input_ids"]]

        def scores_with(path: str) -> np.ndarray:
            backend, size = split_path(path)
            self.session, self.model = (session, None) if backend == "onnx" else (None, model)
            batches = length_sorted_batches(lengths, size or self.batch_size)
            results = [self._score_batch(pad_batch(features, indices, self.pad_values, self.tokenizer.padding_side))
                       for indices in batches]
            return scatter(len(lengths), batches, results)

        try:
            self.choice = calibrate(self.kind, files_digest(self.identity["files"]),
                                    {name: (lambda name=name: scores_with(name)) for name in self.calibrating},
                                    self.threads, items=items)
        finally:
            self.session, self.model = session, model
        keep_path(self, self.choice.path)

    def pin(self, path: str) -> None:
        """Run ``path`` (``torch``/``onnx``, ``@N`` with a batch size) without measuring: a Ray worker takes the driver's choice,
        so every worker computes exactly what the driver would."""
        if self.calibrating and path in self.calibrating:
            keep_path(self, path)

    def score_pairs(self, queries, passages) -> np.ndarray:
        if self.calibrating and len(passages) >= MIN_CALIBRATION_PAIRS:  # a few pairs would time noise
            sample = min(len(passages), CALIBRATION_PAIRS)
            self._calibrate(self._features(list(queries[:sample]), list(passages[:sample])), sample)
        return super().score_pairs(queries, passages)

    @staticmethod
    def _choose_backend(backend: str, precision: str | None, device: str | None) -> str:
        """``auto`` on the CPU with fp32 wanted and onnx/onnxruntime installed: ONNX Runtime is loaded
        beside torch and the faster exact path is measured (:meth:`_calibrate`); else torch."""
        if backend != "auto":
            return BACKEND.parse(backend, "cross-encoder reranker")
        if precision not in (None, "fp32") or (device not in (None, "cpu") and
                                              resolve_device(device).type != "cpu"):
            return "torch"
        return "onnx" if onnx_installed() else "torch"

    # ------------------------------------------------------------------ loading

    def _load_torch_model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        return load_weights(AutoModelForSequenceClassification, self.directory, self.kind)

    @property
    def onnx_dir(self) -> Path:
        """Cache directory of this model's ONNX export (fp32 and int8 files)."""
        return onnx_cache_dir({"identity": self.identity["files"], "recipe": ONNX_RECIPE,
                               "inputs": self.input_names})

    def _onnx_session(self) -> Any:
        return onnx_session(self.onnx_dir, self.precision, self.threads, self._export_onnx)

    def _export_onnx(self) -> None:
        """Export fp32 ONNX + int8 dynamic quantisation of the classifier (logits output)."""
        from transformers import AutoModelForSequenceClassification

        model = load_weights(AutoModelForSequenceClassification, self.directory, self.kind, attention="eager")
        # Two pairs of different lengths, so the traced graph contains real padding.
        sample = self.tokenizer(["what is a cross encoder", "query"],
                                ["a passage that is longer than the other one", "short"],
                                padding=True, truncation="longest_first", max_length=self.max_length,
                                return_tensors="pt")
        export_output(model, sample, self.input_names, "logits", {0: "batch"}, self.onnx_dir,
                      {"model": self.identity, "recipe": ONNX_RECIPE, "inputs": self.input_names}, self.model_name)

    # ------------------------------------------------------------------ scoring

    def _features(self, queries: list[str], passages: list[str]) -> dict[str, list[list[int]]]:
        encoded = self.tokenizer(queries, passages, truncation="longest_first",
                                 max_length=self.max_length, padding=False, return_attention_mask=False,
                                 return_token_type_ids="token_type_ids" in self.input_names)
        return {name: encoded[name] for name in self.input_names if name in encoded}

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self.activation(self._logits(arrays))[:, self.label].double().numpy()

    def _logits(self, arrays: dict[str, np.ndarray]) -> torch.Tensor:
        """float32 logits ``[batch, num_labels]`` on the CPU."""
        if self.session is not None:
            feeds = {name: arrays[name] for name in self.input_names}
            return torch.from_numpy(self.session.run(["logits"], feeds)[0]).float()
        tensors = to_device(arrays, self.device, self.input_names)
        with torch.inference_mode(), autocast(self.device, self.precision):
            logits = self.model(**tensors).logits
        return logits.float().cpu()

    # ------------------------------------------------------------------ protocol

    def config(self) -> dict[str, Any]:
        # backend=auto on the CPU picks an exact fp32 path by measurement: the key says "auto" (the
        # paths agree within 1e-6), so a stored run stays reusable whichever path this machine picks
        auto_exact = self.calibrating is not None or self.choice is not None
        return {"kind": self.kind, **self.identity, "max_length": self.max_length,
                "activation": self.activation_path, "label": self.label,
                "precision": self.precision, "backend": "auto" if auto_exact else self.backend}

    def numerics(self) -> dict[str, str]:
        """The path that ran (``torch``/``onnx``), not the ``auto`` the key holds."""
        return {"precision": self.precision, "backend": self.calibrating and "auto" or self.backend}


def make_cross_encoder(context: RerankContext, *, model: str, **options: Any) -> CrossEncoderReranker:
    """The ``cross-encoder`` reranker (options: :data:`~workbench.rerankers.catalogue.CROSS_ENCODER_OPTIONS`)."""
    return CrossEncoderReranker(model, context_device=context.device, **options)
