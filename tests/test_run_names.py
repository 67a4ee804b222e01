"""Run files never collide: a readable slug plus a hash of the full system name."""
from __future__ import annotations

import json

import pandas as pd

from workbench.experiment.store import RunStore, manifest_path_of, run_file_stem, safe_name

COLLIDED_BEFORE = [  # pairs that shared one file under the 0.1 scheme
    ("bm25-mini:k1=0.82,b=0.68", "bm25-mini:k1=0.82,b=0.6"),
    ("run:/tmp/cand.1", "run:/tmp/cand.2"),
    ("run:/tmp/x.trec", "run:/tmp/x.trec+tfidf"),
    ("official-bm25+cross-encoder:/models/é", "official-bm25+cross-encoder:/models/ü"),
]


def _old_path(system: str) -> str:
    from pathlib import Path

    return Path(safe_name(system)).with_suffix(".trec").name


def test_systems_that_collided_get_distinct_files(tmp_path):
    store = RunStore(tmp_path)
    for first, second in COLLIDED_BEFORE:
        if first.endswith("x.trec"):  # the candidates and their reranked run
            assert _old_path(first) == _old_path(second.rsplit("+", 1)[0])
        assert store.paths("dl19", first)[0] != store.paths("dl19", second)[0]


def test_long_and_odd_names_fit_a_file_name():
    stem = run_file_stem("official-bm25+" + "cross-encoder:/a/very/long/path/" * 20)
    assert len(stem) <= 80 + 13
    assert run_file_stem("über") != run_file_stem("uber")
    assert run_file_stem("a.b").endswith(run_file_stem("a.b")[-12:]) and "." not in run_file_stem("a.b")


def _run():
    return pd.DataFrame({"qid": ["1", "1"], "docno": ["a", "b"], "score": [2.0, 1.0]})


def test_saved_run_round_trips_and_manifest_names_the_system(tmp_path):
    store = RunStore(tmp_path)
    for first, second in COLLIDED_BEFORE:
        store.save(_run(), "dl19", first, {}, "key-1")
        store.save(_run().assign(score=[1.0, 2.0]), "dl19", second, {}, "key-2")
        assert store.load_reusable("dl19", first, "key-1").manifest["system"] == first
        assert store.load_reusable("dl19", second, "key-2").manifest["system"] == second
        assert store.load_reusable("dl19", first, "key-2") is None


def _legacy(tmp_path, system: str, stored_system: str):
    """A run stored under the 0.1 name, its manifest naming ``stored_system``."""
    store = RunStore(tmp_path)
    saved = store.save(_run(), "dl19", stored_system, {}, "key")
    legacy_run = tmp_path / "dl19" / _old_path(system)
    saved.path.rename(legacy_run)
    manifest_path_of(saved.path).rename(legacy_run.with_suffix(".manifest.json"))
    return store, legacy_run


def test_legacy_run_of_the_same_system_is_adopted(tmp_path):
    store, legacy = _legacy(tmp_path, "bm25-mini:k1=0.82,b=0.68", "bm25-mini:k1=0.82,b=0.68")
    stored = store.load_reusable("dl19", "bm25-mini:k1=0.82,b=0.68", "key")
    assert stored is not None and stored.path.name.startswith("bm25-mini")
    assert not legacy.exists()
    assert json.loads(manifest_path_of(stored.path).read_text())["run_file"] == stored.path.name


def test_legacy_run_of_another_system_is_never_taken(tmp_path):
    # under the old scheme 'b=0.6' would have read the 'b=0.68' run's file
    store, legacy = _legacy(tmp_path, "bm25-mini:k1=0.82,b=0.6", "bm25-mini:k1=0.82,b=0.68")
    assert store.load_reusable("dl19", "bm25-mini:k1=0.82,b=0.6", "key") is None
    assert legacy.exists()


def test_manifest_that_is_not_an_object_means_not_reusable(tmp_path):
    store = RunStore(tmp_path)
    saved = store.save(_run(), "dl19", "official-bm25", {}, "key")
    for content in (b"[1, 2]", b"\xff\xfe not utf-8", b"{truncated"):
        manifest_path_of(saved.path).write_bytes(content)
        assert store.load_reusable("dl19", "official-bm25", "key") is None
