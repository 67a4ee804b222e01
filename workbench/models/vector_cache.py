"""One cache of passage vectors per encoder, keyed by (encoder fingerprint, passage text hash).

A dense vector or a SPLADE sparse vector depends only on the encoder (its files' hashes and
settings: :attr:`TextEncoder.fingerprint`) and the passage text. Every user of an encoder's
passage vectors goes through this cache: a learned first stage encoding the whole collection,
a vector reranker scoring the top 100 of a run, ``check-precision``. So a passage is encoded
once per encoder, across systems, datasets and runs: after ``dense-mini`` encoded the
collection, ``official-bm25+dense-minilm`` with the same encoder encodes no passage at all.

Layout: ``cache_dir("vectors")/<kind>-<fingerprint[:32]>/`` holds ``meta.json`` (the encoder's
config) and segments ``seg-*.npz``, each the vectors of one batch of newly encoded passages
with their text hashes (SHA-1 of the UTF-8 text), written atomically: an interrupted encode
keeps every finished segment and resumes with the passages still missing. A damaged segment
is set aside (``.corrupt-<time>``) and its passages are encoded again. Many small segments
(one per reranking step) are merged into one when they pile up.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..core.cache import cache_dir
from ..core.files import atomic_write, set_aside
from ..core.locks import file_lock

log = logging.getLogger(__name__)

#: passages encoded per segment when a whole collection is encoded (an interrupt loses at most one)
CHUNK = 4096
#: segments beyond which they are merged into one (opening hundreds of files costs more than one)
MERGE_AT = 64


def _key_array(keys: Sequence[bytes]) -> np.ndarray:
    """(n, 20) uint8: hashes as stored (a fixed-width bytes dtype would drop trailing NUL bytes)."""
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 20)


def _key_list(array: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return [flat[i:i + 20] for i in range(0, len(flat), 20)]


def text_hash(text: str) -> bytes:
    """The 20-byte SHA-1 of a passage text: the cache key together with the encoder's fingerprint."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def _save(path: Path, keys: np.ndarray, vectors: Any) -> None:
    with atomic_write(path, "wb") as handle:
        if isinstance(vectors, np.ndarray):
            np.savez(handle, keys=keys, vectors=vectors)
        else:  # scipy CSR
            csr = vectors.tocsr()
            np.savez(handle, keys=keys, data=csr.data, indices=csr.indices, indptr=csr.indptr,
                     shape=np.asarray(csr.shape, dtype=np.int64))


def _load(path: Path) -> tuple[list[bytes], Any]:
    with np.load(path, allow_pickle=False) as archive:
        if archive["keys"].ndim != 2 or archive["keys"].shape[1] != 20:
            raise ValueError("keys are not 20-byte hashes")
        keys = _key_list(archive["keys"])
        if "vectors" in archive.files:
            vectors: Any = archive["vectors"]
        else:
            import scipy.sparse as sp

            vectors = sp.csr_matrix((archive["data"], archive["indices"], archive["indptr"]),
                                    shape=tuple(int(v) for v in archive["shape"]))
    if vectors.shape[0] != len(keys):
        raise ValueError(f"{vectors.shape[0]} vectors for {len(keys)} keys")
    return keys, vectors


