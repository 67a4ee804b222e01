"""PyTerrier's conventions, shared by its adapters (``workbench.rerankers.pyterrier_stage``,
``workbench.first_stage.pyterrier_stage``, ``workbench.pyterrier``): recognising a transformer,
its identity (what a run's key holds), and the mapping between PyTerrier's result frames
(``qid, query, docno, text, score, rank``, ranks from 0) and workbench runs (ranks from 1).

PyTerrier is imported only when a transformer is there to be read: the core never needs it.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import WorkbenchError


def is_transformer(obj: Any) -> bool:
    """Whether ``obj`` is a PyTerrier transformer, without importing PyTerrier."""
    return any(cls.__name__ == "Transformer" and cls.__module__.startswith("pyterrier")
               for cls in type(obj).__mro__)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# ---------------------------------------------------------------------------------------- identity

def _function_identity(function: Any, depth: int = 0) -> dict[str, Any]:
    """A function by its code and by what it closes over: its source (else its bytecode), its
    defaults and the values of its closure cells, so a lambda sweeping ``w`` is a new function per ``w``."""
    code = getattr(function, "__code__", None)
    try:
        source = inspect.getsource(function)
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    except (OSError, TypeError):  # defined where no source is kept
        digest = ""
    if code is not None:  # two lambdas on one line share their source line: the code tells them apart
        digest = hashlib.sha256((digest + code.co_name).encode() + marshal.dumps(code.co_code)
                                + repr(code.co_consts).encode()).hexdigest()
    identity: dict[str, Any] = {
        "function": f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}",
        "code_sha256": digest}
    if getattr(function, "__defaults__", None):
        identity["defaults"] = [_value_identity(value, depth + 1) for value in function.__defaults__]
    if getattr(function, "__kwdefaults__", None):
        identity["kwdefaults"] = {k: _value_identity(v, depth + 1) for k, v in function.__kwdefaults__.items()}
    cells = getattr(function, "__closure__", None) or ()
    if cells:
        names = code.co_freevars if code is not None else [str(i) for i in range(len(cells))]
        closure = {}
        for name, cell in zip(names, cells):
            try:
                closure[name] = _value_identity(cell.cell_contents, depth + 1)
            except ValueError:  # an empty cell
                closure[name] = None
        identity["closure"] = closure
    return identity


def _tensor_bytes(tensor: Any) -> bytes:
    """A tensor's raw bytes whatever its dtype (bf16 has no numpy dtype)."""
    import torch

    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _module_identity(module: Any) -> dict[str, Any]:
    """A torch module by its weights (a content hash: two checkpoints of one architecture differ)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(_tensor_bytes(tensor))
    config = getattr(module, "config", None)
    return {"module": f"{type(module).__module__}.{type(module).__qualname__}",
            "name_or_path": str(getattr(config, "_name_or_path", "") or ""), "weights_sha256": digest.hexdigest()}


def _value_identity(value: Any, depth: int) -> Any:
    if depth > 12:
        return _ADDRESS.sub("", repr(value))
    if is_transformer(value):
        return transformer_identity(value, depth + 1)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_value_identity(item, depth + 1) for item in items]
    if isinstance(value, dict):
        return {str(key): _value_identity(item, depth + 1) for key, item in value.items()}
    if isinstance(value, pd.DataFrame):
        return {"dataframe_sha256": hashlib.sha256(pd.util.hash_pandas_object(value, index=True).values.tobytes()
                                                    ).hexdigest()}
    if isinstance(value, np.ndarray):
        return {"array": str(value.dtype), "shape": list(value.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    if callable(value) and hasattr(value, "__code__"):
        return _function_identity(value, depth)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        return _module_identity(value)
    if torch is not None and isinstance(value, torch.Tensor):
        return {"tensor_sha256": hashlib.sha256(_tensor_bytes(value)).hexdigest()}
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict) and state:  # any other object: by its class and its state
        return {"object": f"{type(value).__module__}.{type(value).__qualname__}",
                "state": {k: _value_identity(v, depth + 1) for k, v in state.items() if not k.startswith("__")}}
    return _ADDRESS.sub("", repr(value))


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def _class_identity(cls: type) -> dict[str, Any]:
    """A class by its distribution's version when installed, else by its source (a class defined in
    a notebook or a script changes with its code)."""
    module = (cls.__module__ or "").split(".")[0]
    identity: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    dists = _distributions().get(module, [])
    versions = {}
    for name in dists:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    if versions:
        identity["versions"] = dict(sorted(versions.items()))
    else:
        try:
            identity["source_sha256"] = hashlib.sha256(inspect.getsource(cls).encode("utf-8")).hexdigest()
        except (OSError, TypeError):
            pass
    return identity


def transformer_identity(transformer: Any, depth: int = 0) -> dict[str, Any]:
    """What determines a PyTerrier transformer's output, as far as it can be read: its class (with
    its package's version, or its source when it is not installed), the attributes
    ``pyterrier.inspect`` exposes (recursively through pipelines; functions by their code, defaults
    and closure; torch modules by their weights; other objects by their state), and PyTerrier's
    version. A transformer whose attributes cannot be inspected is identified by its state."""
    identity: dict[str, Any] = _class_identity(type(transformer))
    try:
        attributes = __import__('pyterrier').inspect.transformer_attributes(transformer)
        identity["attributes"] = {a.name: _value_identity(a.value, depth) for a in attributes}
    except Exception:  # noqa: BLE001 - pt.inspect.InspectError and friends: its state instead
        state = getattr(transformer, "__dict__", {})
        identity["repr"] = _ADDRESS.sub("", repr(transformer))
        identity["state"] = {k: _value_identity(v, depth + 1) for k, v in state.items() if not k.startswith("__")}
    if depth == 0:
        identity["pyterrier"] = version("pyterrier")
    return identity


def check_output(frame: Any, name: str, needs: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise WorkbenchError(f"PyTerrier transformer {name!r} returned {type(frame).__name__}, not a DataFrame")
    missing = [column for column in needs if column not in frame.columns]
    if missing:
        raise WorkbenchError(f"PyTerrier transformer {name!r} dropped the column(s) {', '.join(missing)}: "
                             f"its output has {', '.join(map(str, frame.columns))}")
    duplicated = frame.duplicated(["qid", "docno"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise WorkbenchError(f"PyTerrier transformer {name!r} returned docno {first['docno']!r} twice for query "
                             f"{first['qid']!r} ({int(duplicated.sum())} duplicates)")
    scores = pd.to_numeric(frame["score"], errors="coerce")
    if scores.isna().any() or not np.all(np.isfinite(scores.to_numpy(dtype=float))):
        raise WorkbenchError(f"PyTerrier transformer {name!r} returned missing or non-finite scores")
    return frame


def to_workbench_run(frame: pd.DataFrame, sort_run) -> pd.DataFrame:
    """A PyTerrier result frame as a workbench run: ``qid, docno, score, rank`` with ranks from 1
    in trec_eval's order (``sort_run``: score descending, ties by docno descending)."""
    run = pd.DataFrame({"qid": frame["qid"].astype(str), "docno": frame["docno"].astype(str),
                        "score": frame["score"].astype(float)})
    return sort_run(run)


def to_pyterrier_frame(run: pd.DataFrame, topics: pd.DataFrame, sort_run) -> pd.DataFrame:
    """A workbench run as PyTerrier results: ``qid, query, docno, score, rank`` (ranks from 0,
    PyTerrier's convention), the order the workbench ranks in (``sort_run``)."""
    ordered = sort_run(run)
    queries = dict(zip(topics["qid"].astype(str), topics["query"]))
    return pd.DataFrame({"qid": ordered["qid"].astype(str), "query": ordered["qid"].astype(str).map(queries),
                         "docno": ordered["docno"].astype(str), "score": ordered["score"].astype(float),
                         "rank": ordered["rank"].astype(int) - 1}).reset_index(drop=True)


