"""Shared plumbing of the neural rerankers: options, devices, threads, batching, precision,
model loading and identity, and the two scoring schemes built on them.

* ``resolve_device``: ``auto`` (CUDA when present, else CPU; MPS too where asked), ``cpu``,
  ``cuda``, ``cuda:N``, ``mps``.
* ``length_sorted_batches`` + ``pad_batch``: texts or pairs are tokenized once, sorted by token
  length (longest first) and padded per batch only to that batch's longest sequence.
* ``autocast``: ``bf16``/``bfloat16`` (or ``float16``) runs matrix products in reduced
  precision through ``torch.autocast``; outputs are upcast to float32 before any activation.
* ``resolve_model_dir``: a local directory, else the Hugging Face cache (never the network
  first), else a download when online and allowed; a model that cannot be found raises one clear line.
* ``model_identity``: model id/path plus sha256 of the files that determine the scores
  (weights, config, tokenizer, sentence-transformers modules), hashed once per file version
  (size + mtime) and remembered. ``scores_fingerprint`` keys caches by those hashes, never by
  the directory a local model is installed in.
* ONNX Runtime (``backend=onnx``, cross-encoder and dense): ``onnx_export`` traces a module once
  (TorchScript exporter, dynamic batch and sequence axes) to ``model.onnx`` and quantises it
  dynamically to int8 (``model.int8.onnx``) under ``cache_dir('onnx')/<key>`` (``onnx_cache_dir``:
  the model files' hashes and the export recipe); ``onnx_session`` opens one (exporting first
  when missing) on the CPU with the given threads.
* :class:`PairReranker` (cross-encoder, monoT5: one token sequence per pair) and
  :class:`VectorReranker` + :class:`TextEncoder` (dense, SPLADE: query and passage encoded apart).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..atomic import atomic_write, sha256_file
from ..cache import cache_dir, fingerprint
from ..errors import WorkbenchError
from .base import Reranker

PRECISIONS = ("fp32", "bf16")
BACKENDS = ("torch", "onnx")
#: ``precision`` of ``backend=onnx``: int8 dynamic quantisation (the default) or float32 weights
ONNX_PRECISIONS = ("int8", "fp32")
#: accepted ``dtype`` spellings of the encoders with ``backend=onnx`` -> canonical name (auto: int8)
ONNX_DTYPES = {"int8": "int8", "qint8": "int8", "fp32": "fp32", "float32": "fp32", "auto": "int8"}
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
ONNX_OPSET = 17
# Bump when the export or quantisation recipe changes: old cached exports are then ignored.
ONNX_RECIPE = "torchscript-export/opset17/ort-quantize-dynamic-qint8-per-channel/v1"
#: accepted ``dtype`` spellings of the encoders (dense, SPLADE) -> canonical name
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                    "float16": torch.float16}

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
    """An integer option (spec options arrive as strings); ``None``/``""``/``auto``/``none`` -> None."""
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


def parse_choice(name: str, value: Any, choices: Sequence[str] | Mapping[str, str]) -> str:
    """One of ``choices``; a mapping also accepts aliases (its keys) for canonical names (its values)."""
    mapping = choices if isinstance(choices, Mapping) else {choice: choice for choice in choices}
    text = str(value).strip().lower()
    if text not in mapping:
        raise WorkbenchError(f"option {name} must be one of {', '.join(mapping)}, not {value!r}")
    return mapping[text]


def parse_bool(name: str, value: Any) -> bool:
    """``True``/``False`` from a bool or a spec string (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise WorkbenchError(f"option {name} must be true or false, not {value!r}")


def reject_unknown(kind: str, options: Mapping[str, Any], known: Sequence[str] | None = None) -> None:
    """One clear error for misspelt options instead of silently ignoring them.

    ``known``: the options a factory takes through ``**options`` (listed in the error).
    """
    unknown = sorted(set(options) - set(known or ()))
    if not unknown:
        return
    if known is None:
        raise WorkbenchError(f"unknown option(s) for the {kind} reranker: {', '.join(unknown)}")
    raise WorkbenchError(f"unknown {kind} reranker option(s) {', '.join(unknown)}; known: {', '.join(known)}")


def encoder_options(kind: str, options: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    """Options of an encoder reranker (dense, SPLADE): ``precision`` (the cross-encoder's name) is
    taken for ``dtype``; anything not in ``known`` is an error."""
    options = dict(options)
    if "precision" in options:
        options["dtype"] = options.pop("precision")
    reject_unknown(kind, options, known)
    return options


# ----------------------------------------------------------------------------- devices, threads


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(requested: str | None = None, context_device: str | None = None, *,
                   auto_mps: bool = False) -> torch.device:
    """``requested`` (an option) else ``context_device``; ``auto`` picks CUDA when available
    (then Apple's MPS when ``auto_mps``), else the CPU."""
    name = (requested or context_device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if auto_mps and _mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise WorkbenchError("device 'mps' requested but MPS is not available; use device=cpu or device=auto")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {name!r} requested but CUDA is not available "
                                 "(this torch build or machine has no GPU); use device=cpu or device=auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkbenchError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
        return device
    raise WorkbenchError(f"unknown device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


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


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int,
                          max_tokens: int | None = None) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (OOM shows up at once).

    A batch holds at most ``batch_size`` sequences and, when ``max_tokens`` is set, at most
    ``max_tokens`` padded tokens (but always at least one sequence).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_tokens:
            size = max(1, min(batch_size, max_tokens // max(1, int(lengths[order[start]]))))
        batches.append(order[start:start + size])
        start += size
    return batches


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


def to_device(arrays: Mapping[str, np.ndarray], device: torch.device,
              names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """``arrays`` (all, or ``names``) as tensors on ``device``."""
    return {name: torch.from_numpy(arrays[name]).to(device, non_blocking=True)
            for name in (arrays if names is None else names)}


def scatter(n: int, batches: Sequence[np.ndarray], results: Sequence[np.ndarray]) -> np.ndarray:
    """Put per-batch results back in input order."""
    scores = np.empty(n, dtype=np.float64)
    for indices, values in zip(batches, results):
        scores[indices] = values
    return scores


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` texts (a no-op one unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", leave=False, disable=not enabled)


# ----------------------------------------------------------------------------- precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``bf16``/``bfloat16`` (float16 for ``float16``/``fp16``);
    a no-op context for ``fp32``/``float32``."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_auto_dtype(dtype: str, device: torch.device) -> str:
    """``auto``: bfloat16 where the device computes it natively, else float32.

    Used by the dense-minilm and splade-tiny presets: on DL19 (official BM25 top-100) bf16
    changed NDCG@10 by 0.0003 for both, within the 0.002 allowed for a faster default.
    """
    if dtype != "auto":
        return dtype
    return "bfloat16" if native_bf16(device) else "float32"


def check_precision(precision: str, device: torch.device) -> None:
    """bf16 must be supported on CUDA; on a CPU without bf16 instructions it is only slow (warned)."""
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise WorkbenchError(f"precision=bf16 requested but {torch.cuda.get_device_name(device)} "
                             "does not support bfloat16; use precision=fp32")
    if device.type == "cpu":
        if not native_bf16(device):
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


def packaged_model_dir(module: str, required: Sequence[str], package: str, missing: str) -> Path:
    """The ``model`` folder shipped inside the Python package ``module`` (a preset's offline weights);
    ``missing`` is the error when the package is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise WorkbenchError(missing)
    path = Path(spec.origin).resolve().parent / "model"
    if not all((path / name).is_file() for name in required):
        raise WorkbenchError(f"the {package} package has no model files (reinstall it)", path)
    return path


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
        f"cache, and {reason}; download it where there is internet (hf download {model}) and pass the "
        f"local path, e.g. {kind}:/path/to/model")


def resolve_model_dir(model: str | os.PathLike, kind: str, download: bool = True) -> Path:
    """The local directory holding ``model``: itself, its Hugging Face cache snapshot, or a download.

    The cache is tried first without touching the network; a download is attempted only when
    ``download`` is allowed and the hub is not marked offline. Any failure is a one-line
    :class:`WorkbenchError`.
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
    if not download:
        raise not_loadable(kind, model, f"the {kind} reranker loads models offline (no download)")
    if hub_offline():
        raise not_loadable(kind, model, "cannot be downloaded (HF_HUB_OFFLINE is set: the hub is offline)")
    try:
        return Path(snapshot_download(model, allow_patterns=_HUB_ALLOW_PATTERNS))
    except Exception as error:  # noqa: BLE001 - connection errors, unknown repos, auth errors
        raise not_loadable(kind, model, f"cannot be downloaded ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def load_from_dir(loader: Callable[..., Any], directory: Path, kind: str, what: str, **kwargs: Any) -> Any:
    """``loader(directory, local_files_only=True, **kwargs)``, quietly, with failures as one clear line."""
    try:
        with quiet_transformers():
            return loader(str(directory), local_files_only=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - missing files, bad configs, unknown architectures
        raise WorkbenchError(f"could not load the {what} of the {kind} model from {directory}: "
                             f"{_first_line(error)}") from None


def load_config(directory: Path, kind: str) -> Any:
    from transformers import AutoConfig

    return load_from_dir(AutoConfig.from_pretrained, directory, kind, "config")


def load_tokenizer(directory: Path, kind: str) -> Any:
    from transformers import AutoTokenizer

    return load_from_dir(AutoTokenizer.from_pretrained, directory, kind, "tokenizer")


def load_weights(model_class: Any, directory: Path, kind: str) -> torch.nn.Module:
    """``model_class.from_pretrained(directory)`` in float32, in eval mode."""
    return load_from_dir(model_class.from_pretrained, directory, kind, "weights", dtype=torch.float32).eval()


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


# ----------------------------------------------------------------------------- ONNX Runtime


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module (``onnx`` too: the exporter and the quantiser need it), else one
    clear error."""
    try:
        import onnx  # noqa: F401 - needed by onnxruntime.quantization and the exporter
        import onnxruntime
    except ImportError as error:
        raise WorkbenchError(f"backend=onnx needs the onnx and onnxruntime packages ({error.name} is "
                             "missing): pip install onnx onnxruntime") from None
    return onnxruntime


def onnx_device(device: str | None, context_device: str | None = None) -> torch.device:
    """ONNX Runtime runs on the CPU: an explicit GPU ``device`` is an error, the context's
    device (or ``auto``) falls back to the CPU."""
    resolved = resolve_device(device or context_device)
    if resolved.type != "cpu":
        if device and device.strip().lower() != "auto":
            raise WorkbenchError("backend=onnx runs on the CPU (onnxruntime); use backend=torch for a GPU")
        resolved = torch.device("cpu")
    return resolved


class ModelOutput(torch.nn.Module):
    """Positional-input wrapper for ONNX export: ``model(**inputs)`` reduced to its ``output``
    tensor (``logits``, ``last_hidden_state``)."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str], output: str):
        super().__init__()
        self.model = model
        self.names = list(names)
        self.output = output

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(**dict(zip(self.names, inputs))), self.output)


def onnx_cache_dir(key: Mapping[str, Any]) -> Path:
    """Cache directory of one model's ONNX export (fp32 and int8 files); ``key`` holds the model
    files' hashes and everything else the exported graph depends on (recipe, inputs, outputs)."""
    return cache_dir("onnx") / fingerprint(dict(key))[:40]


def onnx_export(module: torch.nn.Module, inputs: Sequence[torch.Tensor], input_names: Sequence[str],
                output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]], final_dir: Path,
                metadata: Mapping[str, Any], what: str) -> None:
    """Export ``module`` (positional ``inputs``) to fp32 ONNX plus its int8 dynamic quantisation
    (per-channel QInt8 weights) in a temp dir, then rename it to ``final_dir`` (atomic: a
    concurrent export that got there first wins). ``metadata`` goes to ``export.json``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    final_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=final_dir.parent))
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), tuple(inputs), str(work / ONNX_FILES["fp32"]),
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()},
                              opset_version=ONNX_OPSET, dynamo=False)
        logging.disable(logging.WARNING)  # quantize_dynamic's "consider pre-processing" advice
        try:
            quantize_dynamic(str(work / ONNX_FILES["fp32"]), str(work / ONNX_FILES["int8"]),
                             weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
        (work / "export.json").write_text(json.dumps({**metadata, "torch": torch.__version__}, indent=1,
                                                     sort_keys=True, default=str), encoding="utf-8")
        try:
            os.replace(work, final_dir)
        except OSError:
            if not (final_dir / ONNX_FILES["int8"]).is_file():  # not a concurrent export winning
                raise
    except WorkbenchError:
        raise
    except Exception as error:  # noqa: BLE001
        raise WorkbenchError(f"ONNX export of {what} failed: {_first_line(error)}; use backend=torch") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def onnx_session(directory: Path, precision: str, threads: int, export: Callable[[], None]) -> Any:
    """An ONNX Runtime CPU session of ``directory``'s ``precision`` model (``int8``/``fp32``),
    calling ``export()`` first when it is not cached; ``threads`` intra-op threads."""
    ort = import_onnxruntime()
    target = directory / ONNX_FILES[precision]
    if not target.is_file():
        export()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - a corrupt cached export
        raise WorkbenchError(f"could not open the cached ONNX model ({_first_line(error)}); "
                             "delete it to re-export", target.parent) from None


# ----------------------------------------------------------------------------- model identity


def _module_dirs(directory: Path) -> list[Path]:
    """The folders of the sentence-transformers modules listed in ``modules.json`` (pooling, dense
    layers), inside ``directory``; the transformer itself lives at the top level."""
    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    root = directory.resolve()
    folders = []
    for module in modules if isinstance(modules, list) else []:
        sub = module.get("path", "") if isinstance(module, dict) else ""
        if isinstance(sub, str) and sub not in ("", ".") and (directory / sub).resolve().is_relative_to(root):
            folders.append(directory / sub)
    return folders


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory that determine its outputs, sorted by path."""
    found: set[Path] = set()
    for folder in [directory, *_module_dirs(directory)]:
        for pattern in _MODEL_FILE_PATTERNS:
            found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


_FILE_HASHES: dict[str, str] = {}


def hash_file_cached(path: Path) -> str:
    """sha256 of a file, remembered (in memory and under the cache dir) by real path, size and mtime."""
    real = path.resolve()
    stat = real.stat()
    key = f"{real}\x00{stat.st_size}\x00{stat.st_mtime_ns}"
    if key in _FILE_HASHES:
        return _FILE_HASHES[key]
    record = cache_dir("file-hashes") / (hashlib.sha1(key.encode("utf-8")).hexdigest() + ".json")
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            _FILE_HASHES[key] = stored["sha256"]
            return stored["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(real)
    try:
        with atomic_write(record) as handle:
            json.dump({"key": key, "sha256": digest}, handle)
    except OSError:
        pass  # a read-only cache only costs re-hashing
    _FILE_HASHES[key] = digest
    return digest


def model_file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of each file of ``model_files``, by path relative to ``directory``, in path order."""
    files = model_files(directory)
    if not files:
        raise WorkbenchError("model directory has no config, weights or tokenizer files", directory)
    return {p.relative_to(directory).as_posix(): hash_file_cached(p) for p in files}


def model_identity(model: str, directory: Path) -> dict[str, Any]:
    """What identifies a model: its hub id or absolute path (for manifests) and its files' sha256."""
    source = str(directory) if Path(model).expanduser().is_dir() else model
    return {"model": source, "files": model_file_hashes(directory)}


def files_digest(files: Mapping[str, str]) -> str:
    """One ``sha256:`` digest of ``model_file_hashes`` (relative paths and file hashes, in order)."""
    digest = hashlib.sha256()
    for name, file_hash in files.items():
        digest.update(f"{name}\0{file_hash}\0".encode())
    return "sha256:" + digest.hexdigest()


def scores_fingerprint(config: Mapping[str, Any], hub_id: bool = True) -> str:
    """Key of the scores (or vectors) of a model with this ``config``, which records the model's
    files' hashes and, under ``model``, its hub id or local path.

    The files' hashes identify the model, so where a local model is installed is left out: a
    copy elsewhere shares the cache. A hub id stays in the key unless ``hub_id=False``.
    """
    source = config.get("model")
    if source is not None and (not hub_id or Path(str(source)).is_absolute()):
        config = {key: value for key, value in config.items() if key != "model"}
    return fingerprint(dict(config))


# ----------------------------------------------------------------------------- scoring schemes


class PairReranker(Reranker):
    """A model that reads each (query, passage) pair as one token sequence (cross-encoder, monoT5).

    Pairs are tokenized once (``_features``), scored in length-sorted, dynamically padded batches
    (``_score_batch``: padded arrays -> float64 scores) and put back in input order. Subclasses
    set ``tokenizer``, ``device``, ``batch_size``, ``pad_values`` and ``checkpoint_pairs``.
    """

    checkpoint_pairs: Mapping[str, int] = {"cpu": 256}

    def _features(self, queries: list[str], passages: list[str]) -> dict[str, list[list[int]]]:
        raise NotImplementedError

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_pairs([query] * len(passages), passages)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        if len(queries) != len(passages):
            raise ValueError("queries and passages must have the same length")
        if not passages:
            return np.zeros(0)
        features = self._features(list(queries), list(passages))
        batches = length_sorted_batches([len(ids) for ids in features["input_ids"]], self.batch_size)
        results = [self._score_batch(pad_batch(features, indices, self.pad_values, self.tokenizer.padding_side))
                   for indices in batches]
        return scatter(len(passages), batches, results)

    @property
    def fingerprint(self) -> str:
        return scores_fingerprint(self.config())

    @property
    def pairs_batch_size(self) -> int:
        return max(self.batch_size, self.checkpoint_pairs.get(self.device.type, 256))


class TextEncoder:
    """A transformer turning texts into one output each (dense vectors, SPLADE weights).

    Loads offline (a local directory or a cached hub id, never a download) on ``device``
    (``auto``/None: CUDA, then MPS, else the CPU); texts are tokenized once, sorted by token
    length and batched (at most ``batch_size`` texts and ``max_tokens`` padded tokens), each
    batch padded only to its own longest text. ``dtype`` other than float32 runs under autocast.
    Subclasses set ``kind`` and ``max_length`` and implement ``encode`` and ``config``.

    ``backend=onnx`` (subclasses that set ``onnx_output``): the transformer runs in ONNX Runtime
    on the CPU (``dtype`` ``int8``, the default, or ``fp32``); its ``onnx_output`` (e.g.
    ``last_hidden_state``) is exported once, with dynamic batch and sequence axes, and cached
    under ``cache_dir('onnx')``; ``self.model`` is then None and ``hidden(arrays)`` runs the session.
    """

    kind = "encoder"
    max_length: int
    #: the model output exported for ``backend=onnx`` (None: this encoder has no ONNX path)
    onnx_output: str | None = None
    onnx_recipe = ONNX_RECIPE
    onnx_inputs = ("input_ids", "attention_mask")

    def __init__(self, model: str | os.PathLike, model_class: Any, *, batch_size: Any = 32,
                 max_tokens: Any = None, device: str | None = None, dtype: str | None = None,
                 backend: str = "torch", threads: Any = None):
        self.model_name = str(model)
        self.backend = parse_choice("backend", backend, BACKENDS)
        if self.backend == "onnx" and self.onnx_output is None:
            raise WorkbenchError(f"the {self.kind} reranker has no backend=onnx; use backend=torch")
        self.directory = resolve_model_dir(self.model_name, self.kind, download=False)
        self.tokenizer = load_tokenizer(self.directory, self.kind)
        self.model_class = model_class
        self.batch_size = parse_int("batch_size", batch_size, allow_none=False)
        self.max_tokens = parse_int("max_tokens", None if max_tokens == 0 else max_tokens)
        threads = parse_int("threads", threads)
        self.session: Any = None
        if self.backend == "torch":
            self.model = load_weights(model_class, self.directory, self.kind)
            self.model_config = self.model.config
            self.device = resolve_device(device, auto_mps=True)
            self.dtype = resolve_auto_dtype(parse_choice("dtype", dtype or "float32", DTYPES), self.device)
            self.threads = configure_threads(threads) if threads is not None else torch.get_num_threads()
            self.model.to(self.device)
        else:
            self.model = None
            self.model_config = load_config(self.directory, self.kind)
            self.device = onnx_device(device)
            self.dtype = parse_choice("dtype", dtype or ONNX_PRECISIONS[0], ONNX_DTYPES)
            self.threads = configure_threads(threads)
        self.identity = files_digest(model_file_hashes(self.directory))

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """Key of this encoder's outputs (e.g. cached embeddings): independent of where the
        weights are installed, since a model is identified by its files' hashes."""
        return scores_fingerprint(self.config(), hub_id=False)

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
        model = load_weights(self.model_class, self.directory, self.kind)
        # two texts of different lengths, so the traced graph contains real padding
        sample = self.tokenizer(["a longer text to trace the export with padding", "short"], padding=True,
                                truncation=True, max_length=self.max_length, return_tensors="pt")
        names = list(self.onnx_inputs)
        dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
        dynamic[self.onnx_output] = {0: "batch", 1: "sequence"}
        onnx_export(ModelOutput(model, names, self.onnx_output), tuple(sample[name] for name in names), names,
                    [self.onnx_output], dynamic, self.onnx_dir,
                    {"model": self.model_name, "files": model_file_hashes(self.directory),
                     "recipe": self.onnx_recipe, "inputs": names, "output": self.onnx_output}, self.model_name)

    def onnx_run(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """``onnx_output`` of one padded batch (float32, on the CPU)."""
        return self.session.run([self.onnx_output], {name: arrays[name] for name in self.onnx_inputs})[0]

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "encode") -> Any:
        raise NotImplementedError

    def encode_queries(self, queries: Sequence[str], **kwargs: Any) -> Any:
        return self.encode(queries, **kwargs)

    def encode_passages(self, passages: Sequence[str], **kwargs: Any) -> Any:
        return self.encode(passages, **kwargs)


class VectorReranker(Reranker):
    """Scores a pair by comparing the query's vector with the passage's, each encoded apart by
    ``self.encoder`` (a :class:`TextEncoder`); a text shared by several pairs is encoded once."""

    encoder: TextEncoder

    def _similarities(self, query_vectors: Any, passage_vectors: Any) -> np.ndarray:
        """float64 score of each row pair."""
        raise NotImplementedError

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_pairs([query] * len(passages), passages)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        unique_queries = list(dict.fromkeys(queries))
        unique_passages = list(dict.fromkeys(passages))
        query_row = {q: i for i, q in enumerate(unique_queries)}
        passage_row = {p: i for i, p in enumerate(unique_passages)}
        query_vectors = self.encoder.encode_queries(unique_queries)
        passage_vectors = self.encoder.encode_passages(unique_passages)
        return self._similarities(query_vectors[[query_row[q] for q in queries]],
                                  passage_vectors[[passage_row[p] for p in passages]])

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.encoder.config()}

    @property
    def fingerprint(self) -> str:
        # the files' hashes identify the model; neither its install path nor its hub id changes scores
        return scores_fingerprint(self.config(), hub_id=False)

    @property
    def pairs_batch_size(self) -> int:
        return 2048
