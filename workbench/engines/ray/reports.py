"""What the manifests record about Ray: a :class:`StageReport` per stage (rows, items, wall time,
whether the stage started the pool, each worker's share and throughput) and
:func:`manifest_fields`, the engine fields of a run's manifest (``local`` when no engine ran it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def manifest_fields(reports: list[dict[str, Any]], engine: Any) -> dict[str, Any]:
    """Manifest fields of a run: the engine, its workers and each worker's throughput per stage
    (``engine``: the :class:`~workbench.engines.ray.RayEngine` that ran it, or None: here)."""
    if engine is None:
        return {"engine": "local", "workers": 1}
    workers = max((report["workers"] for report in reports), default=0)
    return {"engine": "ray", "workers": workers, "engine_stages": reports, **{
        key: value for key, value in engine.describe().items() if key != "engine"}}