class VectorCache:
    """Passage vectors of one encoder (dense ``ndarray`` rows or sparse CSR rows) by text hash.

    :meth:`get` returns the vectors of any list of texts, encoding (with the ``encode``
    function given) only those no process has encoded before; one process encodes at a time
    (a file lock), a second one waits and then finds the vectors there.
    """

    def __init__(self, fingerprint: str, kind: str, meta: dict[str, Any] | None = None,
                 root: str | os.PathLike | None = None):
        self.directory = Path(root) if root else cache_dir("vectors") / f"{kind}-{fingerprint[:32]}"
        self.fingerprint = fingerprint
        self.meta = {"kind": kind, "encoder_fingerprint": fingerprint, **(meta or {})}
        self._rows: dict[bytes, tuple[int, int]] = {}  # hash -> (segment number, row)
        self._segments: list[Any] = []
        self._seen: set[str] = set()
        #: passages this object encoded (the rest came from the cache)
        self.encoded = 0

    # -- reading what is on disk
    def _refresh(self) -> None:
        """Index the segments written since the last look (by this or another process)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("seg-*.npz")):
            if path.name in self._seen:
                continue
            try:
                keys, vectors = _load(path)
            except FileNotFoundError:  # merged away by another process since the listing
                continue
            except Exception as error:  # noqa: BLE001 - a torn or foreign file is only a cache miss
                aside = set_aside(path)
                log.warning("vector cache segment %s is damaged (%s): set aside as %s; its passages will be "
                            "encoded again", path, type(error).__name__, aside.name)
                continue
            self._seen.add(path.name)
            number = len(self._segments)
            self._segments.append(vectors)
            for row, key in enumerate(keys):
                self._rows[key] = (number, row)

    def __len__(self) -> int:
        return len(self._rows)

    # -- the one entry point
    def get(self, texts: Sequence[str], encode: Callable[[list[str]], Any], progress: bool = False,
            desc: str = "encode passages", chunk: int | None = None) -> Any:
        """Vectors of ``texts`` in their order (an ``ndarray`` or a CSR matrix, as ``encode`` returns),
        encoding each distinct text missing from the cache once, ``chunk`` texts per segment."""
        chunk = chunk or CHUNK
        hashes = [text_hash(text) for text in texts]
        self._refresh()
        if any(h not in self._rows for h in hashes):
            with self._writing():
                self._encode_missing(texts, hashes, encode, progress, desc, chunk)
        return self._gather(hashes)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The one writer at a time: holds the directory's lock, with what other processes wrote
        while this one waited indexed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory, f"the passage vectors in {self.directory}"):
            self._refresh()
            yield

    def _encode_missing(self, texts, hashes, encode, progress, desc, chunk) -> None:
        missing: dict[bytes, str] = {}
        for key, text in zip(hashes, texts):
            if key not in self._rows and key not in missing:
                missing[key] = text
        if not missing:
            return
        from tqdm.auto import tqdm

        keys, pending = list(missing), list(missing.values())
        with tqdm(total=len(pending), desc=desc, unit="passage", disable=not progress, smoothing=0.1,
                  leave=False) as bar:
            for start in range(0, len(pending), chunk):
                self._append(keys[start:start + chunk], encode(pending[start:start + chunk]))
                bar.update(len(pending[start:start + chunk]))
        if len(self._seen) > MERGE_AT:
            self._merge()

    def _append(self, keys: list[bytes], vectors: Any) -> None:
        """Write one segment (atomically) and index it (called under the lock)."""
        if vectors.shape[0] != len(keys):
            from ..core.errors import WorkbenchError

            raise WorkbenchError(f"encoder returned {vectors.shape[0]} vectors for {len(keys)} texts")
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            with atomic_write(meta_path) as handle:
                json.dump(self.meta, handle, indent=1, sort_keys=True, default=str)
        name = f"seg-{time.time_ns():020d}-{os.getpid()}.npz"
        _save(self.directory / name, _key_array(keys), vectors)
        self._seen.add(name)
        number = len(self._segments)
        self._segments.append(vectors)
        for row, key in enumerate(keys):
            self._rows[key] = (number, row)
        self.encoded += len(keys)

    # -- encoding elsewhere (workbench.engines.ray): plan what to encode, then store what came back
    def plan(self, groups: Sequence[Sequence[str]], chunk: int | None = None) -> list[list[str]]:
        """The texts :meth:`get` would encode if called on each of ``groups`` in turn, grouped as it
        would encode them: per group, its distinct texts not cached and not in an earlier group,
        in order, cut into ``chunk``-text pieces.

        Encoding each returned group with the encoder's ``encode`` (anywhere) and :meth:`store`-ing
        it gives the very vectors the sequential calls would have: for a model whose output depends
        on which texts share a batch (padding, kernel choice), the batches are the same."""
        chunk = chunk or CHUNK
        self._refresh()
        seen: set[bytes] = set()
        planned: list[list[str]] = []
        for group in groups:
            new: dict[bytes, str] = {}
            for text in group:
                key = text_hash(text)
                if key not in self._rows and key not in seen and key not in new:
                    new[key] = text
            seen.update(new)
            pending = list(new.values())
            planned.extend(pending[start:start + chunk] for start in range(0, len(pending), chunk))
        return planned

    def store(self, texts: Sequence[str], vectors: Any) -> None:
        """Add the vectors of ``texts`` (encoded elsewhere, one group of :meth:`plan`) as one segment."""
        with self._writing():
            keys = [text_hash(text) for text in texts]
            if all(key in self._rows for key in keys):
                return  # another writer stored them meanwhile
            self._append(keys, vectors)
            if len(self._seen) > MERGE_AT:
                self._merge()

    def _merge(self) -> None:
        """Rewrite every segment as one (called under the lock)."""
        keys = list(self._rows)
        vectors = self._gather(keys)
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-merged.npz"
        _save(self.directory / name, _key_array(keys), vectors)
        for old in list(self._seen):
            if old != name:
                (self.directory / old).unlink(missing_ok=True)
        self._seen = {name}
        self._segments = [vectors]
        self._rows = {key: (0, row) for row, key in enumerate(keys)}

    def _gather(self, hashes: Sequence[bytes]) -> Any:
        locations = [self._rows[h] for h in hashes]
        sparse = bool(self._segments) and not isinstance(self._segments[0], np.ndarray)
        if sparse:
            import scipy.sparse as sp

            if not locations:
                return None
            by_segment: dict[int, list[int]] = {}
            for position, (segment, _) in enumerate(locations):
                by_segment.setdefault(segment, []).append(position)
            parts, order = [], []
            for segment, positions in by_segment.items():
                parts.append(self._segments[segment][[locations[p][1] for p in positions]])
                order.extend(positions)
            stacked = sp.vstack(parts, format="csr", dtype=np.float32)
            return stacked[np.argsort(np.asarray(order))]
        if not self._segments:
            return None
        out = np.empty((len(locations), self._segments[0].shape[1]), dtype=np.float32)
        segments = np.fromiter((s for s, _ in locations), dtype=np.int64, count=len(locations))
        rows = np.fromiter((r for _, r in locations), dtype=np.int64, count=len(locations))
        for number in np.unique(segments):
            where = segments == number
            out[where] = self._segments[int(number)][rows[where]]
        return out
