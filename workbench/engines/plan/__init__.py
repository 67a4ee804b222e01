"""Capacity planning: one worker's throughput turned into wall time, worker-hours, cost and data
moved for N workers (``workbench plan``).

A stage is declared as values: its :class:`Workload` (how many items), a :class:`Throughput`
(items per second of ONE worker in its steady state: a Ray worker running its model with the
driver's thread count, or one GPU), measured here or given, and a :class:`Transfer` (bytes moved
per item, measured on the real data). :func:`plan` is pure arithmetic over them, one row per
(stage, workers)::

    wall_s       = items / (workers * per_worker_per_s) * overhead_factor + startup_s
    worker_hours = workers * wall_s / 3600
    cost         = worker_hours * price_per_worker_hour

Modules, by job:

* :mod:`.arithmetic` — the declared values, the Ray overhead constants, :func:`plan` and the table;
* :mod:`.arguments` — ``--workers`` and ``--pairs`` parsing;
* :mod:`.samples` — the real pairs and passages measured on;
* :mod:`.measure` — one worker's steady-state rate: model load timed apart, backend=auto settled,
  warm-up, then the timed sample (:func:`measure_reranker`, :func:`measure_encoder`,
  :func:`measure_bm25`);
* :mod:`.transfer` — bytes moved per pair, passage and query;
* :mod:`.capacity` — the whole plan with its assumptions (:func:`capacity_plan`).
"""
from .arguments import parse_pairs, parse_workers
from .arithmetic import (BM25_DEPTH, COLLECTION_PASSAGES, DEFAULT_PRICE_PER_WORKER_HOUR, DEFAULT_WORKERS,
                         DEV_QUERIES, RAY_OVERHEAD_FACTOR, RAY_STARTUP_S, Throughput, Transfer, Workload,
                         check_workers, format_duration, format_plan, given_throughput, plan)
from .capacity import CapacityPlan, capacity_plan
from .measure import (BM25_SAMPLE_QUERIES, BM25_WARMUP_QUERIES, MIN_TIMED_S, WARMUP_ITEMS, LoadedModel,
                      load_reranker, measure_bm25, measure_encoder, measure_reranker, require_device, steady_rate,
                      worker_threads)
from .samples import PAIRS_PER_QUERY, SAMPLE_PAIRS, candidate_pairs, collection_sample
from .transfer import (OUTPUT_SAMPLE_PASSAGES, SCORE_BYTES, SPARSE_ENTRY_BYTES, VECTOR_VALUE_BYTES, bm25_transfer,
                       encode_transfer, output_bytes, pair_transfer)

__all__ = [
    "BM25_DEPTH", "BM25_SAMPLE_QUERIES", "BM25_WARMUP_QUERIES", "COLLECTION_PASSAGES", "CapacityPlan",
    "DEFAULT_PRICE_PER_WORKER_HOUR", "DEFAULT_WORKERS", "DEV_QUERIES", "LoadedModel", "MIN_TIMED_S",
    "OUTPUT_SAMPLE_PASSAGES", "PAIRS_PER_QUERY", "RAY_OVERHEAD_FACTOR", "RAY_STARTUP_S", "SAMPLE_PAIRS",
    "SCORE_BYTES", "SPARSE_ENTRY_BYTES", "Throughput", "Transfer", "VECTOR_VALUE_BYTES", "WARMUP_ITEMS", "Workload",
    "bm25_transfer", "candidate_pairs", "capacity_plan", "check_workers", "collection_sample", "encode_transfer",
    "format_duration", "format_plan", "given_throughput", "load_reranker", "measure_bm25", "measure_encoder",
    "measure_reranker", "output_bytes", "pair_transfer", "parse_pairs", "parse_workers", "plan", "require_device",
    "steady_rate", "worker_threads",
]
