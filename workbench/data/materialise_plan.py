"""The bookkeeping that makes :func:`~.materialise.materialise` resumable.

A manifest (``.materialise.json`` in the target) records, for every finished file, a key of the
inputs that produced it and its size; :class:`Plan` runs each step (one output file) only when
its entry does not match, so an interrupted run picks up where it stopped, and a fully
materialised target needs no ir_datasets access at all.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm.auto import tqdm

from ..core.files import atomic_write
from .dataset import DATA_ENV
from .irds_loading import fetching, load_irds

MANIFEST_NAME = ".materialise.json"
# Bumped when the output format of any file changes, so old outputs are not reused.
FORMAT_VERSION = 1

OFFLINE_HINT = (
    "materialising the data needs internet access (ir_datasets downloads MS MARCO and TREC "
    f"files); run `workbench data` on a machine with internet, or point {DATA_ENV} "
    "(or --data-dir) at an existing copy of the data directory"
)


def key_fingerprint(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON: the key of a step's inputs."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def source_key(source: Any) -> str | None:
    """A stable identity for an ir_datasets source: its id, or None for a dataset object
    (which cannot be fingerprinted, so files from it are always rewritten)."""
    return source if isinstance(source, str) else None


def fetching_from_irds(what: str):
    """A context turning ir_datasets' failures while reading ``what`` into one line (offline: what to do)."""
    return fetching(what, OFFLINE_HINT)


class Manifest:
    """Which output files are complete, and from which inputs (``.materialise.json``)."""

    def __init__(self, target: Path):
        self.path = target / MANIFEST_NAME
        self.target = target
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                self.entries = dict(json.loads(self.path.read_text(encoding="utf-8")).get("files", {}))
            except (ValueError, AttributeError):
                self.entries = {}  # unreadable manifest: everything is redone

    def complete(self, rel: str, key: str | None) -> dict[str, Any] | None:
        """The recorded info of ``rel`` if it exists, was made from ``key`` and has its recorded size."""
        entry = self.entries.get(rel)
        path = self.target / rel
        if key is None or entry is None or entry.get("key") != key or not path.is_file():
            return None
        if path.stat().st_size != entry.get("size"):
            return None
        return dict(entry.get("info", {}))

    def record(self, rel: str, key: str | None, info: Mapping[str, Any]) -> None:
        self.entries[rel] = {"key": key, "size": (self.target / rel).stat().st_size, "info": dict(info)}
        with atomic_write(self.path) as handle:
            json.dump({"format": FORMAT_VERSION, "files": self.entries}, handle, indent=1, sort_keys=True)
            handle.write("\n")


class Plan:
    """Bookkeeping shared by the steps of one materialise call."""

    def __init__(self, target: Path, progress: bool, force: bool):
        self.target = target
        self.progress = progress
        self.force = force
        self.manifest = Manifest(target)
        self.summary: dict[str, Any] = {"target_dir": str(target), "files": {}, "warnings": []}
        self._loaded: dict[int, Any] = {}

    def lazy(self, source: Any):
        """A function loading ``source`` on first call: a fully materialised target needs no
        ir_datasets access."""
        def get():
            if id(source) not in self._loaded:
                self._loaded[id(source)] = load_irds(source, hint=OFFLINE_HINT)
            return self._loaded[id(source)]
        return get

    def step(self, rel: str, key_obj: Any, build) -> dict[str, Any]:
        """Produce ``rel`` with ``build(path) -> info`` unless a matching complete copy exists."""
        key = None if key_obj is None else key_fingerprint({"v": FORMAT_VERSION, "file": rel, **key_obj})
        info = None if self.force else self.manifest.complete(rel, key)
        if info is not None:
            self.summary["files"][rel] = {"status": "skipped (already complete)", **info}
            return info
        info = build(self.target / rel)
        self.manifest.record(rel, key, info)
        self.summary["files"][rel] = {"status": "written", **info}
        return info

    def warn(self, message: str) -> None:
        self.summary["warnings"].append(message)

    def bar(self, iterable: Iterable, desc: str, total: int | None = None, unit: str = "it"):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not self.progress,
                    dynamic_ncols=True, leave=False)
