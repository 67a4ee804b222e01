"""The plan command's own argument syntax: ``--workers 1,8,32,128`` and ``--pairs QxK``."""
from __future__ import annotations

import re

from ...core.errors import WorkbenchError

_COUNT = re.compile(r"^\s*(\d[\d_]*)\s*(?:[xX*]\s*(\d[\d_]*))?\s*$")


def parse_workers(text: str) -> list[int]:
    """``1,8,32,128`` -> [1, 8, 32, 128]."""
    try:
        counts = [int(part) for part in re.split(r"[,\s]+", text.strip()) if part]
    except ValueError:
        raise WorkbenchError(f"bad --workers {text!r}: expected comma-separated positive integers, "
                             "e.g. 1,8,32,128") from None
    if not counts or min(counts) < 1:
        raise WorkbenchError(f"bad --workers {text!r}: expected comma-separated positive integers, e.g. 1,8,32,128")
    return counts


def parse_pairs(text: str) -> int:
    """``QxK`` (queries times candidates per query: ``6980x1000``) or a plain integer -> pairs."""
    match = _COUNT.match(str(text))
    if match is None:
        raise WorkbenchError(f"bad --pairs {text!r}: expected QxK (queries x candidates, e.g. 6980x1000) "
                             "or a number of pairs")
    queries, depth = match.group(1), match.group(2)
    pairs = int(queries) * (int(depth) if depth is not None else 1)
    if pairs < 1:
        raise WorkbenchError(f"bad --pairs {text!r}: the number of pairs must be positive")
    return pairs
