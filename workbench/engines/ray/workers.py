"""What runs inside a Ray worker: :class:`StageWorker`, the actor of the experiment's pool, and the
components it builds and keeps (:class:`PairScorer` scores chunks of pairs, :class:`PassageEncoder`
encodes groups of passages, :class:`BM25Searcher` searches shards of topics). Each row a component
takes is one the local path would process in one call, so its result is the local result; the
actor pickles it back to the driver with its timing.
"""
from __future__ import annotations

import os
import pickle
import socket
import time
from typing import Any

import numpy as np

from .jvm_signals import leave_signals_to_the_jvm
from .recipes import ModelRecipe


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PairScorer:
    """Scores rows of (chunk index, queries, passages) with the recipe's reranker."""

    def __init__(self, recipe: ModelRecipe, cpus: float = 1.0):
        from ...models.devices import set_torch_threads

        self.threads = recipe.threads or max(1, int(cpus))
        set_torch_threads(self.threads)
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
        from ...models.devices import set_torch_threads

        self.threads = recipe.threads or max(1, int(cpus))
        set_torch_threads(self.threads)
        self.encoder = recipe.build()

    def __call__(self, row: dict[str, Any]) -> tuple[Any, int]:
        from ...models.batching import contiguous_parts

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

        from ...first_stage.bm25 import BM25Retriever

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

        from ...models.devices import set_torch_threads

        started = time.perf_counter()
        leave_signals_to_the_jvm()
        set_torch_threads(cpus)
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
        from ...models.devices import set_torch_threads

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
        set_torch_threads(getattr(component, "threads", self.cpus))  # the component's own (the driver's) count
        results = []
        for row in rows:
            started = time.perf_counter()
            payload, items = component(row)
            results.append({"index": int(row["index"]), "payload": pickle.dumps(payload, protocol=5),
                            "seconds": time.perf_counter() - started, "items": int(items), "init_s": init_s,
                            "worker": self.worker})
            init_s = 0.0
        return results
