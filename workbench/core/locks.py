"""Inter-process locks, so concurrent workbench processes sharing a runs directory or a cache
lose nothing and never compute the same thing twice at the same time.

A lock is an advisory ``flock`` on a small ``.<name>.lock`` file beside what it protects. The
kernel releases it when the holder exits, however it exits (SIGKILL included), so a crashed
process never leaves a stale lock behind. The lock files themselves stay: removing one while
another process waits on it would let two processes in at once.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; single-process use only
    fcntl = None

log = logging.getLogger(__name__)


def lock_path(path: str | Path) -> Path:
    """The lock file guarding ``path``: ``<dir>/.<name>.lock``."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class _Held:
    """A lock as this process holds it: threads queue on ``thread_lock``; ``depth`` counts
    re-entries of the holding thread (a nested ``file_lock`` on the same path must not flock a
    second descriptor, which would wait on itself)."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_HELD: dict[Path, _Held] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: str | Path, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (the file or directory it guards) for the block.

    Blocks while another process holds it, saying once (at INFO) what it waits for.
    Re-entrant within a thread."""
    if fcntl is None:
        yield
        return
    guard = lock_path(Path(path).absolute())
    with _HELD_GUARD:
        held = _HELD.setdefault(guard, _Held())
    with held.thread_lock:
        if held.depth == 0:
            held.fd = _acquire(guard, what or str(path))
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
                held.fd = None


def _acquire(guard: Path, what: str) -> int:
    guard.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another workbench process to finish with %s", what)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd
