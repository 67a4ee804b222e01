"""The whole capacity plan of ``workbench plan``: the stages of a reranking experiment (rerank,
collection encoding, BM25), each measured here or given, their data moved, the table for N
workers and every assumption it rests on (:func:`capacity_plan`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ...core.errors import WorkbenchError
from .arithmetic import (BM25_DEPTH, COLLECTION_PASSAGES, DEFAULT_PRICE_PER_WORKER_HOUR, DEFAULT_WORKERS,
                         DEV_QUERIES, RAY_OVERHEAD_FACTOR, RAY_STARTUP_S, Throughput, Transfer, Workload,
                         check_number, check_workers, format_plan, given_assumption, plan)
from .measure import (load_average, measure_bm25, measure_encoder, measure_reranker, require_device,
                      worker_threads)
from .samples import SAMPLE_PAIRS, data_root
from .transfer import bm25_transfer, encode_transfer, pair_transfer


@dataclass(frozen=True)
class CapacityPlan:
    """A plan's table and everything it assumed (stated above the table when printed)."""

    table: pd.DataFrame
    workloads: tuple[Workload, ...]
    throughputs: tuple[Throughput, ...]
    transfers: tuple[Transfer, ...]
    settings: dict
    assumptions: tuple[str, ...]

    def text(self) -> str:
        return "\n".join(["Assumptions:", *(f"- {line}" for line in self.assumptions), "",
                          format_plan(self.table)])

    def to_json(self) -> dict:
        return {"settings": self.settings, "assumptions": list(self.assumptions),
                "workloads": [asdict(w) for w in self.workloads],
                "throughputs": [{**asdict(t), "source": t.source} for t in self.throughputs],
                "transfers": [{**asdict(t), "bytes_per_item": t.bytes_per_item} for t in self.transfers],
                "rows": self.table.to_dict("records")}


def _worker_line(device: str, threads: int, queries: int, load: str, measured: bool) -> str:
    from ...models.devices import available_cpus  # imports torch: only when planning for real

    if device.strip().lower().startswith("cuda"):
        return f"one worker = one GPU ({device})" + (f"; BM25 (Lucene) runs on a worker's CPU, {threads} thread(s)"
                                                     if queries > 0 else "")
    if not measured:
        return (f"one worker = one Ray worker running its model with {threads} thread(s), the driver's thread count "
                "(every throughput is given: nothing was measured here)")
    return (f"one worker = one Ray worker running its model with {threads} thread(s), the driver's thread count "
            f"(as Ray workers do; a pool has one worker per {threads} CPU(s)): measured so on this machine "
            f"({available_cpus()} CPUs, 1-min load average {load} before measuring: other processes slow measured "
            "rates down); each rate is the steady state after the model is loaded and warmed up, its load time "
            "is shown apart (load s)")


