"""ONNX Runtime (``backend=onnx``): a module is traced once (TorchScript exporter, dynamic batch
and sequence axes) to ``model.onnx`` and quantised dynamically to int8 (``model.int8.onnx``)
under ``cache_dir('onnx')/<key>``, keyed by the model files' hashes and the export recipe;
sessions run on the CPU with the given threads."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from .devices import resolve_device
from ..core.errors import first_line

BACKENDS = ("torch", "onnx")
#: precisions of ``backend=onnx``: int8 dynamic quantisation (the default) or float32 weights
ONNX_PRECISIONS = ("int8", "fp32")
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
ONNX_OPSET = 17
# Bump when the export or quantisation recipe changes: old cached exports are then ignored.
ONNX_RECIPE = "torchscript-export/eager-attention/opset17/ort-quantize-dynamic-qint8-per-channel/v2"


def onnx_installed() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` (the exporter and the runtime) are installed."""
    import importlib.util

    return importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None


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
        raise WorkbenchError(f"ONNX export of {what} failed: {first_line(error, 200, with_type=True)}; use backend=torch") from None
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
        raise WorkbenchError(f"could not open the cached ONNX model ({first_line(error, 200, with_type=True)}); "
                             "delete it to re-export", target.parent) from None


def export_output(model: torch.nn.Module, sample: Mapping[str, torch.Tensor], input_names: Sequence[str],
                  output: str, output_axes: Mapping[int, str], final_dir: Path, metadata: Mapping[str, Any],
                  what: str) -> None:
    """Export one named output of ``model(**inputs)`` (``logits``, ``last_hidden_state``) with dynamic
    batch and sequence axes on every input; ``sample`` holds tokenized example inputs that contain
    real padding, so the traced graph handles it."""
    names = list(input_names)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic[output] = dict(output_axes)
    onnx_export(ModelOutput(model, names, output), tuple(sample[name] for name in names), names, [output],
                dynamic, final_dir, metadata, what)
