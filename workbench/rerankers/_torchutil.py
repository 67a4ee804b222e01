"""Shared plumbing of the neural rerankers: devices, threads, batching, precision, model loading.

* ``resolve_device``: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N``.
* ``length_sorted_batches`` + ``pad_batch``: pairs are tokenized once, sorted by token length
  (longest first) and padded per batch only to that batch's longest sequence.
* ``autocast``: ``precision="bf16"`` runs matrix products in bfloat16 through
  ``torch.autocast``; outputs are upcast to float32 before any activation.
* ``resolve_model_dir``: a local directory, else the Hugging Face cache (never the network
  first), else a download when online; a model that cannot be found raises one clear line.
* ``model_identity``: model id/path plus sha256 of the files that determine the scores
  (weights, config, tokenizer), hashed once per file version (size + mtime) and remembered.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..atomic import atomic_write, sha256_file
from ..cache import cache_dir
from ..errors import WorkbenchError

PRECISIONS = ("fp32", "bf16")

# Files whose bytes determine a model's scores; everything else in a model directory
# (README, other frameworks' weights, ONNX exports, training logs) is ignored.
_MODEL_FILE_PATTERNS = (
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json",
    "config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
    "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "*.tiktoken",
)
# Hub download filter: configs, tokenizers and PyTorch weights only.
_HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "pytorch_model*.bin"]


# ----------------------------------------------------------------------------- options


def parse_int(name: str, value: Any, minimum: int = 1, allow_none: bool = True) -> int | None:
    """An integer option (spec options arrive as strings); ``None``/``""``/``auto`` -> None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto", "none")):
        if allow_none:
            return None
        raise WorkbenchError(f"option {name} needs a value")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WorkbenchError(f"option {name}={value!r} is not an integer") from None
    if number < minimum:
        raise WorkbenchError(f"option {name}={number} must be at least {minimum}")
    return number


def parse_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise WorkbenchError(f"option {name}={value!r} must be one of: {', '.join(choices)}")
    return text


def reject_unknown(kind: str, options: Mapping[str, Any]) -> None:
    """One clear error for misspelt options instead of silently ignoring them."""
    if options:
        raise WorkbenchError(f"unknown option(s) for the {kind} reranker: {', '.join(sorted(options))}")


# ----------------------------------------------------------------------------- devices, threads


