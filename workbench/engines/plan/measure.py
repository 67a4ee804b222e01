"""One worker's steady-state throughput, measured here on the real code paths and data.

A measurement does what a Ray worker does, in the same order, and times each part apart:

1. **load** the model (timed: ``load_s``, the worker's start-up, reported apart and never counted
   in the rate), with the thread count a worker really gets: the driver's (a Ray worker runs its
   model with the driver's torch thread count, ``RayEngine.model_threads``);
2. **settle** ``backend=auto``'s exact path as the driver does before a pool runs
   (:func:`workbench.engines.ray.settle_exact_path`: once per machine, cached; workers run the
   driver's choice and never measure), so no candidate path's timing lands in the rate;
3. **warm up** on other items (untimed: first-call costs are not the steady state);
4. **time** the sample back to back until at least :data:`MIN_TIMED_S` seconds have run.

:func:`measure_reranker` times ``score_pairs`` on DL19 official-BM25 candidates,
:func:`measure_encoder` ``encode_passages_uncached`` on collection passages and
:func:`measure_bm25` Pyserini BM25 over the MINI collection's Lucene index (far smaller than the
full 8.8M-passage index: its queries/s is an optimistic bound there).
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...core.errors import WorkbenchError
from ...data.datasets import get_dataset
from .arithmetic import BM25_DEPTH, Throughput
from .samples import SAMPLE_PAIRS, candidate_pairs, collection_of, collection_sample, data_root

#: untimed warm-up items before a timed sample
WARMUP_ITEMS = 32
BM25_SAMPLE_QUERIES = 200
BM25_WARMUP_QUERIES = 20
#: the timed sample runs back to back until this many seconds have passed (one pass of a fast
#: model is too short to time), at most :data:`MAX_TIMED_PASSES` times
MIN_TIMED_S = 2.0
MAX_TIMED_PASSES = 8


@dataclass(frozen=True)
class LoadedModel:
    """A reranker loaded as a worker loads it: ``load_s`` seconds to build (start-up), then
    ``choice_s`` seconds for backend=auto to settle on its exact ``path`` (0 when cached or
    not auto: a once-per-machine cost of the driver, not of a worker)."""

    model: Any
    threads: int
    load_s: float
    choice_s: float
    path: str | None

    def startup(self) -> str:
        """``model load 3.2 s (start-up, not in the rate)`` and the backend=auto choice, if any."""
        text = f"model load {self.load_s:.1f} s (start-up, not in the rate)"
        if self.choice_s >= 0.05:
            text += (f"; backend=auto chose {self.path} in {self.choice_s:.1f} s beforehand (once per machine, "
                     "on the driver: not in the rate)")
        return text


def require_device(device: str, flag: str = "--throughput") -> None:
    """A GPU throughput cannot be measured without a GPU: say so and what to pass instead."""
    name = (device or "cpu").strip().lower()
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise WorkbenchError(f"cannot measure GPU throughput here: device {device!r} requested but CUDA is not "
                                 f"available on this machine; give one GPU worker's throughput with {flag}")


def worker_threads(spec: str | None = None, threads: int | None = None) -> int:
    """The intra-op threads one worker runs a model with: ``threads`` when given, else the spec's
    ``threads=N``, else the driver's torch thread count (at most this machine's CPUs): a Ray
    worker runs the model with the driver's count."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise WorkbenchError(f"threads must be a positive integer, got {threads!r}")
        return threads
    if spec:
        from ...rerankers.registry import parse_reranker_spec

        named = parse_reranker_spec(spec)[1].get("threads")
        if named is not None and str(named).strip().isdigit() and int(named) >= 1:
            return int(named)
    import torch

    from ...models.devices import available_cpus

    return max(1, min(torch.get_num_threads(), available_cpus()))


def load_reranker(spec: str, device: str = "cpu", threads: int | None = None,
                  data_dir: str | Path | None = None) -> LoadedModel:
    """``spec`` built as a worker builds it (timed), its backend=auto path settled (timed apart);
    kept per process, so a second stage of the same model reports the same load."""
    return _load(spec, device, worker_threads(spec, threads), data_root(data_dir))


