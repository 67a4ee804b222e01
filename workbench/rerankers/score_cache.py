"""Persistent cache of reranker scores, so re-running an experiment costs no inference.

Each (reranker fingerprint, query text, passage id, passage text hash) is scored once and
stored in SQLite. Scores are committed in chunks while a run progresses, so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from ..core.cache import cache_dir
from ..core.files import set_aside

log = logging.getLogger(__name__)
T = TypeVar("T")


def pair_key(query: str, pid: str, text: str) -> str:
    """Cache key of one (query, passage) pair; includes the passage text's hash."""
    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return hashlib.sha1(f"{query}\x00{pid}\x00{text_hash}".encode("utf-8")).hexdigest()


CORRUPTION_SIGNS = ("malformed", "not a database", "file is encrypted", "disk i/o error")


def is_corruption(error: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means the file is damaged (not busy, not a full disk)."""
    return any(sign in str(error).lower() for sign in CORRUPTION_SIGNS)


class ScoreCache:
    """SQLite-backed map from (model fingerprint, pair key) to score.

    A cache is only a cache: a damaged file (truncated, overwritten, not SQLite) is detected
    when it is opened or read, set aside as ``scores.sqlite.corrupt-<time>`` with one warning
    line, and replaced by an empty cache, so scoring goes on (recomputing what was lost)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_dir("scores") / "scores.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as error:
            if not is_corruption(error):
                raise
            self._set_aside(error)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, pair TEXT NOT NULL, "
                "score REAL NOT NULL, PRIMARY KEY (model, pair)) WITHOUT ROWID")
            connection.commit()
            connection.execute("SELECT count(*) FROM (SELECT 1 FROM scores LIMIT 1)").fetchone()
        except BaseException:
            connection.close()
            raise
        return connection

    def _set_aside(self, error: sqlite3.DatabaseError) -> None:
        aside = set_aside(self.path)
        for suffix in ("-wal", "-shm"):  # SQLite's companions go with it
            companion = Path(str(self.path) + suffix)
            if companion.exists():
                os.replace(companion, Path(str(aside) + suffix))
        log.warning("score cache %s is damaged (%s): set aside as %s; starting an empty cache",
                    self.path, error, aside.name)

    def _recovering(self, action: Callable[[], T]) -> T:
        """Run ``action``; if it finds the file damaged, set the file aside and retry once."""
        try:
            return action()
        except sqlite3.DatabaseError as error:
            if not is_corruption(error):
                raise
            with contextlib.suppress(sqlite3.Error):
                self.connection.close()
            self._set_aside(error)
            self.connection = self._connect()
            return action()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, float]:
        """Scores already cached for ``keys`` (missing keys are absent from the result)."""
        unique = list(dict.fromkeys(keys))

        def lookup() -> dict[str, float]:
            found: dict[str, float] = {}
            for start in range(0, len(unique), 900):  # SQLite's bound-parameter limit
                chunk = unique[start:start + 900]
                marks = ",".join("?" * len(chunk))
                rows = self.connection.execute(
                    f"SELECT pair, score FROM scores WHERE model = ? AND pair IN ({marks})", [model, *chunk])
                found.update(rows)
            return found

        return self._recovering(lookup)

    def put_many(self, model: str, items: Iterable[tuple[str, float]]) -> None:
        """Store scores and commit (a checkpoint an interrupted run resumes from)."""
        rows = [(model, key, float(score)) for key, score in items]

        def store() -> None:
            self.connection.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", rows)
            self.connection.commit()

        self._recovering(store)

    def close(self) -> None:
        self.connection.close()
