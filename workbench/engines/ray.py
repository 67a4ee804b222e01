"""Run the expensive stages on a Ray cluster, with the same results as on one machine.

``workbench eval --engine ray [--ray-address ADDRESS]`` hands three kinds of work to one pool of
Ray actors per experiment: started at the first stage, kept for every later one, each actor
keeping the models (or Lucene searchers) it loaded, so start-up is paid once, not per system x
dataset:

* **reranking**: the pairs the score cache does not hold, cut into the very chunks the local
  path scores one after another (``Reranker.pairs_batch_size`` pairs), become rows dealt to
  the actors one at a time as each frees up; actors score the rows, the driver alone writes the score cache and the
  run (one writer: nothing lost, nothing written twice). A vector reranker (dense, SPLADE)
  sends its passage encoding instead (below) and then scores locally from the vector cache,
  which costs only query encodings and dot products.
* **collection encoding** (``dense-mini``, ``splade-mini``, a vector reranker's passages): the
  passages missing from the encoder's vector cache, grouped exactly as the local path would
  encode them (:meth:`~workbench.models.vector_cache.VectorCache.plan`), are encoded by actors;
  the driver stores each group as the same resumable segment the local path writes.
* **BM25** (``bm25-mini``): topics split across actors, each with its own Pyserini searcher over
  the index on shared storage; the driver orders the run as the local path does.

Why chunks and groups rather than single pairs: some models' outputs depend, in the last bits,
on which texts share a padded batch (SPLADE-tiny in torch moves by up to 4.5e-6 with the batch
composition), so the local batches are reproduced exactly and a run computed on Ray has the
same sha256 as the local one. Ray restarts an actor that dies and retries its call, and an
interrupted driver resumes from the score cache and the vector segments it wrote.

The model a worker builds is checked against the driver's: same reranker (or encoder)
fingerprint, or the worker refuses to score. Workers need the workbench installed, and the
data directory, models and index at the same paths (shared storage), as Ray's own docs assume.
"""
from __future__ import annotations

import os
import pickle
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError

#: environment a worker needs to find what the driver finds (data, caches, offline hub)
FORWARDED_ENV = ("WORKBENCH_DATA", "WORKBENCH_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
                 "JAVA_HOME", "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "WORKBENCH_DATASET_FILES", "IR_DATASETS_HOME")


#: Ray's C++ core installs a SIGSEGV handler when it starts, over the JVM's. HotSpot raises SIGSEGV
#: on purpose (implicit null checks, safepoints) and handles it itself; with Ray's handler on top, the
#: first such signal after ``ray.init`` kills a process whose JVM (Pyserini) is already running:
#: "Fatal Python error: Segmentation fault" in a Lucene search. Ray reads this variable to leave
#: signals alone (driver and workers, which inherit it); it reads it when ``ray`` is imported.
RAY_SIGNAL_HANDLER_OFF = {"RAY_DISABLE_FAILURE_SIGNAL_HANDLER": "1"}


def leave_signals_to_the_jvm() -> None:
    """Keep Ray's failure signal handler out of this process and its workers (see above); also
    when ``ray`` was imported already, as long as ``ray.init`` has not run."""
    os.environ.update(RAY_SIGNAL_HANDLER_OFF)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    leave_signals_to_the_jvm()
    try:
        import ray
    except ImportError:
        raise WorkbenchError("--engine ray needs Ray: pip install -e '.[ray]' (make setup installs it)") from None
    return ray


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker builds the model the driver holds: a reranker spec on a dataset, and the
    fingerprint it must come out with (``role``: ``reranker`` scores pairs, ``encoder`` encodes)."""

    spec: str
    dataset: str | None
    data_dir: str | None
    device: str
    role: str
    fingerprint: str
    #: the driver's working directory: relative paths in a spec (models/<name>) resolve as there
    cwd: str | None = None
    #: backend=auto's exact path as the driver chose it: workers run it rather than measure their own
    exact_path: str | None = None
    #: intra-op threads the driver's model runs with: a worker runs the model with as many, since
    #: some kernels' last bits depend on the thread count (all-MiniLM-L6-v2 in torch, a batch of 4
    #: texts: 1e-7 between 1 and 2 threads on an Intel Xeon)
    threads: int | None = None

    @property
    def reuse_key(self) -> tuple[Any, ...]:
        """What a worker keeps a built model under between stages: the same model whatever the
        dataset (its fingerprint says so; one that depends on the collection, TF-IDF, has the
        collection in it)."""
        return (self.role, self.spec, self.device, self.fingerprint, self.cwd, self.exact_path, self.threads)

    def build(self) -> Any:
        """The reranker (``role="reranker"``) or its encoder (``role="encoder"``), checked."""
        if self.cwd and Path(self.cwd).is_dir():
            os.chdir(self.cwd)
        from ..data.datasets import get_dataset
        from ..rerankers.protocol import RerankContext
        from ..rerankers.registry import get_reranker

        dataset = get_dataset(self.dataset, self.data_dir) if self.dataset else None
        collection = dataset.collection() if dataset is not None else None
        reranker = get_reranker(self.spec, RerankContext(collection=collection, dataset=dataset, device=self.device))
        model = reranker if self.role == "reranker" else reranker.encoder
        if self.exact_path and hasattr(model, "pin"):
            model.pin(self.exact_path)
        if model.fingerprint != self.fingerprint:
            raise WorkbenchError(f"the worker on {socket.gethostname()} built {self.spec!r} with fingerprint "
                                 f"{model.fingerprint[:12]}, the driver has {self.fingerprint[:12]}: the model "
                                 "files, options or package versions differ between driver and worker")
        return model


def settle_exact_path(model: Any, dataset: Any) -> str | None:
    """The exact path backend=auto runs for ``model`` (a reranker, or its encoder), measured here on
    the dataset's real queries and passages if it has not been yet: workers then run that path, so
    a run computed on Ray is the run computed here."""
    target = model if getattr(model, "calibrating", None) is not None or getattr(model, "choice", None) else \
        getattr(model, "encoder", None)
    if target is None or (getattr(target, "calibrating", None) is None and getattr(target, "choice", None) is None):
        return None
    if target.calibrating:
        queries = list(dataset.judged_topics["query"])[:64] if dataset is not None else ["what is a query"]
        passages = list(dataset.collection().texts.values())[:192] if dataset is not None else queries
        if target is model and hasattr(model, "score_pairs"):
            model.score_pairs([queries[i % len(queries)] for i in range(len(passages))], passages)
        else:
            target.encode(passages)
        if target.calibrating:  # too few texts to measure on: the driver runs (and pins) its default path
            target.pin(target.backend)
    # the measured path names its batch size when it is not the default one (torch@16)
    return target.choice.path if getattr(target, "choice", None) is not None else target.backend


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _set_threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(cpus)))


class PairScorer:
    """Scores rows of (chunk index, queries, passages) with the recipe's reranker."""

    def __init__(self, recipe: ModelRecipe, cpus: float = 1.0):
        self.threads = recipe.threads or max(1, int(cpus))
        _set_threads(self.threads)
        self.reranker = recipe.build()

    def __call__(self, row: dict[str, Any]) -> tuple[Any, int]:
        scores = np.asarray(self.reranker.score_pairs(list(row["queries"]), list(row["passages"])), dtype=np.float64)
        return scores, len(row["passages"])


class PassageEncoder:
    """Encodes rows of (group index, texts, part, parts) with the recipe's encoder, as the local
    vector cache would encode the group (one ``encode_passages_uncached`` call); a row that is one
    of several parts encodes only its run of the group's batches
    (:func:`~workbench.models.batching.contiguous_parts`), the very batches the whole call forms."""

    def __init__(self, recipe: ModelRecipe, cpus: float = 1.0):
        self.threads = recipe.threads or max(1, int(cpus))
        _set_threads(self.threads)
        self.encoder = recipe.build()

    def __call__(self, row: dict[str, Any]) -> tuple[Any, int]:
        from ..models.batching import contiguous_parts

        texts, part, parts = list(row["texts"]), int(row["part"]), int(row["parts"])
        if parts == 1:
            positions = np.arange(len(texts))
        else:
            positions = contiguous_parts(self.encoder.passage_batch_plan(texts), parts)[part]
        vectors = self.encoder.encode_passages_uncached([texts[i] for i in positions])
        return (positions, vectors), len(positions)


class BM25Searcher:
    """One Pyserini searcher over the index; rows are shards of topics."""

    def __init__(self, index_path: str, config: Any, cpus: float = 1.0):
        import dataclasses

        from ..first_stage.bm25 import BM25Retriever

        self.retriever = BM25Retriever(index_path, dataclasses.replace(config, threads=max(1, int(cpus))))

    def __call__(self, row: dict[str, Any]) -> tuple[Any, int]:
        return self.retriever.hits(list(row["qids"]), list(row["queries"])), len(row["qids"])


#: what a pool's worker can hold, by name (the name travels to the worker, not the class)
COMPONENTS: dict[str, type] = {"PairScorer": PairScorer, "PassageEncoder": PassageEncoder,
                               "BM25Searcher": BM25Searcher}


class StageWorker:
    """One actor of the experiment's pool (a Ray actor: ``ray.remote(StageWorker)``).

    It lives as long as the pool, across every stage of an experiment, and keeps the last
    ``keep`` components it built (a reranker, an encoder, a Lucene searcher) keyed by what they
    were built from, so a model is loaded once per worker per experiment, not once per stage.
    Ray restarts a killed worker (with nothing loaded) and retries its call."""

    def __init__(self, cpus: float = 1.0, keep: int = 2):
        from collections import OrderedDict

        started = time.perf_counter()
        leave_signals_to_the_jvm()
        _set_threads(cpus)
        self.cpus, self.keep = cpus, max(1, int(keep))
        self.components: "OrderedDict[Any, Any]" = OrderedDict()
        self.worker = _worker_id()
        self.start_s = time.perf_counter() - started

    def ready(self) -> tuple[str, float]:
        """(worker id, seconds its start took): the pool waits for every worker before it deals rows."""
        return self.worker, self.start_s

    def run(self, kind: str, key: Any, arguments: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each row through the component ``kind`` built from ``arguments`` (built here once, kept
        under ``key``): its index, pickled result, seconds, items, this call's build seconds, and
        the worker's id."""
        init_s = 0.0
        component = self.components.get(key)
        if component is None:
            started = time.perf_counter()
            component = COMPONENTS[kind](**arguments, cpus=self.cpus)
            init_s = time.perf_counter() - started
            self.components[key] = component
            while len(self.components) > self.keep:  # the least recently used goes: bounded memory
                self.components.popitem(last=False)
        self.components.move_to_end(key)
        _set_threads(getattr(component, "threads", self.cpus))  # the component's own (the driver's) count
        results = []
        for row in rows:
            started = time.perf_counter()
            payload, items = component(row)
            results.append({"index": int(row["index"]), "payload": pickle.dumps(payload, protocol=5),
                            "seconds": time.perf_counter() - started, "items": int(items), "init_s": init_s,
                            "worker": self.worker})
            init_s = 0.0
        return results


@dataclass
class ActorPool:
    """The workers of one experiment: started once, reused by every stage whose resources match."""

    key: tuple[Any, ...]
    actors: list[Any]
    start_s: float
    workers_start_s: dict[str, float]
    stages: int = 0


@dataclass
class StageReport:
    """What one stage did on the cluster: rows, items, and each worker's share and throughput.

    ``workers``: the pool's actors; ``pool``: whether this stage started the pool (and what that
    took) or found it running, so the manifests show start-up paid once per experiment."""

    stage: str
    unit: str
    workers: int = 0
    items: int = 0
    wall_s: float = 0.0
    pool: dict[str, Any] = field(default_factory=dict)
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, worker: str, items: int, seconds: float, init_s: float = 0.0) -> None:
        mine = self.per_worker.setdefault(worker, {"items": 0, "busy_s": 0.0, "init_s": 0.0})
        mine["items"] += int(items)
        mine["busy_s"] += float(seconds)
        mine["init_s"] += float(init_s)
        self.items += int(items)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "unit": self.unit, "items": self.items, "wall_s": round(self.wall_s, 3),
                "workers": self.workers, "workers_busy": len(self.per_worker), "pool": self.pool,
                "per_worker": {worker: {"items": int(v["items"]), "busy_s": round(v["busy_s"], 3),
                                        "init_s": round(v["init_s"], 3),
                                        f"{self.unit}s_per_s": round(v["items"] / v["busy_s"], 2) if v["busy_s"] else None}
                               for worker, v in sorted(self.per_worker.items())}}