def resolve_device(requested: str | None, context_device: str | None = None) -> torch.device:
    """``requested`` (an option) else ``context_device``; ``auto`` picks CUDA when available."""
    name = (requested or context_device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {name!r} requested but CUDA is not available "
                                 "(this torch build or machine has no GPU); use device=cpu or device=auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkbenchError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
        return device
    raise WorkbenchError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N")


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads when asked; never more than the CPUs this process may use.

    torch defaults to one thread per physical core, which is right for a dedicated machine;
    on a shared one pass ``threads=N``. Returns the number of threads torch will use.
    """
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    elif torch.get_num_threads() > available_cpus():
        torch.set_num_threads(available_cpus())
    return torch.get_num_threads()


# ----------------------------------------------------------------------------- batching


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (OOM shows up at once)."""
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def pad_batch(encoded: Mapping[str, Sequence[Sequence[int]]], indices: np.ndarray,
              pad_values: Mapping[str, int], padding_side: str = "right") -> dict[str, np.ndarray]:
    """Pad the rows ``indices`` of tokenized features to the batch's longest row.

    Builds ``attention_mask`` (1 on tokens) and pads every other feature with its value from
    ``pad_values``; the same arrays the tokenizer's own ``padding=True`` would produce.
    """
    rows = [encoded["input_ids"][i] for i in indices]
    width = max((len(row) for row in rows), default=0)
    names = [name for name in encoded if name != "attention_mask"]
    arrays = {name: np.full((len(rows), width), pad_values.get(name, 0), dtype=np.int64) for name in names}
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for row_number, index in enumerate(indices):
        length = len(encoded["input_ids"][index])
        span = slice(width - length, width) if padding_side == "left" else slice(0, length)
        mask[row_number, span] = 1
        for name in names:
            arrays[name][row_number, span] = encoded[name][index]
    arrays["attention_mask"] = mask
    return arrays


def scatter(n: int, batches: Sequence[np.ndarray], results: Sequence[np.ndarray]) -> np.ndarray:
    """Put per-batch results back in input order."""
    scores = np.empty(n, dtype=np.float64)
    for indices, values in zip(batches, results):
        scores[indices] = values
    return scores


# ----------------------------------------------------------------------------- precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``bf16``; a no-op context for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_precision(precision: str, device: torch.device) -> None:
    """bf16 must be supported on CUDA; on a CPU without bf16 instructions it is only slow (warned)."""
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise WorkbenchError(f"precision=bf16 requested but {torch.cuda.get_device_name(device)} "
                             "does not support bfloat16; use precision=fp32")
    if device.type == "cpu":
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            native = False
        if not native:
            warnings.warn("precision=bf16 on a CPU without native bfloat16 support (AVX512-BF16/AMX) is "
                          "emulated and usually slower than fp32", RuntimeWarning, stacklevel=3)


def activation_from_path(path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Instantiate ``torch.nn.<...>`` from a dotted path, as sentence-transformers stores it."""
    module_path, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_path), name)()
    except (ImportError, AttributeError, ValueError, TypeError):
        raise WorkbenchError(f"unknown activation function {path!r}") from None


# ----------------------------------------------------------------------------- model loading


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``)."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in ("1", "on", "yes", "true"):
            return True
    return False


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a filesystem path."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def not_loadable(kind: str, model: str, reason: str) -> WorkbenchError:
    return WorkbenchError(
        f"{kind} model {model!r} could not be loaded: it is not a local directory, not in the Hugging Face "
        f"cache, and cannot be downloaded ({reason}); download it where there is internet "
        f"(hf download {model}) or point at a local copy, e.g. {kind}:/path/to/model")


def resolve_model_dir(model: str, kind: str) -> Path:
    """The local directory holding ``model``: itself, its Hugging Face cache snapshot, or a download.

    The cache is tried first without touching the network; a download is attempted only when
    the hub is not marked offline. Any failure is a one-line :class:`WorkbenchError`.
    """
    model = str(model).strip()
    if not model:
        raise WorkbenchError(f"the {kind} reranker needs a model (a Hugging Face id or a local directory)")
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise WorkbenchError(f"{kind} model path is a file, expected a model directory "
                             "(config.json, weights, tokenizer files)", path)
    if _looks_like_path(model):
        raise WorkbenchError(f"{kind} model directory does not exist", path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or a malformed id): try the network below
        pass
    if hub_offline():
        raise not_loadable(kind, model, "HF_HUB_OFFLINE is set: no network")
    try:
        return Path(snapshot_download(model, allow_patterns=_HUB_ALLOW_PATTERNS))
    except Exception as error:  # noqa: BLE001 - connection errors, unknown repos, auth errors
        raise not_loadable(kind, model, _first_line(error)) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def load_from_dir(loader: Callable[..., Any], directory: Path, kind: str, what: str, **kwargs: Any) -> Any:
    """``loader(directory, local_files_only=True, **kwargs)`` with failures as one clear line."""
    try:
        return loader(str(directory), local_files_only=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - missing files, bad configs, unknown architectures
        raise WorkbenchError(f"could not load the {what} of the {kind} model from {directory}: "
                             f"{_first_line(error)}") from None


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory that determine its scores, sorted by name."""
    found: set[Path] = set()
    for pattern in _MODEL_FILE_PATTERNS:
        found.update(p for p in directory.glob(pattern) if p.is_file())
    return sorted(found)


def hash_file_cached(path: Path) -> str:
    """sha256 of a file, remembered under the cache dir keyed by real path, size and mtime."""
    real = path.resolve()
    stat = real.stat()
    key = f"{real}\x00{stat.st_size}\x00{stat.st_mtime_ns}"
    record = cache_dir("file-hashes") / (hashlib.sha1(key.encode("utf-8")).hexdigest() + ".json")
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            return stored["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(real)
    try:
        with atomic_write(record) as handle:
            json.dump({"key": key, "sha256": digest}, handle)
    except OSError:
        pass  # a read-only cache only costs re-hashing
    return digest


def model_identity(model: str, directory: Path) -> dict[str, Any]:
    """What identifies a model's scores: its id or absolute path and the sha256 of its files."""
    source = str(directory) if Path(model).expanduser().is_dir() else model
    files = model_files(directory)
    if not files:
        raise WorkbenchError("model directory has no config, weights or tokenizer files", directory)
    return {"model": source, "files": {p.name: hash_file_cached(p) for p in files}}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' chatter (unused weights, loading progress bars) while loading."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
