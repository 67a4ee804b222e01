"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or an error while writing never leaves a half-written output behind.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator, TextIO

from .errors import WorkbenchError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[TextIO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_abandoned_temporaries(path: str | Path) -> list[Path]:
    """Delete temporary files of ``path`` left by writers that were killed (SIGKILL, power loss):
    ``.<name>.<pid>.<random>.tmp`` whose process no longer exists. Returns what was removed."""
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def set_aside(path: str | Path) -> Path:
    """Rename a damaged cache file or directory out of the way, never deleting it and never
    overwriting an earlier one: ``<name>.corrupt-<time>-<pid>[-<n>]``. Returns the new path."""
    path = Path(path)
    base = f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    aside, counter = path.with_name(base), 1
    while aside.exists():
        aside, counter = path.with_name(f"{base}-{counter}"), counter + 1
    os.replace(path, aside)
    return aside


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def text_lines(path: str | Path, *, blank: bool = False) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 text file with their numbers (1-based), without their line ends:
    the non-blank ones, or every line with ``blank=True`` (readers that count lines themselves,
    such as SGML's). A ``.gz`` file is decompressed. A UTF-8 byte-order mark is dropped (it would
    otherwise glue itself to the first id, which then matches nothing); lines end at ``\n`` only.
    A missing or unreadable file, bytes that are not UTF-8 text and NUL bytes are errors naming
    the file (and the line)."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise WorkbenchError("file not found", path)
    try:
        handle = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    except OSError as error:
        raise WorkbenchError(f"cannot read file: {error.strerror}", path) from None
    number = 0
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise WorkbenchError("not UTF-8 text (a binary or differently encoded file?)", path,
                                         number) from None
                if "\x00" in line:
                    raise WorkbenchError("NUL byte in a text line (a binary file?)", path, number)
                line = line.rstrip("\r\n")
                if blank or line.strip():
                    yield number, line
        except (OSError, EOFError) as error:  # a damaged or truncated .gz
            raise WorkbenchError(f"cannot read file ({error})", path, number + 1) from None