@functools.lru_cache(maxsize=4)
def _load(spec: str, device: str, threads: int, root: Path) -> LoadedModel:
    from ...models.devices import torch_threads
    from ...rerankers.protocol import RerankContext
    from ...rerankers.registry import REGISTRY, get_reranker, parse_reranker_spec
    from ..ray import settle_exact_path

    entry, _ = REGISTRY.lookup(parse_reranker_spec(spec)[0])
    overrides: dict[str, Any] = {}
    if any(option.name == "threads" for option in entry.options):
        overrides["threads"] = threads  # ONNX Runtime sessions take their threads from the option
    dataset = get_dataset("dl19", root)
    context = RerankContext(collection=collection_of(root), dataset=dataset, device=device)
    with torch_threads(threads):
        started = time.perf_counter()
        reranker = get_reranker(spec, context, **overrides)
        load_s = time.perf_counter() - started
        if hasattr(reranker, "cache_passages"):
            reranker.cache_passages = False  # time the encoding, not the vector cache
        started = time.perf_counter()
        path = settle_exact_path(reranker, dataset)
        choice_s = time.perf_counter() - started
    return LoadedModel(reranker, threads, load_s, choice_s, path)


def _encoder(loaded: LoadedModel, spec: str) -> Any:
    encoder = getattr(loaded.model, "encoder", None)
    if encoder is None:
        raise WorkbenchError(f"{spec!r} has no passage encoder to plan a collection encoding with "
                             "(use an encoder reranker: dense-minilm, splade-tiny, dense:<model>, splade:<model>)")
    return encoder


def load_encoder(spec: str, device: str = "cpu", threads: int | None = None,
                 data_dir: str | Path | None = None) -> tuple[Any, LoadedModel]:
    """(the passage encoder of reranker ``spec``, the loaded reranker)."""
    loaded = load_reranker(spec, device, threads, data_dir)
    return _encoder(loaded, spec), loaded


