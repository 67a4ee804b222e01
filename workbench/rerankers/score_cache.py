"""Persistent cache of reranker scores, so re-running an experiment costs no inference.

Each (reranker fingerprint, query text, passage id, passage text hash) is scored once and
stored in SQLite. Scores are committed in chunks while a run progresses, so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from ..core.cache import cache_dir


def pair_key(query: str, pid: str, text: str) -> str:
    """Cache key of one (query, passage) pair; includes the passage text's hash."""
    text_hash = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return hashlib.sha1(f"{query}\x00{pid}\x00{text_hash}".encode("utf-8")).hexdigest()


class ScoreCache:
    """SQLite-backed map from (model fingerprint, pair key) to score."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_dir("scores") / "scores.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, timeout=60)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, pair TEXT NOT NULL, "
            "score REAL NOT NULL, PRIMARY KEY (model, pair)) WITHOUT ROWID")
        self.connection.commit()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, float]:
        """Scores already cached for ``keys`` (missing keys are absent from the result)."""
        found: dict[str, float] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 900):  # SQLite's bound-parameter limit
            chunk = unique[start:start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT pair, score FROM scores WHERE model = ? AND pair IN ({marks})", [model, *chunk])
            found.update(rows)
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, float]]) -> None:
        """Store scores and commit (a checkpoint an interrupted run resumes from)."""
        self.connection.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                                    [(model, key, float(score)) for key, score in items])
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()
