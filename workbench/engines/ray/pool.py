"""The driver's side of the experiment's actor pool: :func:`open_pool` starts the workers once
(or finds them running), :func:`deal_rows` deals a stage's rows to them one call per free worker
and yields the results as they come back, :func:`close_pool` ends them. One pool lives in this
process at a time (a local cluster's CPUs are the pool's while it lives); what Ray raises comes
out as a one-line :class:`~workbench.core.errors.WorkbenchError`.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ...core.errors import WorkbenchError, first_line
from .reports import StageReport
from .workers import StageWorker


@dataclass
class ActorPool:
    """The workers of one experiment: started once, reused by every stage whose resources match."""

    key: tuple[Any, ...]
    actors: list[Any]
    start_s: float
    workers_start_s: dict[str, float]
    stages: int = 0


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


def open_pool(ray: Any, key: tuple[Any, ...], workers: int, cpus: float, gpus: float,
              keep: int) -> tuple[ActorPool, bool]:
    """The pool of ``workers`` actors (``cpus`` and ``gpus`` each, keeping ``keep`` models) and
    whether it was started now: the running one when its ``key`` (cluster, workers, resources) is
    the same, else a new one (the old one ended first: on a local cluster its CPUs are needed)."""
    global _LIVE_POOL
    if _LIVE_POOL is not None and _LIVE_POOL.key == key:
        return _LIVE_POOL, False
    close_pool()
    started = time.perf_counter()
    remote = ray.remote(StageWorker).options(num_cpus=cpus, num_gpus=gpus or None,
                                             # a killed worker is started again and its call retried
                                             max_restarts=-1, max_task_retries=-1)
    actors = [remote.remote(cpus, keep) for _ in range(workers)]
    try:
        # every worker up before the first row: rows are then dealt out evenly from the start
        ready = ray.get([actor.ready.remote() for actor in actors])
    except Exception as error:  # noqa: BLE001 - a worker that cannot start
        for actor in actors:
            ray.kill(actor)
        raise _as_workbench_error(error, "start") from None
    _LIVE_POOL = ActorPool(key, actors, time.perf_counter() - started, dict(ready))
    return _LIVE_POOL, True


def deal_rows(ray: Any, pool: ActorPool, report: StageReport, rows: list[dict[str, Any]], kind: str, key: Any,
              arguments: dict[str, Any], *, started: float, batch_size: int, progress: bool,
              on_result: Callable[[dict[str, Any]], None] | None) -> Iterator[tuple[int, Any]]:
    """Rows through ``pool``: yields (row index, unpickled payload) as rows finish, and records each
    worker's share in ``report`` (its wall time counted from ``started``). Each worker builds the
    component ``kind`` from ``arguments`` at its first row (or keeps the one it built for an earlier
    stage under the same ``key``); ``batch_size`` rows go in one call."""
    from collections import deque

    from tqdm.auto import tqdm

    # largest rows first (longest-processing-time order): the last rows to finish are short,
    # so no worker idles long at the end; the order never changes a result
    rows = sorted(rows, key=lambda row: -row.get("items", 0))
    calls = deque(rows[start:start + batch_size] for start in range(0, len(rows), batch_size))
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
    with tqdm(total=total, desc=f"{report.stage} on ray ({len(pool.actors)} workers)", unit=report.unit,
              leave=False, disable=not progress) as bar:
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
                    if on_result is not None:
                        on_result({"stage": report.stage, "index": result["index"], "worker": result["worker"]})
            finished = True
        except WorkbenchError:
            raise
        except Exception as error:  # noqa: BLE001 - Ray wraps the worker's exception
            raise _as_workbench_error(error, report.stage) from None
        finally:
            report.wall_s = time.perf_counter() - started
            if not finished and pending:
                close_pool()  # workers busy with calls nobody will collect: a new pool serves the next stage


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
    return WorkbenchError(f"the {stage} stage failed on Ray: {first_line(error, 300)}")
