"""PyTerrier in and out: the workbench as the evaluation layer over PyTerrier pipelines.

**In.** Any PyTerrier transformer is a workbench first stage or reranker, by name::

    bench = Workbench()
    bench.register("my-bm25", my_pipeline)             # a retriever: qid, query -> qid, docno, score
    bench.register("my-reranker", my_reranker)         # reads qid, query, docno, text, score, rank
    bench.run_experiment(["dl19"], ["my-bm25", "official-bm25+my-reranker"])

or through the plugin entry points (``workbench.first_stages`` / ``workbench.rerankers``) with a
transformer as the entry point's object. PyTerrier's columns (``qid, query, docno, text, score,
rank``; its ranks count from 0) map to the workbench's (ranks from 1, ties in trec_eval's order).
The transformer's identity (class, the attributes ``pyterrier.inspect`` exposes, recursively; a
function's source; package versions) is part of the run's key and manifest, so a run is reused
like any other and a reranker never scores the same candidate list twice (the score cache holds
its scores per list: a PyTerrier transformer may rank a list as a whole).

**Out.** Any workbench system is a PyTerrier transformer::

    import pyterrier as pt
    from workbench import pyterrier as wpt

    dense = wpt.transformer("official-bm25+dense-minilm", dataset="dl19")
    pt.Experiment([dense, dense % 10], topics, qrels, ["nDCG@10"])
    wpt.experiment([dense, my_pipeline], datasets=["dl19"], names=["dense", "mine"])  # the workbench's rows

:func:`experiment` returns the workbench's sliced leaderboard rows (CIs, exact paired tests with
Holm across the family, MDEs, W/T/L) and writes them to the leaderboard like ``workbench eval``.
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
import pyterrier as pt

from .core.cache import fingerprint
from .core.errors import WorkbenchError
from .data.trec import sort_run
from .first_stage.protocol import FirstStage, StageContext
from .rerankers.protocol import RerankContext, Reranker

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# ---------------------------------------------------------------------------------------- identity

def is_transformer(obj: Any) -> bool:
    """Whether ``obj`` is a PyTerrier transformer."""
    return isinstance(obj, pt.Transformer)


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
        attributes = pt.inspect.transformer_attributes(transformer)
        identity["attributes"] = {a.name: _value_identity(a.value, depth) for a in attributes}
    except Exception:  # noqa: BLE001 - pt.inspect.InspectError and friends: its state instead
        state = getattr(transformer, "__dict__", {})
        identity["repr"] = _ADDRESS.sub("", repr(transformer))
        identity["state"] = {k: _value_identity(v, depth + 1) for k, v in state.items() if not k.startswith("__")}
    if depth == 0:
        identity["pyterrier"] = version("pyterrier")
    return identity


# ------------------------------------------------------------------------------------------ frames

def _check_output(frame: Any, name: str, needs: Sequence[str]) -> pd.DataFrame:
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


def to_workbench_run(frame: pd.DataFrame) -> pd.DataFrame:
    """A PyTerrier result frame as a workbench run: ``qid, docno, score, rank`` with ranks from 1
    in trec_eval's order (score descending, ties by docno descending)."""
    run = pd.DataFrame({"qid": frame["qid"].astype(str), "docno": frame["docno"].astype(str),
                        "score": frame["score"].astype(float)})
    return sort_run(run)


def to_pyterrier_frame(run: pd.DataFrame, topics: pd.DataFrame) -> pd.DataFrame:
    """A workbench run as PyTerrier results: ``qid, query, docno, score, rank`` (ranks from 0,
    PyTerrier's convention), the order the workbench ranks in."""
    ordered = sort_run(run)
    queries = dict(zip(topics["qid"].astype(str), topics["query"]))
    return pd.DataFrame({"qid": ordered["qid"].astype(str), "query": ordered["qid"].astype(str).map(queries),
                         "docno": ordered["docno"].astype(str), "score": ordered["score"].astype(float),
                         "rank": ordered["rank"].astype(int) - 1}).reset_index(drop=True)


# --------------------------------------------------------------------------------------------- in

class PyTerrierFirstStage(FirstStage):
    """A PyTerrier transformer that retrieves (``qid, query`` in, ``qid, docno, score`` out)."""

    kind = "pyterrier"
    candidates = "a PyTerrier pipeline's results"

    def __init__(self, name: str, transformer: Any, context: StageContext):
        self.name = name
        self.transformer = transformer
        self.identity = transformer_identity(transformer)
        self.calls = 0

    def config(self) -> dict[str, Any]:
        # the name is not part of the key: the same transformer under another name is the same run
        return {"type": self.kind, "transformer": self.identity}

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        frame = self.transformer.transform(pd.DataFrame({"qid": topics["qid"].astype(str),
                                                         "query": topics["query"].astype(str)}))
        return to_workbench_run(_check_output(frame, self.name, ("qid", "docno", "score")))

    def details(self) -> dict[str, Any]:
        return {"pyterrier_name": self.name}


