"""Pyserini (Lucene) index of a passage collection, cached by content fingerprint."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..data.collection import Collection
from .java import ensure_java

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


def build_index(collection: Collection, threads: int | None = None, root: Path | None = None,
                force: bool = False) -> LuceneIndex:
    """Build (or reuse) a Lucene index with positions, docvectors and raw documents.

    The index lives under ``<cache>/indexes/<name>-<fingerprint>``; a second call with the
    same collection file returns the cached one without rebuilding. Building happens in a
    temporary directory that is renamed into place, so an interrupted build leaves nothing.
    """
    ensure_java()
    key = index_fingerprint(collection)
    root = root or cache_dir("indexes")
    target = root / f"{collection.path.stem}-{key[:16]}"
    marker = target / MARKER
    if marker.is_file() and not force:
        return LuceneIndex(target, key, built=False, seconds=0.0)
    threads = threads or max(1, os.cpu_count() or 1)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        docs_dir = work / "docs"
        docs_dir.mkdir()
        with open(docs_dir / "docs.jsonl", "w", encoding="utf-8") as out:
            for pid, text in collection:
                out.write(json.dumps({"id": pid, "contents": text}, ensure_ascii=False) + "\n")
        index_dir = work / "index"
        from pyserini.pyclass import autoclass

        indexer = autoclass("io.anserini.index.IndexCollection")
        log.info("indexing %d passages with %d threads", len(collection), threads)
        indexer.main([
            "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
            "-input", str(docs_dir), "-index", str(index_dir), "-threads", str(threads),
            "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet",
        ])
        if not any(index_dir.glob("segments_*")):
            raise WorkbenchError("Anserini produced no Lucene index", collection.path)
        seconds = time.perf_counter() - started
        with atomic_write(index_dir / MARKER) as handle:
            json.dump({"fingerprint": key, "collection": str(collection.path),
                       "collection_sha256": collection.fingerprint, "anserini": anserini_version(),
                       "documents": len(collection), "threads": threads,
                       "seconds": round(seconds, 2)}, handle, indent=2)
        if force and target.exists():
            shutil.rmtree(target)
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
