"""The plan's arithmetic: a stage's :class:`Workload`, one worker's :class:`Throughput` and the
:class:`Transfer` per item turned into one row per (stage, workers) by :func:`plan`; the table
printed by :func:`format_plan`. Pure: nothing here measures or reads data."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import pandas as pd

from ...core.errors import WorkbenchError

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

COLUMNS = ["stage", "workers", "items", "unit", "per_worker_per_s", "throughput", "load_s", "wall_s", "wall",
           "worker_hours", "cost", "bytes_per_item", "data_gb"]


@dataclass(frozen=True)
class Workload:
    """What a stage has to process: ``items`` of ``unit`` (pairs, passages, queries)."""

    stage: str
    items: int
    unit: str
    description: str = ""


@dataclass(frozen=True)
class Throughput:
    """Items per second of ONE worker for a stage, in its steady state; ``measured`` here or
    given (an assumption), ``how`` says which. A measured one also says the seconds the worker
    took to load its model (``load_s``: start-up, never counted in the rate) and the intra-op
    ``threads`` it ran with."""

    stage: str
    unit: str
    per_worker_per_s: float
    measured: bool
    how: str
    load_s: float | None = None
    threads: int | None = None

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


def given_assumption(stage: str, unit: str, rate: float, what: str) -> Throughput:
    """:func:`given_throughput`, its ``how`` saying that it is an assumption."""
    checked = given_throughput(stage, unit, rate)
    return replace(checked, how=f"given: {checked.per_worker_per_s:g} {unit}/s {what} (an assumption, not measured)")


def plan(workloads: Sequence[Workload], throughputs: Sequence[Throughput], workers: Sequence[int],
         price_per_worker_hour: float = DEFAULT_PRICE_PER_WORKER_HOUR,
         overhead_factor: float | None = None, startup_s: float | None = None,
         transfers: Sequence[Transfer] = ()) -> pd.DataFrame:
    """One row per (stage, workers): items, per-worker throughput and whether it was measured or
    given, the measured model load (``load_s``, NaN when given), wall time (``wall_s`` and
    ``wall`` as h/min), worker-hours, cost, and the data moved (``bytes_per_item``, ``data_gb``;
    NaN for a stage without a :class:`Transfer`).

    ``wall_s = items / (workers * per_worker_per_s) * overhead_factor + startup_s``; every worker
    is paid for the whole wall time, start-up included. ``overhead_factor``/``startup_s`` default
    to :data:`RAY_OVERHEAD_FACTOR`/:data:`RAY_STARTUP_S` (read when called).
    """
    overhead_factor = RAY_OVERHEAD_FACTOR if overhead_factor is None else overhead_factor
    startup_s = RAY_STARTUP_S if startup_s is None else startup_s
    workers = check_workers(workers)
    check_number("price per worker-hour", price_per_worker_hour, minimum=0.0)
    check_number("overhead factor", overhead_factor, minimum=0.0, strict=True)
    check_number("start-up seconds", startup_s, minimum=0.0)
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
        check_number(f"{workload.stage} throughput", throughput.per_worker_per_s, minimum=0.0, strict=True)
        transfer = moved.get(workload.stage)
        per_item = transfer.bytes_per_item if transfer is not None else float("nan")
        load_s = float("nan") if throughput.load_s is None else throughput.load_s
        for count in workers:
            wall_s = workload.items / (count * throughput.per_worker_per_s) * overhead_factor + startup_s
            worker_hours = count * wall_s / 3600.0
            rows.append({
                "stage": workload.stage, "workers": count, "items": workload.items, "unit": workload.unit,
                "per_worker_per_s": throughput.per_worker_per_s, "throughput": throughput.source,
                "load_s": load_s, "wall_s": wall_s, "wall": format_duration(wall_s), "worker_hours": worker_hours,
                "cost": worker_hours * price_per_worker_hour,
                "bytes_per_item": per_item, "data_gb": workload.items * per_item / 1e9,
            })
    return pd.DataFrame(rows, columns=COLUMNS)


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
    """The plan as an aligned text table (numbers rounded, thousands separated); ``load s`` is a
    worker's measured model load, apart from its steady-state rate (``per worker/s``)."""
    if table.empty:
        return "(nothing to plan)"
    loads = table["load_s"] if "load_s" in table else [float("nan")] * len(table)
    shown = pd.DataFrame({
        "stage": table["stage"],
        "workers": table["workers"],
        "items": [f"{n:,} {unit}" for n, unit in zip(table["items"], table["unit"])],
        "per worker/s": [_rate(r) for r in table["per_worker_per_s"]],
        "throughput": table["throughput"],
        "load s": ["-" if math.isnan(s) else f"{s:.1f}" for s in loads],
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


def check_number(what: str, value: Any, minimum: float, strict: bool = False) -> None:
    """A finite number ``>= minimum`` (``> minimum`` when ``strict``), or a one-line error."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        raise WorkbenchError(f"{what} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")


def check_workers(workers: Sequence[int]) -> list[int]:
    """The worker counts as a list, each a positive integer, or a one-line error."""
    counts = list(workers)
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise WorkbenchError(f"workers must be positive integers, got {counts!r}")
    return counts
