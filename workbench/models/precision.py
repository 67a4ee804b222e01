"""Numeric precision of inference: one option, ``precision``, for every neural component.

``fp32`` is exact and the default of every reranker and encoder. ``bf16`` (or ``fp16``) runs
matrix products under ``torch.autocast``, outputs upcast to float32 before any activation;
``int8`` is ONNX Runtime's dynamic quantisation (``backend=onnx``). A lower precision is only
ever asked for by name, so it shows in the system's name (``dense-minilm:precision=bf16``) and
in the leaderboard's ``precision`` column: ``auto`` (bf16 where native) is refused, because it
moved DL20 MRR@10 of the dense reranker by 0.0095 under an unchanged name. ``dtype`` is an
accepted alias of the option, and the torch spellings (``float32``, ``bfloat16``) are accepted
values. ``workbench check-precision`` measures what each faster path changes.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from ..core.errors import WorkbenchError
from .options import PRECISION_SPELLINGS, precision_option  # noqa: F401 - declared (torch-free) there

#: canonical precision -> torch dtype name (what encoder configs record)
TORCH_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                    "float16": torch.float16}


def check_allowed(precision: str, allowed: tuple[str, ...], owner: str) -> str:
    """``precision`` (canonical) if ``owner`` supports it, else one clear error."""
    if precision not in allowed:
        raise WorkbenchError(f"option precision must be one of {', '.join(allowed)} for the {owner}, "
                             f"not {precision!r}")
    return precision


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


def check_precision_supported(precision: str, device: torch.device) -> None:
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