def _timed(work: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def steady_rate(work: Callable[..., Any], *args: Any, items: int, min_seconds: float = MIN_TIMED_S,
                max_passes: int = MAX_TIMED_PASSES) -> tuple[float, float, int]:
    """(items/s, seconds, passes): ``work(*args)``, which processes ``items``, run back to back
    until it has run ``min_seconds`` in all (or ``max_passes`` times); call it loaded and warm."""
    seconds, passes = 0.0, 0
    while passes < max(1, max_passes) and (passes == 0 or seconds < min_seconds):
        seconds += _timed(work, *args)
        passes += 1
    return passes * items / seconds, seconds, passes


def load_average() -> str:
    """The 1-minute load average before measuring (other processes slow measured rates down)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # not Unix
        return "unknown"


def numerics(model: Any) -> str:
    """``fp32 onnx``: what a model computes in, and with which backend."""
    found = model.numerics() if hasattr(model, "numerics") else {
        "precision": getattr(model, "precision", ""), "backend": getattr(model, "backend", "")}
    return " ".join(value for value in (found.get("precision"), found.get("backend")) if value) or "-"


def _passes(passes: int) -> str:
    return f" x {passes} passes" if passes > 1 else ""


def measure_reranker(spec: str, device: str = "cpu", sample_pairs: int = SAMPLE_PAIRS, threads: int | None = None,
                     data_dir: str | Path | None = None, warmup_pairs: int = WARMUP_ITEMS) -> Throughput:
    """Steady-state pairs/s of ``reranker.score_pairs`` for ONE worker: ``sample_pairs`` DL19
    official-BM25 pairs (:func:`~.samples.candidate_pairs`) after the model is loaded (timed
    apart) and warmed up on other pairs, with a worker's thread count (:func:`worker_threads`);
    a vector reranker encodes its passages (``cache_passages = False``), as on a fresh worker."""
    from ...models.devices import torch_threads

    require_device(device, "--throughput")
    root = data_root(data_dir)
    queries, passages = candidate_pairs(root, warmup_pairs + sample_pairs)
    loaded = load_reranker(spec, device, threads, root)
    reranker = loaded.model
    with torch_threads(loaded.threads):
        if warmup_pairs:
            reranker.score_pairs(queries[sample_pairs:], passages[sample_pairs:])  # warm-up (other queries)
        rate, seconds, passes = steady_rate(reranker.score_pairs, queries[:sample_pairs], passages[:sample_pairs],
                                            items=sample_pairs)
    n_queries = len(set(queries[:sample_pairs]))
    return Throughput("rerank", "pairs", rate, True,
                      f"measured: {spec} ({numerics(reranker)}) score_pairs on {device}, {loaded.threads} thread(s), "
                      f"{sample_pairs} DL19 official-BM25 pairs ({n_queries} queries){_passes(passes)} in "
                      f"{seconds:.2f} s after a {warmup_pairs}-pair warm-up; {loaded.startup()}",
                      load_s=loaded.load_s, threads=loaded.threads)


def measure_encoder(spec: str, device: str = "cpu", sample_passages: int = SAMPLE_PAIRS, threads: int | None = None,
                    data_dir: str | Path | None = None, warmup_passages: int = WARMUP_ITEMS) -> Throughput:
    """Steady-state passages/s of ``reranker.encoder.encode_passages_uncached`` for ONE worker on
    ``sample_passages`` random collection passages (loaded, timed apart, and warmed up on others)."""
    from ...models.devices import torch_threads

    require_device(device, "--encode-throughput")
    root = data_root(data_dir)
    encoder, loaded = load_encoder(spec, device, threads, root)
    texts = collection_sample(root, warmup_passages + sample_passages, seed=1)
    with torch_threads(loaded.threads):
        if warmup_passages:
            encoder.encode_passages_uncached(texts[sample_passages:])
        rate, seconds, passes = steady_rate(encoder.encode_passages_uncached, texts[:sample_passages],
                                            items=sample_passages)
    return Throughput("encode", "passages", rate, True,
                      f"measured: {spec} ({numerics(encoder)}) encode_passages_uncached on {device}, "
                      f"{loaded.threads} thread(s), {sample_passages} random collection passages{_passes(passes)} in "
                      f"{seconds:.2f} s after a {warmup_passages}-passage warm-up; {loaded.startup()}",
                      load_s=loaded.load_s, threads=loaded.threads)


def measure_bm25(data_dir: str | Path | None = None, queries: int = BM25_SAMPLE_QUERIES, k: int = BM25_DEPTH,
                 threads: int | None = None, warmup_queries: int = BM25_WARMUP_QUERIES) -> Throughput:
    """Steady-state queries/s of Pyserini BM25 (top-``k``, a worker's threads) for ``queries``
    dev-small topics over the MINI collection's Lucene index (built once and cached; opening the
    searcher is the worker's start-up, timed apart).

    The mini index holds ~53k passages; the full 8.8M-passage index has posting lists ~170x longer,
    so a query costs more there: this figure is an optimistic bound for the full collection."""
    from ...first_stage.bm25 import BM25Config, BM25Retriever
    from ...first_stage.lucene import build_index

    threads = worker_threads(None, threads)
    root = data_root(data_dir)
    collection = collection_of(root)
    topics = get_dataset("dev-small", root).topics
    if len(topics) < queries + warmup_queries:
        raise WorkbenchError(f"dev-small has {len(topics)} topics; asked for {queries} (+{warmup_queries} warm-up)")
    index = build_index(collection)
    started = time.perf_counter()
    retriever = BM25Retriever(index.path, BM25Config(k=k, threads=threads))
    load_s = time.perf_counter() - started
    if warmup_queries:
        retriever.search(topics.iloc[queries:queries + warmup_queries], k=k)
    rate, seconds, passes = steady_rate(retriever.search, topics.iloc[:queries], k, items=queries)
    return Throughput("bm25", "queries", rate, True,
                      f"measured on the MINI index ({len(collection):,} passages, not 8.8M): Pyserini BM25 k={k}, "
                      f"{threads} thread(s), {queries} dev-small queries{_passes(passes)} in {seconds:.2f} s; "
                      f"searcher opened in {load_s:.1f} s (start-up, not in the rate); the full index's "
                      "posting lists are far longer, so this is an optimistic bound (give --bm25-throughput)",
                      load_s=load_s, threads=threads)
