"""Shared fixtures. Tests needing the MS MARCO data find it at ../shared/data (or $WORKBENCH_DATA)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "msmarco-passage-mini"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _data_dir() -> Path | None:
    configured = os.environ.get("WORKBENCH_DATA")
    for candidate in ([Path(configured)] if configured else []) + [SHARED_DATA]:
        if (candidate / "collection.tsv").is_file():
            return candidate.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The MS MARCO mini data directory; skips the test with a clear reason if absent."""
    found = _data_dir()
    if found is None:
        pytest.skip(f"shared MS MARCO data not found at {SHARED_DATA} (set WORKBENCH_DATA to run data tests)")
    return found


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache directory (indexes, score caches) shared by the whole test session."""
    path = tmp_path_factory.mktemp("workbench-cache")
    os.environ["WORKBENCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def workbench(data_dir, session_cache, tmp_path_factory):
    """A Workbench on the real data with its own runs directory, shared across tests (one JVM)."""
    from workbench.experiment import Workbench

    runs = tmp_path_factory.mktemp("runs")
    return Workbench(data_dir=data_dir, runs_dir=runs, leaderboard=runs / "leaderboard.csv", progress=False)
