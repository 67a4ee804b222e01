"""The driver: :class:`RayEngine` joins (or starts) the cluster, sizes the experiment's pool, cuts
each of the three stages (reranking, collection encoding, BM25) into the rows the local path would
process and puts the results back together as the local path would; :class:`BoundEngine` is the
engine bound to one model, what the reranking loop and the learned first stages call.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from ...core.errors import WorkbenchError, first_line
from .jvm_signals import require_ray
from .pool import ActorPool, close_pool, deal_rows, open_pool
from .recipes import ModelRecipe, settle_exact_path
from .reports import StageReport

if TYPE_CHECKING:
    import pandas as pd

#: environment a worker needs to find what the driver finds (data, caches, offline hub)
FORWARDED_ENV = ("WORKBENCH_DATA", "WORKBENCH_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
                 "JAVA_HOME", "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "WORKBENCH_DATASET_FILES", "IR_DATASETS_HOME")

#: CPUs Ray reserves for each actor of the pool (on a CPU stage the default pool still has one
#: worker per ``model_threads`` CPUs: see :meth:`RayEngine._pool`)
CPUS_PER_WORKER = 1.0

#: with fewer passage groups than this many per worker, groups are shared out in parts
ROWS_PER_WORKER = 4


class RayEngine:
    """Runs reranking, collection encoding and BM25 on a Ray cluster (see :mod:`workbench.engines.ray`).

    ``address``: an existing cluster (``auto``, ``ray://host:10001``); None starts a local one
    on this machine (or joins the one this process already started). ``workers``: actors of the
    experiment's pool, started at the first stage and kept for the next ones (default: the
    cluster's CPUs / ``threads``, or its GPUs, one per actor, when the device is a GPU).
    ``batch_size``: rows (chunks of pairs, groups of passages, shards of topics) per actor call.
    ``topics_per_shard``: BM25 topics per row (default: about two rows per worker).
    ``keep_models``: models (or searchers) each worker keeps loaded for later stages. ``threads``:
    intra-op threads of a worker's model (default: the driver's torch threads, so that every model
    call on a worker is the local path's to the bit; the default pool then has one worker per that
    many CPUs). None of these changes a result. ``on_result`` is called with each row's worker and
    index as the driver takes it in (progress hooks, and the fault tests); ``init_options`` go to
    ``ray.init``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, batch_size: int = 1,
                 progress: bool = True, topics_per_shard: int | None = None, keep_models: int = 2,
                 threads: int | None = None,
                 on_result: Callable[[dict[str, Any]], None] | None = None, init_options: dict[str, Any] | None = None):
        if workers is not None and workers < 1:
            raise WorkbenchError(f"--ray-workers must be at least 1, not {workers}")
        if batch_size < 1:
            raise WorkbenchError(f"--ray-batch-size must be at least 1, not {batch_size}")
        self.address = address
        self.workers = workers
        self.batch_size = batch_size
        self.progress = progress
        self.topics_per_shard = topics_per_shard
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
                                     f"{first_line(error, 300)}") from None
        return ray

    def _pool(self, device: str) -> tuple[int, float]:
        """(actors, GPUs per actor) for a stage whose model runs on ``device``."""
        ray = self.start()
        resources = ray.cluster_resources()
        gpus = 1.0 if device != "cpu" and resources.get("GPU", 0) >= 1 else 0.0
        if self.workers:
            needed = self.workers * (gpus or CPUS_PER_WORKER)
            have = resources.get("GPU" if gpus else "CPU", 0)
            if not self.address and needed > have:  # a local cluster does not grow: the pool would wait forever
                raise WorkbenchError(f"--ray-workers {self.workers} needs {needed:g} {'GPUs' if gpus else 'CPUs'}; "
                                     f"the local Ray cluster has {have:g}")
            return self.workers, gpus
        if gpus:
            return max(1, int(resources.get("GPU", 1) // gpus)), gpus
        # a worker's model runs the driver's thread count: as many CPUs per worker, not more workers
        per_worker = max(CPUS_PER_WORKER, float(self.model_threads))
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
        ray = self.start()
        workers, gpus = self._pool(device)
        context = ray.get_runtime_context()  # the node id: a cluster started anew gets a new one
        key = (context.get_node_id(), context.get_job_id(), self.address, workers, CPUS_PER_WORKER, gpus,
               self.keep)
        return open_pool(ray, key, workers, CPUS_PER_WORKER, gpus, self.keep)

    def _map(self, stage: str, unit: str, rows: list[dict[str, Any]], kind: str, arguments: dict[str, Any],
             key: Any, device: str = "cpu") -> Iterator[tuple[int, Any]]:
        """Rows through the experiment's pool: yields (row index, unpickled payload) as rows finish.
        Each worker builds the component ``kind`` from ``arguments`` at its first row (or keeps the
        one it built for an earlier stage under the same ``key``)."""
        if not rows:
            return
        ray = self.start()
        started = time.perf_counter()
        pool, new = self._actor_pool(device)
        pool.stages += 1
        report = StageReport(stage, unit, workers=len(pool.actors), pool={
            "started": new, "start_s": round(pool.start_s, 3) if new else 0.0, "stage_of_pool": pool.stages})
        self.reports.append(report)
        yield from deal_rows(ray, pool, report, rows, kind, key, arguments, started=started,
                             batch_size=self.batch_size, progress=self.progress, on_result=self.on_result)

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
        parts = max(1, min(8, -(-ROWS_PER_WORKER * workers // len(groups))))
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
        from ...first_stage.bm25 import run_from_hits

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