class PyTerrierReranker(Reranker):
    """A PyTerrier transformer that reranks: it reads each query's whole candidate list as
    PyTerrier does (``qid, query, docno, text, score, rank``) and returns scores for it."""

    kind = "pyterrier"
    scores_whole_lists = True  # a PyTerrier stage may rank a list as a whole: cached per list

    def __init__(self, name: str, transformer: Any):
        self.name = name
        self.transformer = transformer
        self.identity = transformer_identity(transformer)
        self.calls = 0

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores of the rows of ``frame`` (PyTerrier columns, the candidates' ranks from 0); a
        document the transformer drops (a rank cutoff) is placed after those it returned, in
        candidate order."""
        self.calls += 1
        out = _check_output(self.transformer.transform(frame), self.name, ("qid", "docno", "score"))
        returned = dict(zip(zip(out["qid"].astype(str), out["docno"].astype(str)), out["score"].astype(float)))
        keys = list(zip(frame["qid"].astype(str), frame["docno"].astype(str)))
        scores = np.array([returned.get(key, np.nan) for key in keys], dtype=float)
        dropped = np.isnan(scores)
        if dropped.all():
            raise WorkbenchError(f"PyTerrier transformer {self.name!r} returned none of its {len(keys)} candidates")
        if dropped.any():
            floor = np.nanmin(scores) - 1.0
            scores[dropped] = floor - np.arange(1, int(dropped.sum()) + 1)
        return scores

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        ids = [f"d{position}" for position in range(len(passages))]
        frame = pd.DataFrame({"qid": "q", "query": query, "docno": ids, "text": list(passages),
                              "score": 0.0, "rank": range(len(passages))})
        return self.score_frame(frame)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "transformer": self.identity}

    @property
    def fingerprint(self) -> str:
        # the name is left out: the same transformer registered under two names shares its scores
        return fingerprint({"kind": self.kind, "transformer": self.identity})


def register(name: str, transformer: Any) -> None:
    """Register a PyTerrier transformer under ``name`` as both a first stage (``name`` alone in a
    system) and a reranker (``<candidates>+name``); registering the name again replaces it."""
    from .first_stage.registry import FIRST_STAGES
    from .core.registry import Entry
    from .rerankers.registry import REGISTRY

    if not is_transformer(transformer):
        raise WorkbenchError(f"{name!r}: expected a PyTerrier transformer, got {type(transformer).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name.endswith("-"):
        raise WorkbenchError(f"PyTerrier system name {name!r}: use letters, digits, '.', '_' and '-'")
    factories = ((FIRST_STAGES, lambda context, **_: PyTerrierFirstStage(name, transformer, context)),
                 (REGISTRY, lambda context, **_: PyTerrierReranker(name, transformer)))
    for registry, _ in factories:  # checked in both before either changes
        registry.load_builtins()
        if name in registry._entries and registry._entries[name].source != "pyterrier":
            raise WorkbenchError(f"{name!r} is already a {registry.kind} ({registry._entries[name].source}); "
                                 "register the transformer under another name")
    for registry, factory in factories:
        if name in registry._entries:
            registry.unregister(name)
        registry.add(Entry(name, factory, (), f"PyTerrier {transformer!r}", source="pyterrier"))


def entry_point_factory(transformer: Any, kind: str, name: str):
    """The registry factory of a PyTerrier transformer that a plugin's entry point ``name`` names."""
    if kind == "reranker":
        return lambda context, **_: PyTerrierReranker(name, transformer)
    return lambda context, **_: PyTerrierFirstStage(name, transformer, context)


# -------------------------------------------------------------------------------------------- out

class WorkbenchTransformer(pt.Transformer):
    """A workbench system as a PyTerrier transformer: ``qid, query`` in, the system's run on
    ``dataset`` (computed once, stored, reused) for those queries out."""

    def __init__(self, system: str, dataset: str | None = None, bench: Any = None):
        from .experiment.systems import parse_system

        parse_system(system)  # a bad name fails here, in one line
        self.system = system
        self.dataset = dataset
        self._bench = bench

    @property
    def bench(self):
        if self._bench is None:
            from .experiment import Workbench

            self._bench = Workbench(progress=False)
        return self._bench

    def _dataset_for(self, qids: set[str]) -> str:
        if self.dataset:
            return self.dataset
        from .data.datasets import DATASETS

        for name in DATASETS:
            try:
                judged = set(self.bench.dataset(name).judged_topics["qid"].astype(str))
            except Exception:  # noqa: BLE001 - a dataset that is not here cannot hold the queries
                continue
            if qids <= judged:
                return name
        raise WorkbenchError(f"{self.system}: no built-in dataset has all {len(qids)} queries; pass dataset=")

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        if "qid" not in inp.columns:
            raise WorkbenchError(f"{self.system}: the input has no qid column ({', '.join(map(str, inp.columns))})")
        if "docno" in inp.columns:
            raise WorkbenchError(f"{self.system}: a workbench system retrieves from topics (qid, query); it got "
                                 "candidates (docno): put it first in the pipeline, or register the reranking "
                                 "part with Workbench.register and name the whole system")
        qids = set(inp["qid"].astype(str))
        dataset = self._dataset_for(qids)
        stored = self.bench.produce(self.system, dataset)
        topics = self.bench.dataset(dataset).judged_topics
        unknown = qids - set(topics["qid"].astype(str))
        if unknown:
            raise WorkbenchError(f"{self.system}: {len(unknown)} input queries are not judged queries of {dataset} "
                                 f"(e.g. {sorted(unknown)[0]!r}); the workbench evaluates a dataset's judged queries")
        run = stored.run[stored.run["qid"].astype(str).isin(qids)]
        return to_pyterrier_frame(run, topics)

    def __repr__(self) -> str:
        return f"workbench.pyterrier.transformer({self.system!r}, dataset={self.dataset!r})"


def transformer(system: str, dataset: str | None = None, bench: Any = None) -> WorkbenchTransformer:
    """The workbench system ``system`` as a PyTerrier transformer (its run on ``dataset``, or on the
    built-in dataset whose judged queries include the input's)."""
    return WorkbenchTransformer(system, dataset, bench)


def experiment(pipelines: Sequence[Any], datasets: Sequence[str] = ("dl19",), names: Sequence[str] | None = None,
               baseline: int | str | None = None, bench: Any = None, metrics: Sequence[str] | None = None,
               correction: str = "holm", write: bool = True) -> pd.DataFrame:
    """PyTerrier pipelines evaluated the workbench's way: the sliced leaderboard rows (95% CIs,
    exact paired tests against ``baseline`` with ``correction`` across the family, MDEs, W/T/L),
    also written to the workbench's leaderboard like ``workbench eval``.

    A pipeline that is a :func:`transformer` runs as its workbench system; any other is registered
    under its name (``names``, else ``pt-<8 hex digits of its identity>``). ``baseline``: an index into ``pipelines``
    or a name (default: the first)."""
    from .experiment import Workbench

    bench = bench or Workbench(progress=False, metrics=list(metrics) if metrics else None)
    if metrics:
        bench.metrics = list(metrics)
    names = list(names) if names is not None else [None] * len(pipelines)
    if len(names) != len(pipelines):
        raise WorkbenchError(f"{len(names)} names for {len(pipelines)} pipelines")
    systems = []
    for position, (pipeline, name) in enumerate(zip(pipelines, names)):
        if isinstance(pipeline, WorkbenchTransformer):
            systems.append(pipeline.system)
            continue
        # unnamed: a name from its identity, so another pipeline never takes over its runs and rows
        name = name or "pt-" + fingerprint(transformer_identity(pipeline))[:8]
        names[position] = name
        bench.register(name, pipeline)
        systems.append(name)
    if baseline is None:
        baseline_system = systems[0]
    elif isinstance(baseline, int):
        baseline_system = systems[baseline]
    else:
        baseline_system = systems[names.index(baseline)] if baseline in names else baseline
    if write:
        return bench.run_experiment(list(datasets), systems, baseline=baseline_system, correction=correction)
    import tempfile
    from pathlib import Path

    original = bench.leaderboard
    with tempfile.TemporaryDirectory(prefix="workbench-pyterrier-") as scratch:
        bench.leaderboard = Path(scratch) / "leaderboard.csv"  # rows computed, nothing written where it lasts
        try:
            return bench.run_experiment(list(datasets), systems, baseline=baseline_system, correction=correction)
        finally:
            bench.leaderboard = original


__all__ = ["PyTerrierFirstStage", "PyTerrierReranker", "WorkbenchTransformer", "experiment", "register",
           "to_pyterrier_frame", "to_workbench_run", "transformer", "transformer_identity"]
