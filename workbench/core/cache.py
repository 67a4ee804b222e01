"""Where derived artefacts (indexes, embeddings, score caches) are kept."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CACHE_ENV = "WORKBENCH_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$WORKBENCH_CACHE`` (default ``~/.cache/workbench``) joined with ``parts``, created."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workbench")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(*values: object) -> str:
    """Stable sha256 of JSON-serialisable values (dict keys sorted)."""
    payload = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