def capacity_plan(reranker: str, pairs: int, workers: Sequence[int] = DEFAULT_WORKERS, *, device: str = "cpu",
                  throughput: float | None = None, encoder: str | None = None,
                  passages: int = COLLECTION_PASSAGES, encode_throughput: float | None = None,
                  queries: int = DEV_QUERIES, bm25_throughput: float | None = None,
                  price_per_worker_hour: float = DEFAULT_PRICE_PER_WORKER_HOUR,
                  overhead_factor: float | None = None, startup_s: float | None = None,
                  sample: int = SAMPLE_PAIRS, threads: int | None = None, data_dir: str | Path | None = None,
                  pairs_label: str = "") -> CapacityPlan:
    """Reranking ``pairs`` with ``reranker``, encoding ``passages`` with ``encoder``'s encoder (when
    one is named; ``passages=0``: no encoding stage) and BM25 for ``queries`` (0: none) on each
    number of ``workers``. A throughput given here replaces the measurement (marked ``given``);
    ``threads``: a worker's intra-op threads (default: the driver's, as on Ray, or a spec's
    ``threads=N``); ``overhead_factor``/``startup_s`` default to
    :data:`RAY_OVERHEAD_FACTOR`/:data:`RAY_STARTUP_S`."""
    workers = check_workers(workers)
    if sample < 1:
        raise WorkbenchError(f"the measurement sample must be at least 1 item, got {sample}")
    if pairs < 1:
        raise WorkbenchError(f"the number of pairs must be positive, got {pairs}")
    if passages < 0 or queries < 0:
        raise WorkbenchError("--passages and --queries cannot be negative (0 leaves the stage out)")
    if encode_throughput is not None and not encoder:
        raise WorkbenchError("--encode-throughput needs --encoder (the encoder whose throughput it is)")
    overhead = RAY_OVERHEAD_FACTOR if overhead_factor is None else overhead_factor
    startup = RAY_STARTUP_S if startup_s is None else startup_s
    check_number("overhead factor", overhead, minimum=0.0, strict=True)
    check_number("start-up seconds", startup, minimum=0.0)
    check_number("price per worker-hour", price_per_worker_hour, minimum=0.0)
    encoding = bool(encoder) and passages > 0
    missing = [flag for flag, needed in (("--throughput", throughput is None),
                                         ("--encode-throughput", encoding and encode_throughput is None)) if needed]
    if missing:  # before any slow work: a GPU figure cannot be measured without a GPU
        require_device(device, " and ".join(missing))
    given = {stage: given_assumption(stage, unit, rate, f"per {worker} worker{of}")
             for stage, unit, rate, worker, of in (
                 ("rerank", "pairs", throughput, device, f" for {reranker}"),
                 ("encode", "passages", encode_throughput, device, f" for {encoder}"),
                 ("bm25", "queries", bm25_throughput, "CPU", " on the full index"))
             if rate is not None}
    root = data_root(data_dir)
    load = load_average()

    workloads = [Workload("rerank", pairs, "pairs", pairs_label or f"{pairs:,} pairs")]
    stages = [given.get("rerank") or measure_reranker(reranker, device, sample, threads, root)]
    transfers = [pair_transfer(root)]
    if encoding:
        workloads.append(Workload("encode", passages, "passages", f"{passages:,} collection passages ({encoder})"))
        stages.append(given.get("encode") or measure_encoder(encoder, device, sample, threads, root))
        transfers.append(encode_transfer(encoder, root, threads=threads))
    if queries > 0:
        workloads.append(Workload("bm25", queries, "queries", f"{queries:,} queries, BM25 top-{BM25_DEPTH}"))
        stages.append(given.get("bm25") or measure_bm25(root, threads=threads))
        transfers.append(bm25_transfer(root))

    table = plan(workloads, stages, workers, price_per_worker_hour, overhead, startup, transfers)
    ray = ("measured by bench/bench_ray.py on a 2-core machine (docs/scale.md)"
           if (overhead_factor, startup_s) == (None, None) else "given")
    measured = [t.threads for t in stages if t.threads is not None]
    worker_count = measured[0] if measured else (threads if threads is not None else worker_threads(reranker))
    assumptions = [
        f"wall = items / (workers x per-worker rate) x overhead {overhead:g} + start-up {startup:g} s; every worker "
        f"is paid for the whole wall time at ${price_per_worker_hour:g} per worker-hour",
        _worker_line(device, worker_count, queries, load, bool(measured)),
        "throughput scales linearly with workers (no contention for shared storage or network modelled)",
        f"Ray overhead factor {overhead:g} and start-up {startup:g} s: {ray}",
        *(f"{w.stage}: {w.description}; {t.per_worker_per_s:,.2f} {t.unit}/s per worker, {t.how}"
          for w, t in zip(workloads, stages)),
        *(f"data moved, {t.stage}: {t.bytes_in:,.0f} B in + {t.bytes_out:,.0f} B back per item ({t.how})"
          for t in transfers),
    ]
    if queries > 0 and bm25_throughput is None:
        assumptions.append("BM25 per-query cost on the full 8.8M-passage index is higher than on the mini index "
                           "measured here: treat the bm25 rows as a lower bound on time, or pass --bm25-throughput")
    settings = {"reranker": reranker, "encoder": encoder, "device": device, "workers": workers, "pairs": pairs,
                "passages": passages if encoding else 0, "queries": queries, "threads": worker_count,
                "sample": sample, "price_per_worker_hour": price_per_worker_hour, "overhead_factor": overhead,
                "startup_s": startup}
    return CapacityPlan(table, tuple(workloads), tuple(stages), tuple(transfers), settings, tuple(assumptions))
