"""Encoding a whole collection in shards on disk: resumable, and reused by every later run.

Encoding 53k passages takes minutes on a CPU, so vectors are written shard by shard (atomically)
under the cache directory; an interrupted encode resumes at the first missing shard, and a
second build with the same encoder and collection encodes nothing.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, set_aside
from ..core.locks import file_lock

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 4096


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _load_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def encode_in_shards(texts: Sequence[str], encode: Callable[[Sequence[str]], Any], directory: Path,
                     meta: dict[str, Any], shard_size: int = DEFAULT_SHARD_SIZE, progress: bool = True,
                     desc: str = "encode", suffix: str = ".npy",
                     save: Callable[[Path, Any], None] = _save_npy,
                     load: Callable[[Path], Any] = _load_npy) -> list[Any]:
    """Encode ``texts`` shard by shard into ``directory``, reusing shards already there.

    Shard ``i`` holds the vectors of ``texts[i*shard_size:(i+1)*shard_size]`` and is written
    atomically, so a shard on disk is always complete; an unreadable or mis-sized shard is
    encoded again. ``meta`` (what the vectors depend on) is written to ``meta.json``; the
    shard size recorded there wins over ``shard_size`` so a resumed encode lines up.
    Returns the shards' contents in order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # one process encodes a directory at a time; a second one waits, then finds the shards done
    with file_lock(directory, f"the embeddings in {directory}"):
        return _encode_in_shards(texts, encode, directory, meta, shard_size, progress, desc, suffix, save, load)


def _encode_in_shards(texts, encode, directory, meta, shard_size, progress, desc, suffix, save, load) -> list[Any]:
    meta_path = directory / "meta.json"
    if meta_path.is_file():
        try:
            stored = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if stored.get("n") == len(texts) and int(stored.get("shard_size", 0)) > 0:
            shard_size = int(stored["shard_size"])
        else:
            stored = {}
    else:
        stored = {}
    if not stored:
        with atomic_write(meta_path) as handle:
            json.dump({**meta, "n": len(texts), "shard_size": shard_size}, handle, indent=1, sort_keys=True,
                      default=str)
    n_shards = max(1, math.ceil(len(texts) / shard_size))
    shards: list[Any] = [None] * n_shards
    missing: list[int] = []
    for i in range(n_shards):
        path = directory / f"shard-{i:05d}{suffix}"
        expected = min(shard_size, len(texts) - i * shard_size)
        if path.is_file():
            try:
                value = load(path)
                problem = None if value.shape[0] == expected else f"{value.shape[0]} vectors, not {expected}"
            except Exception as error:  # a torn or foreign file
                problem = f"unreadable: {type(error).__name__}"
            if problem is None:
                shards[i] = value
                continue
            aside = set_aside(path)
            log.warning("embedding shard %s is damaged (%s): set aside as %s; encoding it again", path, problem,
                        aside.name)
        missing.append(i)
    done = len(texts) - sum(min(shard_size, len(texts) - i * shard_size) for i in missing)
    if missing:
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), initial=done, desc=desc, unit="passage", disable=not progress,
                  smoothing=0.1) as bar:
            for i in missing:
                chunk = texts[i * shard_size:(i + 1) * shard_size]
                value = encode(chunk)
                if value.shape[0] != len(chunk):
                    raise WorkbenchError(f"encoder returned {value.shape[0]} vectors for {len(chunk)} texts")
                save(directory / f"shard-{i:05d}{suffix}", value)
                shards[i] = value
                bar.update(len(chunk))
    return shards
