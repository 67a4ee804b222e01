"""Capacity planning: one worker's throughput turned into wall time, worker-hours, cost and data
moved for N workers (``workbench plan``).

A stage is declared as values: its :class:`Workload` (how many items), a :class:`Throughput`
(items per second of ONE worker: one CPU thread, as one Ray worker is one CPU, or one GPU),
measured here or given, and a :class:`Transfer` (bytes moved per item, measured on the real
data). :func:`plan` is pure arithmetic over them, one row per (stage, workers)::

    wall_s       = items / (workers * per_worker_per_s) * overhead_factor + startup_s
    worker_hours = workers * wall_s / 3600
    cost         = worker_hours * price_per_worker_hour

The measuring functions time the real code paths on real pairs, passages and queries:
:func:`measure_reranker` (``score_pairs`` on DL19 official-BM25 candidates),
:func:`measure_encoder` (``encode_passages_uncached`` on collection passages) and
:func:`measure_bm25` (Pyserini BM25 over the MINI collection's Lucene index, which is far smaller
than the full 8.8M-passage index: its queries/s is an optimistic bound there).
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.datasets import get_dataset, resolve_data_dir
from ..data.trec import read_run

# Ray's cost on top of the work itself, measured by bench/bench_ray.py on this 2-core machine
# (docs/scale.md, "Ray overhead"; the CLI's --overhead and --startup-s override them):
# - a factor on the compute time: Ray workers' own throughput (busy time) was 37-41 passages/s
#   against 43.1 for one worker measured alone (two workers sharing a machine's memory and caches,
#   plus per-row serialisation), and at most ~2 s of load imbalance per stage;
# - start-up, once per experiment: the actor pool starts at the first stage and every later stage
#   of the same eval reuses it with its models loaded; 5-6 s between the first stage's start and
#   its workers' steady state (Python processes importing torch, loading the model: ~3.2 s), measured
#   as stage wall time minus the busiest worker's work. A plan's stage is priced as a first stage.
RAY_OVERHEAD_FACTOR = 1.1
RAY_STARTUP_S = 6.0

#: the full MS MARCO workloads the planner defaults to
DEV_QUERIES = 6980          # MS MARCO dev-small
BM25_DEPTH = 1000           # BM25 top-1000 per query
COLLECTION_PASSAGES = 8_841_823
DEFAULT_WORKERS = (1, 8, 32, 128)
DEFAULT_PRICE_PER_WORKER_HOUR = 0.05

#: measurement sizes
SAMPLE_PAIRS = 256
PAIRS_PER_QUERY = 64        # candidates per query in the reranking sample (a real list has 1,000)
WARMUP_ITEMS = 32
BM25_SAMPLE_QUERIES = 200
BM25_WARMUP_QUERIES = 20
OUTPUT_SAMPLE_PASSAGES = 64

#: bytes of one result: a float64 score, a float32 vector component, a sparse (int32 id, float32) entry
SCORE_BYTES = 8
VECTOR_VALUE_BYTES = 4
SPARSE_ENTRY_BYTES = 8

@dataclass(frozen=True)
class Workload:
    """What a stage has to process: ``items`` of ``unit`` (pairs, passages, queries)."""

    stage: str
    items: int
    unit: str
    description: str = ""


@dataclass(frozen=True)
class Throughput:
    """Items per second of ONE worker for a stage; ``measured`` here or given (an assumption),
    ``how`` says which."""

    stage: str
    unit: str
    per_worker_per_s: float
    measured: bool
    how: str

    @property
    def source(self) -> str:
        return "measured" if self.measured else "given"


@dataclass(frozen=True)
class Transfer:
    """Mean bytes moved per item: ``bytes_in`` sent to a worker, ``bytes_out`` sent back."""

    stage: str
    bytes_in: float
    bytes_out: float
    how: str

    @property
    def bytes_per_item(self) -> float:
        return self.bytes_in + self.bytes_out


def given_throughput(stage: str, unit: str, per_worker_per_s: float, how: str = "") -> Throughput:
    """A throughput the user states (e.g. of a GPU worker that cannot be measured here)."""
    if not (isinstance(per_worker_per_s, (int, float)) and math.isfinite(per_worker_per_s)
            and per_worker_per_s > 0):
        raise WorkbenchError(f"the {stage} throughput must be a positive number of {unit}/s, "
                             f"got {per_worker_per_s!r}")
    return Throughput(stage, unit, float(per_worker_per_s), False, how or f"given: {per_worker_per_s:g} {unit}/s")


def _given(stage: str, unit: str, rate: float, what: str) -> Throughput:
    checked = given_throughput(stage, unit, rate)
    return replace(checked, how=f"given: {checked.per_worker_per_s:g} {unit}/s {what} (an assumption, not measured)")


# ----------------------------------------------------------------------------- arithmetic


def plan(workloads: Sequence[Workload], throughputs: Sequence[Throughput], workers: Sequence[int],
         price_per_worker_hour: float = DEFAULT_PRICE_PER_WORKER_HOUR,
         overhead_factor: float | None = None, startup_s: float | None = None,
         transfers: Sequence[Transfer] = ()) -> pd.DataFrame:
    """One row per (stage, workers): items, per-worker throughput and whether it was measured or
    given, wall time (``wall_s`` and ``wall`` as h/min), worker-hours, cost, and the data moved
    (``bytes_per_item``, ``data_gb``; NaN for a stage without a :class:`Transfer`).

    ``wall_s = items / (workers * per_worker_per_s) * overhead_factor + startup_s``; every worker
    is paid for the whole wall time, start-up included. ``overhead_factor``/``startup_s`` default
    to :data:`RAY_OVERHEAD_FACTOR`/:data:`RAY_STARTUP_S` (read when called).
    """
    overhead_factor = RAY_OVERHEAD_FACTOR if overhead_factor is None else overhead_factor
    startup_s = RAY_STARTUP_S if startup_s is None else startup_s
    workers = check_workers(workers)
    _check_number("price per worker-hour", price_per_worker_hour, minimum=0.0)
    _check_number("overhead factor", overhead_factor, minimum=0.0, strict=True)
    _check_number("start-up seconds", startup_s, minimum=0.0)
    by_stage = {t.stage: t for t in throughputs}
    moved = {t.stage: t for t in transfers}
    rows = []
    for workload in workloads:
        if workload.items < 0:
            raise WorkbenchError(f"the {workload.stage} workload has a negative number of items ({workload.items})")
        throughput = by_stage.get(workload.stage)
        if throughput is None:
            raise WorkbenchError(f"no throughput for stage {workload.stage!r} (measure it or give it)")
        if throughput.unit != workload.unit:
            raise WorkbenchError(f"the {workload.stage} throughput is in {throughput.unit}/s but the workload "
                                 f"counts {workload.unit}")
        _check_number(f"{workload.stage} throughput", throughput.per_worker_per_s, minimum=0.0, strict=True)
        transfer = moved.get(workload.stage)
        per_item = transfer.bytes_per_item if transfer is not None else float("nan")
        for count in workers:
            wall_s = workload.items / (count * throughput.per_worker_per_s) * overhead_factor + startup_s
            worker_hours = count * wall_s / 3600.0
            rows.append({
                "stage": workload.stage, "workers": count, "items": workload.items, "unit": workload.unit,
                "per_worker_per_s": throughput.per_worker_per_s, "throughput": throughput.source,
                "wall_s": wall_s, "wall": format_duration(wall_s), "worker_hours": worker_hours,
                "cost": worker_hours * price_per_worker_hour,
                "bytes_per_item": per_item, "data_gb": workload.items * per_item / 1e9,
            })
    return pd.DataFrame(rows, columns=["stage", "workers", "items", "unit", "per_worker_per_s", "throughput",
                                       "wall_s", "wall", "worker_hours", "cost", "bytes_per_item", "data_gb"])


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min 30 s``, ``64 h 38 min`` (rounded to the unit shown last)."""
    if not math.isfinite(seconds):
        return "inf"
    if seconds < 59.5:
        return f"{seconds:.0f} s" if seconds >= 9.5 else f"{seconds:.1f} s"
    if seconds < 3570:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def format_plan(table: pd.DataFrame) -> str:
    """The plan as an aligned text table (numbers rounded, thousands separated)."""
    if table.empty:
        return "(nothing to plan)"
    shown = pd.DataFrame({
        "stage": table["stage"],
        "workers": table["workers"],
        "items": [f"{n:,} {unit}" for n, unit in zip(table["items"], table["unit"])],
        "per worker/s": [_rate(r) for r in table["per_worker_per_s"]],
        "throughput": table["throughput"],
        "wall": table["wall"],
        "wall_s": [f"{s:,.0f}" for s in table["wall_s"]],
        "worker-h": [f"{h:,.1f}" if h >= 10 else f"{h:.2f}" for h in table["worker_hours"]],
        "cost $": [f"{c:,.2f}" if c >= 1 else f"{c:.3f}" for c in table["cost"]],
        "B/item": ["-" if math.isnan(b) else f"{b:,.0f}" for b in table["bytes_per_item"]],
        "data GB": ["-" if math.isnan(g) else f"{g:,.2f}" for g in table["data_gb"]],
    })
    return shown.to_string(index=False)


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _check_number(what: str, value: Any, minimum: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        raise WorkbenchError(f"{what} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")


def check_workers(workers: Sequence[int]) -> list[int]:
    counts = list(workers)
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise WorkbenchError(f"workers must be positive integers, got {counts!r}")
    return counts


def parse_workers(text: str) -> list[int]:
    """``1,8,32,128`` -> [1, 8, 32, 128]."""
    try:
        counts = [int(part) for part in re.split(r"[,\s]+", text.strip()) if part]
    except ValueError:
        raise WorkbenchError(f"bad --workers {text!r}: expected comma-separated positive integers, "
                             "e.g. 1,8,32,128") from None
    if not counts or min(counts) < 1:
        raise WorkbenchError(f"bad --workers {text!r}: expected comma-separated positive integers, e.g. 1,8,32,128")
    return counts


_COUNT = re.compile(r"^\s*(\d[\d_]*)\s*(?:[xX*]\s*(\d[\d_]*))?\s*$")


def parse_pairs(text: str) -> int:
    """``QxK`` (queries times candidates per query: ``6980x1000``) or a plain integer -> pairs."""
    match = _COUNT.match(str(text))
    if match is None:
        raise WorkbenchError(f"bad --pairs {text!r}: expected QxK (queries x candidates, e.g. 6980x1000) "
                             "or a number of pairs")
    queries, depth = match.group(1), match.group(2)
    pairs = int(queries) * (int(depth) if depth is not None else 1)
    if pairs < 1:
        raise WorkbenchError(f"bad --pairs {text!r}: the number of pairs must be positive")
    return pairs


# ----------------------------------------------------------------------------- measuring


def require_device(device: str, flag: str = "--throughput") -> None:
    """A GPU throughput cannot be measured without a GPU: say so and what to pass instead."""
    name = (device or "cpu").strip().lower()
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise WorkbenchError(f"cannot measure GPU throughput here: device {device!r} requested but CUDA is not "
                                 f"available on this machine; give one GPU worker's throughput with {flag}")


@contextlib.contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """torch uses ``threads`` intra-op threads inside the block (one Ray worker = one CPU)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=4)
def _collection(path: str) -> Collection:
    return Collection(path)


def _data(data_dir: str | Path | None) -> Path:
    return resolve_data_dir(data_dir)


@functools.lru_cache(maxsize=4)
def _reranker(spec: str, device: str, threads: int, data_dir: Path) -> Any:
    from ..rerankers.protocol import RerankContext
    from ..rerankers.registry import REGISTRY, get_reranker, parse_reranker_spec

    entry, _ = REGISTRY.lookup(parse_reranker_spec(spec)[0])
    overrides: dict[str, Any] = {}
    if any(option.name == "threads" for option in entry.options):
        overrides["threads"] = threads  # ONNX Runtime sessions take their threads from the option
    context = RerankContext(collection=_collection(str(data_dir / "collection.tsv")),
                            dataset=get_dataset("dl19", data_dir), device=device)
    with cpu_threads(threads):
        reranker = get_reranker(spec, context, **overrides)
    if hasattr(reranker, "cache_passages"):
        reranker.cache_passages = False  # time the encoding, not the vector cache
    return reranker


def candidate_pairs(data_dir: str | Path | None = None, pairs: int = SAMPLE_PAIRS,
                    per_query: int = PAIRS_PER_QUERY, seed: int = 0) -> tuple[list[str], list[str]]:
    """(queries, passages) of ``pairs`` real reranking pairs: ``per_query`` candidates at random
    ranks of the DL19 official BM25 top-1000 of each of a seeded random choice of queries."""
    root = _data(data_dir)
    dataset = get_dataset("dl19", root)
    run = read_run(dataset.official_run_path("bm25"))
    texts = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    collection = _collection(str(root / "collection.tsv"))
    rng = np.random.default_rng(seed)
    groups = {qid: group["docno"].tolist() for qid, group in run.groupby("qid", sort=True) if qid in texts}
    order = rng.permutation(sorted(groups))
    queries: list[str] = []
    docnos: list[str] = []
    for qid in order:
        if len(docnos) >= pairs:
            break
        candidates = groups[qid]
        take = min(per_query, len(candidates), pairs - len(docnos))
        for position in np.sort(rng.choice(len(candidates), size=take, replace=False)):
            queries.append(texts[qid])
            docnos.append(candidates[position])
    if len(docnos) < pairs:
        raise WorkbenchError(f"the DL19 official BM25 run has only {len(docnos)} pairs; asked for {pairs}")
    return queries, collection.texts_for(docnos)


def collection_sample(data_dir: str | Path | None = None, passages: int = SAMPLE_PAIRS,
                      seed: int = 0) -> list[str]:
    """``passages`` collection passages chosen at random (seeded)."""
    collection = _collection(str(_data(data_dir) / "collection.tsv"))
    texts = list(collection.texts.values())
    if passages > len(texts):
        raise WorkbenchError(f"the collection has {len(texts)} passages; asked for {passages}")
    chosen = np.random.default_rng(seed).choice(len(texts), size=passages, replace=False)
    return [texts[i] for i in chosen]


def _timed(work, *args) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def measure_reranker(spec: str, device: str = "cpu", sample_pairs: int = SAMPLE_PAIRS, threads: int = 1,
                     data_dir: str | Path | None = None, warmup_pairs: int = WARMUP_ITEMS) -> Throughput:
    """Pairs/s of ``reranker.score_pairs`` for ONE worker: ``sample_pairs`` DL19 official-BM25 pairs
    (:func:`candidate_pairs`) after a warm-up on other pairs, with ``threads`` CPU threads; a
    vector reranker encodes its passages (``cache_passages = False``), as on a fresh worker."""
    require_device(device, "--throughput")
    root = _data(data_dir)
    queries, passages = candidate_pairs(root, warmup_pairs + sample_pairs)
    reranker = _reranker(spec, device, threads, root)
    with cpu_threads(threads):
        reranker.score_pairs(queries[sample_pairs:], passages[sample_pairs:])  # warm-up (other queries)
        seconds = _timed(reranker.score_pairs, queries[:sample_pairs], passages[:sample_pairs])
    n_queries = len(set(queries[:sample_pairs]))
    return Throughput("rerank", "pairs", sample_pairs / seconds, True,
                      f"measured: {spec} ({_numerics(reranker)}) score_pairs on {device}, {threads} thread(s), "
                      f"{sample_pairs} DL19 official-BM25 pairs ({n_queries} queries) in {seconds:.2f} s")


def measure_encoder(spec: str, device: str = "cpu", sample_passages: int = SAMPLE_PAIRS, threads: int = 1,
                    data_dir: str | Path | None = None, warmup_passages: int = WARMUP_ITEMS) -> Throughput:
    """Passages/s of ``reranker.encoder.encode_passages_uncached`` for ONE worker on
    ``sample_passages`` random collection passages (after a warm-up on others)."""
    require_device(device, "--encode-throughput")
    root = _data(data_dir)
    encoder = _encoder(spec, device, threads, root)
    texts = collection_sample(root, warmup_passages + sample_passages, seed=1)
    with cpu_threads(threads):
        encoder.encode_passages_uncached(texts[sample_passages:])
        seconds = _timed(encoder.encode_passages_uncached, texts[:sample_passages])
    return Throughput("encode", "passages", sample_passages / seconds, True,
                      f"measured: {spec} ({_numerics(encoder)}) encode_passages_uncached on {device}, "
                      f"{threads} thread(s), {sample_passages} random collection passages in {seconds:.2f} s")


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # not Unix
        return "unknown"


def _numerics(model: Any) -> str:
    """``fp32 onnx``: what a model computes in, and with which backend."""
    numerics = model.numerics() if hasattr(model, "numerics") else {
        "precision": getattr(model, "precision", ""), "backend": getattr(model, "backend", "")}
    return " ".join(value for value in (numerics.get("precision"), numerics.get("backend")) if value) or "-"


def _encoder(spec: str, device: str, threads: int, root: Path) -> Any:
    encoder = getattr(_reranker(spec, device, threads, root), "encoder", None)
    if encoder is None:
        raise WorkbenchError(f"{spec!r} has no passage encoder to plan a collection encoding with "
                             "(use an encoder reranker: dense-minilm, splade-tiny, dense:<model>, splade:<model>)")
    return encoder


def measure_bm25(data_dir: str | Path | None = None, queries: int = BM25_SAMPLE_QUERIES, k: int = BM25_DEPTH,
                 threads: int = 1, warmup_queries: int = BM25_WARMUP_QUERIES) -> Throughput:
    """Queries/s of Pyserini BM25 (top-``k``, ``threads`` threads) for ``queries`` dev-small topics
    over the MINI collection's Lucene index (built once and cached).

    The mini index holds ~53k passages; the full 8.8M-passage index has posting lists ~170x longer,
    so a query costs more there: this figure is an optimistic bound for the full collection."""
    from ..first_stage.bm25 import BM25Config, BM25Retriever
    from ..first_stage.lucene import build_index

    root = _data(data_dir)
    collection = _collection(str(root / "collection.tsv"))
    topics = get_dataset("dev-small", root).topics
    if len(topics) < queries + warmup_queries:
        raise WorkbenchError(f"dev-small has {len(topics)} topics; asked for {queries} (+{warmup_queries} warm-up)")
    index = build_index(collection)
    retriever = BM25Retriever(index.path, BM25Config(k=k, threads=threads))
    retriever.search(topics.iloc[queries:queries + warmup_queries], k=k)
    seconds = _timed(retriever.search, topics.iloc[:queries], k)
    return Throughput("bm25", "queries", queries / seconds, True,
                      f"measured on the MINI index ({len(collection):,} passages, not 8.8M): Pyserini BM25 k={k}, "
                      f"{threads} thread(s), {queries} dev-small queries in {seconds:.2f} s; the full index's "
                      "posting lists are far longer, so this is an optimistic bound (give --bm25-throughput)")


# ----------------------------------------------------------------------------- data moved


def _mean_bytes(texts) -> float:
    lengths = [len(text.encode("utf-8")) for text in texts]
    return float(np.mean(lengths)) if lengths else 0.0


def pair_transfer(data_dir: str | Path | None = None) -> Transfer:
    """A pair: query text + passage text in (UTF-8, the mean over every DL19 official-BM25
    candidate), an 8-byte score back."""
    root = _data(data_dir)
    dataset = get_dataset("dl19", root)
    run = read_run(dataset.official_run_path("bm25"))
    texts = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    run = run[run["qid"].isin(set(texts))]
    collection = _collection(str(root / "collection.tsv"))
    bytes_in = _mean_bytes(texts[q] for q in run["qid"]) + _mean_bytes(collection.texts_for(run["docno"]))
    return Transfer("rerank", bytes_in, SCORE_BYTES,
                    f"pair: query + passage text in (mean over {len(run):,} DL19 official-BM25 pairs), "
                    f"{SCORE_BYTES}-byte score back")


def output_bytes(output: Any) -> float:
    """Mean bytes of one encoder output row: dense ``dim * 4`` (float32), sparse ``nnz * 8``
    (int32 term id + float32 weight)."""
    rows = output.shape[0]
    if not rows:
        return 0.0
    if hasattr(output, "nnz"):  # scipy sparse (SPLADE)
        return output.nnz * SPARSE_ENTRY_BYTES / rows
    return float(output.shape[1] * VECTOR_VALUE_BYTES)


def encode_transfer(spec: str, data_dir: str | Path | None = None, sample_passages: int = OUTPUT_SAMPLE_PASSAGES,
                    threads: int = 1) -> Transfer:
    """A passage: its text in (mean over the whole collection), its encoder output back (measured
    on ``sample_passages`` random passages, encoded on the CPU)."""
    root = _data(data_dir)
    collection = _collection(str(root / "collection.tsv"))
    encoder = _encoder(spec, "cpu", threads, root)
    with cpu_threads(threads):
        output = encoder.encode_passages_uncached(collection_sample(root, sample_passages, seed=2))
    back = output_bytes(output)
    kind = (f"sparse: mean {back / SPARSE_ENTRY_BYTES:,.0f} non-zero terms x {SPARSE_ENTRY_BYTES} B"
            if hasattr(output, "nnz") else f"dense: {output.shape[1]} x float32")
    return Transfer("encode", _mean_bytes(collection.texts.values()), back,
                    f"passage: text in (mean over the {len(collection):,} collection passages), vector back "
                    f"({kind}, {sample_passages} passages)")


def bm25_transfer(data_dir: str | Path | None = None, k: int = BM25_DEPTH) -> Transfer:
    """A query: its text in (mean over dev-small), ``k`` (docno, 8-byte score) back; the docno
    length is the mean over the collection's passage ids."""
    root = _data(data_dir)
    topics = get_dataset("dev-small", root).topics
    collection = _collection(str(root / "collection.tsv"))
    docno = _mean_bytes(collection.texts.keys())
    return Transfer("bm25", _mean_bytes(topics["query"]), k * (docno + SCORE_BYTES),
                    f"query: text in (mean over {len(topics):,} dev-small queries), {k} x (docno of mean "
                    f"{docno:.1f} B + {SCORE_BYTES}-byte score) back")


# ----------------------------------------------------------------------------- the whole plan


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


def capacity_plan(reranker: str, pairs: int, workers: Sequence[int] = DEFAULT_WORKERS, *, device: str = "cpu",
                  throughput: float | None = None, encoder: str | None = None,
                  passages: int = COLLECTION_PASSAGES, encode_throughput: float | None = None,
                  queries: int = DEV_QUERIES, bm25_throughput: float | None = None,
                  price_per_worker_hour: float = DEFAULT_PRICE_PER_WORKER_HOUR,
                  overhead_factor: float | None = None, startup_s: float | None = None,
                  sample: int = SAMPLE_PAIRS, threads: int = 1, data_dir: str | Path | None = None,
                  pairs_label: str = "") -> CapacityPlan:
    """Reranking ``pairs`` with ``reranker``, encoding ``passages`` with ``encoder``'s encoder (when
    one is named; ``passages=0``: no encoding stage) and BM25 for ``queries`` (0: none) on each
    number of ``workers``. A throughput given here replaces the measurement (marked ``given``);
    ``overhead_factor``/``startup_s`` default to :data:`RAY_OVERHEAD_FACTOR`/:data:`RAY_STARTUP_S`."""
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
    _check_number("overhead factor", overhead, minimum=0.0, strict=True)
    _check_number("start-up seconds", startup, minimum=0.0)
    _check_number("price per worker-hour", price_per_worker_hour, minimum=0.0)
    encoding = bool(encoder) and passages > 0
    missing = [flag for flag, needed in (("--throughput", throughput is None),
                                         ("--encode-throughput", encoding and encode_throughput is None)) if needed]
    if missing:  # before any slow work: a GPU figure cannot be measured without a GPU
        require_device(device, " and ".join(missing))
    given = {stage: _given(stage, unit, rate, f"per {worker} worker{of}")
             for stage, unit, rate, worker, of in (
                 ("rerank", "pairs", throughput, device, f" for {reranker}"),
                 ("encode", "passages", encode_throughput, device, f" for {encoder}"),
                 ("bm25", "queries", bm25_throughput, "CPU", " on the full index"))
             if rate is not None}
    root = _data(data_dir)
    load = _load()

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

    from ..models.devices import available_cpus  # imports torch: only when planning for real

    table = plan(workloads, stages, workers, price_per_worker_hour, overhead, startup, transfers)
    ray = ("measured by bench/bench_ray.py on a 2-core machine (docs/scale.md)"
           if (overhead_factor, startup_s) == (None, None) else "given")
    assumptions = [
        f"wall = items / (workers x per-worker rate) x overhead {overhead:g} + start-up {startup:g} s; every worker "
        f"is paid for the whole wall time at ${price_per_worker_hour:g} per worker-hour",
        (f"one worker = one GPU ({device})" + (f"; BM25 (Lucene) runs on a worker's CPU, {threads} thread(s)"
                                               if queries > 0 else "")
         if device.strip().lower().startswith("cuda") else
         f"one worker = one CPU: measured with {threads} thread(s) on this machine ({available_cpus()} CPUs, "
         f"1-min load average {load} before measuring: other processes slow measured rates down)"),
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
                "passages": passages if encoding else 0, "queries": queries, "threads": threads, "sample": sample,
                "price_per_worker_hour": price_per_worker_hour, "overhead_factor": overhead, "startup_s": startup}
    return CapacityPlan(table, tuple(workloads), tuple(stages), tuple(transfers), settings, tuple(assumptions))