#: the pool this process holds (one at a time: a local cluster's CPUs are the pool's while it lives)
_LIVE_POOL: ActorPool | None = None


def close_pool() -> None:
    """End the workers of this process's pool, if any (the next stage starts a new one)."""
    global _LIVE_POOL
    pool, _LIVE_POOL = _LIVE_POOL, None
    if pool is not None:
        import ray

        for actor in pool.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - a worker already gone, a cluster already shut down
                pass


class RayEngine:
    """Runs reranking, collection encoding and BM25 on a Ray cluster (see the module docstring).

    ``address``: an existing cluster (``auto``, ``ray://host:10001``); None starts a local one
    on this machine (or joins the one this process already started). ``workers``: actors of the
    experiment's pool, started at the first stage and kept for the next ones (default: the cluster's CPUs / ``cpus_per_worker``, or its GPUs when the device is a
    GPU). ``batch_size``: rows (chunks of pairs, groups of passages, shards of topics) per actor
    call. ``rows_per_worker``: with fewer passage groups than this many per worker, groups are
    shared out in parts (cut at batch boundaries). ``topics_per_shard``: BM25 topics per row
    (default: about two rows per worker). ``keep_models``: models (or searchers) each worker keeps
    loaded for later stages. ``threads``: intra-op threads of a worker's model (default: the
    driver's torch threads, so that every model call on a worker is the local path's to the bit;
    the default pool then has one worker per that many CPUs). None of these changes a result. ``on_result`` is
    called with each row's worker and index as the driver takes it in (progress hooks, and the
    fault tests); ``init_options`` go to ``ray.init``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, batch_size: int = 1,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float | None = None, progress: bool = True,
                 topics_per_shard: int | None = None, rows_per_worker: int = 4, keep_models: int = 2,
                 threads: int | None = None,
                 on_result: Callable[[dict[str, Any]], None] | None = None, init_options: dict[str, Any] | None = None):
        if workers is not None and workers < 1:
            raise WorkbenchError(f"--ray-workers must be at least 1, not {workers}")
        if batch_size < 1:
            raise WorkbenchError(f"--ray-batch-size must be at least 1, not {batch_size}")
        self.address = address
        self.workers = workers
        self.batch_size = batch_size
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.progress = progress
        self.topics_per_shard = topics_per_shard
        self.rows_per_worker = rows_per_worker
        self.keep = max(1, int(keep_models))
        if threads is not None and threads < 1:
            raise WorkbenchError(f"threads must be at least 1, not {threads}")
        self.threads = threads
        self.on_result = on_result
        self.init_options = dict(init_options or {})
        self.reports: list[StageReport] = []

    # -- the cluster
    def start(self) -> Any:
        """Connect to (or start) the cluster once; returns the ``ray`` module."""
        ray = require_ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "ignore_reinit_error": True, **self.init_options}
            if self.address:
                env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
                options.update(address=self.address, runtime_env={"env_vars": env})
            try:
                ray.init(**options)
            except Exception as error:  # noqa: BLE001 - connection errors come in many types
                raise WorkbenchError(f"cannot start or reach the Ray cluster{f' at {self.address}' if self.address else ''}: "
                                     f"{_first_line(error)}") from None
        return ray

    def _pool(self, device: str) -> tuple[int, float]:
        """(actors, GPUs per actor) for a stage whose model runs on ``device``."""
        ray = self.start()
        resources = ray.cluster_resources()
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if device != "cpu" and resources.get("GPU", 0) >= 1 else 0.0
        if self.workers:
            needed = self.workers * (gpus or self.cpus_per_worker)
            have = resources.get("GPU" if gpus else "CPU", 0)
            if not self.address and needed > have:  # a local cluster does not grow: the pool would wait forever
                raise WorkbenchError(f"--ray-workers {self.workers} needs {needed:g} {'GPUs' if gpus else 'CPUs'}; "
                                     f"the local Ray cluster has {have:g}")
            return self.workers, gpus
        if gpus:
            return max(1, int(resources.get("GPU", 1) // gpus)), gpus
        # a worker's model runs the driver's thread count: as many CPUs per worker, not more workers
        per_worker = max(self.cpus_per_worker, float(self.model_threads))
        return max(1, int(resources.get("CPU", 1) // per_worker)), gpus

    @property
    def model_threads(self) -> int:
        """Intra-op threads of a worker's model: ``threads``, or the driver's torch threads."""
        if self.threads:
            return int(self.threads)
        import torch

        return max(1, torch.get_num_threads())

    def _actor_pool(self, device: str) -> tuple[ActorPool, bool]:
        """The experiment's pool for a stage on ``device`` and whether it was started now: the
        running one when it has the same workers and resources on the same cluster, else a new
        one (the old one ended first: on a local cluster its CPUs are needed)."""
        global _LIVE_POOL
        ray = self.start()
        workers, gpus = self._pool(device)
        context = ray.get_runtime_context()  # the node id: a cluster started anew gets a new one
        key = (context.get_node_id(), context.get_job_id(), self.address, workers, self.cpus_per_worker, gpus,
               self.keep)
        if _LIVE_POOL is not None and _LIVE_POOL.key == key:
            return _LIVE_POOL, False
        close_pool()
        started = time.perf_counter()
        remote = ray.remote(StageWorker).options(num_cpus=self.cpus_per_worker, num_gpus=gpus or None,
                                                 # a killed worker is started again and its call retried
                                                 max_restarts=-1, max_task_retries=-1)
        actors = [remote.remote(self.cpus_per_worker, self.keep) for _ in range(workers)]
        try:
            # every worker up before the first row: rows are then dealt out evenly from the start
            ready = ray.get([actor.ready.remote() for actor in actors])
        except Exception as error:  # noqa: BLE001 - a worker that cannot start
            for actor in actors:
                ray.kill(actor)
            raise _as_workbench_error(error, "start") from None
        _LIVE_POOL = ActorPool(key, actors, time.perf_counter() - started, dict(ready))
        return _LIVE_POOL, True

    def _map(self, stage: str, unit: str, rows: list[dict[str, Any]], kind: str, arguments: dict[str, Any],
             key: Any, device: str = "cpu") -> Iterator[tuple[int, Any]]:
        """Rows through the experiment's pool: yields (row index, unpickled payload) as rows finish.
        Each worker builds the component ``kind`` from ``arguments`` at its first row (or keeps the
        one it built for an earlier stage under the same ``key``)."""
        if not rows:
            return
        ray = self.start()
        from collections import deque

        from tqdm.auto import tqdm

        started = time.perf_counter()
        pool, new = self._actor_pool(device)
        pool.stages += 1
        report = StageReport(stage, unit, workers=len(pool.actors), pool={
            "started": new, "start_s": round(pool.start_s, 3) if new else 0.0, "stage_of_pool": pool.stages})
        self.reports.append(report)
        # largest rows first (longest-processing-time order): the last rows to finish are short,
        # so no worker idles long at the end; the order never changes a result
        rows = sorted(rows, key=lambda row: -row.get("items", 0))
        calls = deque(rows[start:start + self.batch_size] for start in range(0, len(rows), self.batch_size))
        idle = deque(pool.actors)
        pending: dict[Any, Any] = {}
        total = int(round(sum(row.get("items", 0) for row in rows)))

        def deal() -> None:
            # one call in flight per worker: a free worker takes the next call, so rows are shared
            # out as workers finish, not queued up front
            while idle and calls:
                actor = idle.popleft()
                pending[actor.run.remote(kind, key, arguments, calls.popleft())] = actor

        finished = False
        with tqdm(total=total, desc=f"{stage} on ray ({len(pool.actors)} workers)", unit=unit, leave=False,
                  disable=not self.progress) as bar:
            try:
                deal()
                while pending:
                    (done,), _ = ray.wait(list(pending), num_returns=1)
                    idle.append(pending.pop(done))
                    results = ray.get(done)
                    deal()  # the worker's next call before the driver works on this one's results
                    for result in results:
                        report.add(result["worker"], result["items"], result["seconds"], result["init_s"])
                        bar.update(result["items"])
                        yield result["index"], pickle.loads(result["payload"])
                        if self.on_result is not None:
                            self.on_result({"stage": stage, "index": result["index"], "worker": result["worker"]})
                finished = True
            except WorkbenchError:
                raise
            except Exception as error:  # noqa: BLE001 - Ray wraps the worker's exception
                raise _as_workbench_error(error, stage) from None
            finally:
                report.wall_s = time.perf_counter() - started
                if not finished and pending:
                    close_pool()  # workers busy with calls nobody will collect: a new pool serves the next stage

    def close(self) -> None:
        """End the experiment's workers (Ray also ends them when this process exits)."""
        close_pool()

    # -- the three stages
    def score_chunks(self, recipe: ModelRecipe, chunks: Sequence[tuple[Sequence[str], Sequence[str]]]
                     ) -> Iterator[tuple[int, np.ndarray]]:
        """Scores of each chunk of (queries, passages), as chunks finish (in any order)."""
        rows = [{"index": i, "queries": list(q), "passages": list(p), "items": len(p)}
                for i, (q, p) in enumerate(chunks)]
        yield from self._map("rerank", "pair", rows, "PairScorer", {"recipe": recipe}, recipe.reuse_key,
                             recipe.device)

    def encode_groups(self, recipe: ModelRecipe, groups: Sequence[Sequence[str]]) -> Iterator[tuple[int, Any]]:
        """Vectors of each group of passages, as one ``encode_passages_uncached`` call on the group
        would give them, yielded as groups complete (in any order).

        With fewer groups than about four per worker, each group is shared out in parts at its
        batch boundaries (the parts form the group's own batches, so the vectors are the same to
        the bit) so that every worker has work until the end."""
        if not groups:
            return
        workers, _ = self._pool(recipe.device)
        parts = max(1, min(8, -(-self.rows_per_worker * workers // len(groups))))
        rows = [{"index": i * parts + part, "texts": list(texts), "part": part, "parts": parts,
                 "items": len(texts) / parts} for i, texts in enumerate(groups) for part in range(parts)]
        received: dict[int, list[tuple[np.ndarray, Any]]] = {}
        for row, (positions, vectors) in self._map("encode", "passage", rows, "PassageEncoder", {"recipe": recipe},
                                                    recipe.reuse_key, recipe.device):
            group = row // parts
            received.setdefault(group, []).append((np.asarray(positions, dtype=np.int64), vectors))
            if len(received[group]) == parts:
                yield group, _assemble(received.pop(group), len(groups[group]))

    def bm25_search(self, index_path: str | Path, config: Any, topics: pd.DataFrame) -> pd.DataFrame:
        """BM25 (or QL, RM3: ``config``, a :class:`~workbench.first_stage.bm25.BM25Config`) top-``k`` of every topic, searched by actors in shards (a run DataFrame, ordered
        as the local searcher's)."""
        from ..first_stage.bm25 import run_from_hits

        qids = topics["qid"].astype(str).tolist()
        queries = topics["query"].astype(str).tolist()
        # about two shards per worker (each actor starts a JVM; shards balance the load), or as set
        workers, _ = self._pool("cpu")
        size = int(self.topics_per_shard or max(1, min(1000, -(-len(qids) // (2 * workers)))))
        rows = [{"index": i, "qids": qids[start:start + size], "queries": queries[start:start + size],
                 "items": len(qids[start:start + size])} for i, start in enumerate(range(0, len(qids), size))]
        found_qids, docnos, scores = [], [], []
        for _, (shard_qids, shard_docnos, shard_scores) in self._map(
                "bm25", "query", rows, "BM25Searcher", {"index_path": str(index_path), "config": config},
                ("BM25Searcher", str(index_path), repr(config))):
            found_qids.extend(shard_qids)
            docnos.extend(shard_docnos)
            scores.extend(shard_scores)
        return run_from_hits(found_qids, docnos, scores)

    # -- what the manifest records
    def bind(self, spec: str, dataset: Any, device: str, model: Any) -> "BoundEngine":
        """This engine bound to one model, the reranker ``spec`` built on ``dataset`` (what a
        reranked system or a learned first stage uses): workers rebuild it and check that its
        fingerprint (and its encoder's, if it has one) equals ``model``'s."""
        data_dir = str(dataset.data_dir) if dataset is not None else None
        name = getattr(dataset, "name", None)
        encoder = getattr(model, "encoder", None)
        exact = settle_exact_path(model, dataset)
        threads = self.model_threads
        scorer = ModelRecipe(spec, name, data_dir, device, "reranker", model.fingerprint, os.getcwd(), exact, threads)
        encoding = (ModelRecipe(spec, name, data_dir, device, "encoder", encoder.fingerprint, os.getcwd(), exact,
                                threads) if encoder is not None else None)
        return BoundEngine(self, scorer, encoding)

    def take_reports(self) -> list[dict[str, Any]]:
        """The stage reports since the last call (each run's manifest records its own)."""
        reports, self.reports = [report.as_dict() for report in self.reports], []
        return reports

    def describe(self) -> dict[str, Any]:
        """The engine and its cluster (the cluster is not started just to describe it)."""
        ray = require_ray()
        described = {"engine": self.name, "ray_address": self.address or "local", "ray_version": ray.__version__,
                     "worker_threads": self.model_threads}
        if ray.is_initialized():
            resources = ray.cluster_resources()
            described.update(cluster_cpus=resources.get("CPU", 0), cluster_gpus=resources.get("GPU", 0))
        return described


@dataclass
class BoundEngine:
    """A :class:`RayEngine` bound to one model: what ``rerank_run`` and the learned first stages
    call (``score_chunks`` with the reranker, ``encode_groups`` with its encoder)."""

    engine: RayEngine
    scorer: ModelRecipe
    encoder: ModelRecipe | None = None

    def score_chunks(self, chunks: Sequence[tuple[Sequence[str], Sequence[str]]]) -> Iterator[tuple[int, np.ndarray]]:
        return self.engine.score_chunks(self.scorer, chunks)

    def encode_groups(self, groups: Sequence[Sequence[str]]) -> Iterator[tuple[int, Any]]:
        if self.encoder is None:
            raise WorkbenchError(f"{self.scorer.spec!r} has no encoder to encode passages with")
        return self.engine.encode_groups(self.encoder, groups)


def _assemble(parts: list[tuple[np.ndarray, Any]], n: int) -> Any:
    """The vectors of a whole group from its parts' (positions, vectors), in the group's order."""
    if len(parts) == 1 and np.array_equal(parts[0][0], np.arange(n)):
        return parts[0][1]
    order = np.argsort(np.concatenate([positions for positions, _ in parts]), kind="stable")
    blocks = [vectors for _, vectors in parts]
    if isinstance(blocks[0], np.ndarray):
        return np.concatenate(blocks)[order]
    import scipy.sparse as sp

    return sp.vstack(blocks, format="csr")[order]


def manifest_fields(reports: list[dict[str, Any]], engine: RayEngine | None) -> dict[str, Any]:
    """Manifest fields of a run: the engine, its workers and each worker's throughput per stage."""
    if engine is None:
        return {"engine": "local", "workers": 1}
    workers = max((report["workers"] for report in reports), default=0)
    return {"engine": "ray", "workers": workers, "engine_stages": reports, **{
        key: value for key, value in engine.describe().items() if key != "engine"}}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _as_workbench_error(error: BaseException, stage: str) -> WorkbenchError:
    """A one-line error from what Ray raised (the worker's own WorkbenchError when there is one)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WorkbenchError):
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
    text = str(error)
    for line in text.splitlines():  # Ray prints the worker's traceback; its last error line says most
        if "WorkbenchError:" in line:
            return WorkbenchError(line.split("WorkbenchError:", 1)[1].strip())
    return WorkbenchError(f"the {stage} stage failed on Ray: {_first_line(error)}")
