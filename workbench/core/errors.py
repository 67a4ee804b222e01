"""User-facing errors: one clear line, naming the file and line where possible."""
from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """An error caused by input or configuration, reported as one line without a traceback."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        return where + self.message


def first_line(error: BaseException, limit: int | None = None, *, with_type: bool = False) -> str:
    """The first non-empty line of ``error``'s message (its type's name when it has none), cut to
    ``limit`` characters, after ``Type: `` with ``with_type``: how a library's long or multi-line
    error is quoted in one line."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = lines[0][:limit] if limit is not None else lines[0]
    return f"{type(error).__name__}: {line}" if with_type else line
