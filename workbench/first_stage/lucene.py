"""Pyserini (Lucene) index of a passage collection, cached by content fingerprint."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write, process_alive, set_aside
from ..core.locks import file_lock
from ..data.collection import Collection

log = logging.getLogger(__name__)

INDEX_FORMAT = "lucene-jsoncollection-v1"
MARKER = "workbench-index.json"


@dataclass(frozen=True)
class LuceneIndex:
    """A built index: its directory and the fingerprint it was built from."""

    path: Path
    fingerprint: str
    built: bool  # True if this call built it, False if reused from the cache
    seconds: float


def anserini_version() -> str:
    import pyserini

    jars = Path(pyserini.__file__).parent / "resources" / "jars"
    names = sorted(p.name for p in jars.glob("anserini-*-fatjar.jar"))
    return names[-1] if names else "unknown"


def index_fingerprint(collection: Collection) -> str:
    """Key of an index: collection bytes, index options and Anserini version."""
    return fingerprint(INDEX_FORMAT, collection.fingerprint, anserini_version())


def build_index(collection: Collection, threads: int | None = None, root: str | Path | None = None,
                force: bool = False) -> LuceneIndex:
    """Build (or reuse) a Lucene index with positions, docvectors and raw documents.

    The index lives under ``<cache>/indexes/<name>-<fingerprint>``; a second call with the
    same collection file returns the cached one without rebuilding. Building happens in a
    temporary directory that is renamed into place, so an interrupted build leaves nothing
    (Anserini runs as a child process: Ctrl-C stops it and the partial build is removed;
    builds left by killed processes are removed by the next build). Concurrent processes
    build an index once: the others wait and reuse it. A cached index whose files no longer
    match the list its marker recorded is set aside (renamed) with one warning and rebuilt.
    """
    key = index_fingerprint(collection)
    root = Path(root) if root else cache_dir("indexes")
    target = root / f"{collection.path.stem}-{key[:16]}"
    if not force and verify_index(target, report=False):  # says why under the lock, once
        return LuceneIndex(target, key, built=False, seconds=0.0)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(target, f"the Lucene index {target.name}"):
        if not force and verify_index(target):  # built by another process while this one waited
            return LuceneIndex(target, key, built=False, seconds=0.0)
        if target.exists():
            if force:
                shutil.rmtree(target)
            else:
                _set_aside(target)
        _remove_abandoned_builds(root)
        return _build(collection, key, target, root, threads or max(1, os.cpu_count() or 1))


def verify_index(target: Path, report: bool = True) -> bool:
    """Whether ``target`` is a complete index: its marker lists every file with its size (cheap:
    one stat per file). An index without a marker is unfinished; one whose files differ from the
    marker's list was damaged after it was built."""
    marker = target / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        files = recorded["files"] if isinstance(recorded, dict) else None
    except (OSError, ValueError, KeyError):
        files = None
    if not isinstance(files, dict) or not files:
        if report:
            log.warning("Lucene index %s has an unreadable or old marker", target)
        return False
    for name, size in files.items():
        path = target / name
        if not path.is_file() or path.stat().st_size != size:
            if report:
                log.warning("Lucene index %s is damaged: %s is %s", target, name,
                            "missing" if not path.is_file() else "of the wrong size")
            return False
    return True


def _set_aside(target: Path) -> None:
    aside = set_aside(target)
    log.warning("Lucene index %s is damaged or unfinished: set aside as %s; rebuilding it", target, aside.name)


def _remove_abandoned_builds(root: Path) -> None:
    """Remove ``.build-<pid>-*`` directories whose process is gone (killed mid-build)."""
    for work in root.glob(".build-*"):
        pid = work.name.split("-")[1] if work.name.count("-") >= 2 else ""
        if pid.isdigit() and not process_alive(int(pid)):
            log.info("removing the abandoned index build %s", work)
            shutil.rmtree(work, ignore_errors=True)


def anserini_jar() -> Path:
    import pyserini

    jars = sorted((Path(pyserini.__file__).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise WorkbenchError("Pyserini's Anserini jar is missing: reinstall pyserini")
    return jars[-1]


def _build(collection: Collection, key: str, target: Path, root: Path, threads: int) -> LuceneIndex:
    from .java import java_home

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".build-{os.getpid()}-", dir=root))
    try:
        docs_dir = work / "docs"
        docs_dir.mkdir()
        with open(docs_dir / "docs.jsonl", "w", encoding="utf-8") as out:
            for pid, text in collection:
                out.write(json.dumps({"id": pid, "contents": text}, ensure_ascii=False) + "\n")
        index_dir = work / "index"
        log.info("indexing %d passages with %d threads", len(collection), threads)
        command = [os.path.join(java_home(), "bin", "java"), "-cp", str(anserini_jar()),
                   "io.anserini.index.IndexCollection",
                   "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
                   "-input", str(docs_dir), "-index", str(index_dir), "-threads", str(threads),
                   "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet"]
        # a child process: its log stays out of the terminal, and Ctrl-C reaches this process,
        # which then removes the partial build (an in-process JVM would exit on its own)
        with open(work / "anserini.log", "w", encoding="utf-8") as log_file:
            completed = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT)
        if completed.returncode != 0 or not any(index_dir.glob("segments_*")):
            tail = (work / "anserini.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise WorkbenchError(f"Anserini failed to index (exit {completed.returncode})"
                                 + (f": {tail[0][:300]}" if tail else ""), collection.path)
        seconds = time.perf_counter() - started
        files = {path.name: path.stat().st_size for path in sorted(index_dir.iterdir()) if path.is_file()}
        with atomic_write(index_dir / MARKER) as handle:
            json.dump({"fingerprint": key, "collection": str(collection.path),
                       "collection_sha256": collection.fingerprint, "anserini": anserini_version(),
                       "documents": len(collection), "threads": threads,
                       "seconds": round(seconds, 2), "files": files}, handle, indent=2)
        os.replace(index_dir, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return LuceneIndex(target, key, built=True, seconds=seconds)


def shared_index(collection: Collection, shared: dict, threads: int | None = None) -> LuceneIndex:
    """The collection's index, built (or found in the cache) once per process: ``shared`` is
    the process's memo (a :class:`~workbench.first_stage.protocol.StageContext`'s ``shared``)."""
    key = ("lucene-index", index_fingerprint(collection))
    if key not in shared:
        index = build_index(collection, threads=threads)
        log.info("Lucene index %s (%s)", index.path, "built in %.1f s" % index.seconds if index.built else "reused")
        shared[key] = index
    return shared[key]
