"""backend=auto chooses the fastest exact path by measurement: the faster of two exact paths
(one slowed on purpose) wins, the decision is cached, an inexact path is never chosen, and the
run's key is the same whichever path a machine picks."""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.models.calibration import cached_choice, calibrate

SCORES = np.linspace(0.0, 1.0, 50)


def _path(delay: float, shift: float = 0.0, calls: list | None = None):
    def run():
        if calls is not None:
            calls.append(1)
        time.sleep(delay)
        return SCORES + shift
    return run


def test_the_faster_exact_path_wins_and_is_cached():
    slow_calls: list[int] = []
    lines: list[str] = []
    choice = calibrate("unit", "model-a", {"torch": _path(0.0), "onnx": _path(0.05, calls=slow_calls)}, threads=2,
                       say=lines.append)
    assert choice.path == "torch" and not choice.cached and choice.seconds["onnx"] > choice.seconds["torch"]
    assert any("timing torch, onnx" in line for line in lines)  # says that it measures
    assert slow_calls  # both were timed
    # the other way round: the slowed one is torch
    choice = calibrate("unit", "model-b", {"torch": _path(0.05), "onnx": _path(0.0)}, threads=2, say=lines.append)
    assert choice.path == "onnx"
    # cached per machine, model and threads: no path runs again
    again_calls: list[int] = []
    cached = calibrate("unit", "model-b", {"torch": _path(0.05, calls=again_calls), "onnx": _path(0.0, calls=again_calls)},
                       threads=2, say=lines.append)
    assert cached.cached and cached.path == "onnx" and not again_calls
    assert cached_choice("unit", "model-b", ["torch", "onnx"], 2).path == "onnx"
    assert cached_choice("unit", "model-b", ["torch", "onnx"], 1) is None  # another thread count: measured anew


def test_a_path_slow_only_on_its_first_call_is_warmed_up_not_penalised():
    """Every candidate runs once untimed before any is timed: a cold start (here 2 s on the first
    call of the otherwise faster path, measured first) does not decide the choice."""
    from workbench.models.calibration import TIMED_CALLS

    order: list[str] = []

    def cold_then_fast(name: str, first: float, after: float):
        def run():
            time.sleep(first if name not in order else after)
            order.append(name)
            return SCORES
        return run

    choice = calibrate("unit", "model-cold", {"torch@16": cold_then_fast("torch@16", 2.0, 0.0),
                                              "torch": cold_then_fast("torch", 0.05, 0.05)},
                       threads=2, say=lambda _: None)
    assert choice.path == "torch@16" and choice.seconds["torch@16"] < 1.0
    assert order[:2] == ["torch@16", "torch"]  # both warmed before either was timed
    assert order.count("torch@16") == order.count("torch") == 1 + TIMED_CALLS


def test_a_batch_size_candidate_that_is_faster_is_kept_with_its_batch_size():
    from types import SimpleNamespace

    from workbench.models.calibration import candidates_for, keep_path, split_path

    assert candidates_for(("torch", "onnx"), tune_batch=True) == ("torch", "onnx", "torch@16", "onnx@16")
    assert candidates_for(("torch", "onnx"), tune_batch=False) == ("torch", "onnx")
    assert split_path("onnx@16") == ("onnx", 16) and split_path("torch") == ("torch", None)
    choice = calibrate("unit", "model-e", {"torch": _path(0.03), "torch@16": _path(0.0, shift=1e-7)}, threads=2,
                       say=lambda _: None)
    assert choice.path == "torch@16"
    component = SimpleNamespace(session="an ONNX session", model="a torch model", backend="onnx",
                                calibrating=("torch", "torch@16"), batch_size=32)
    keep_path(component, choice.path)
    assert (component.backend, component.batch_size, component.session, component.calibrating) == (
        "torch", 16, None, None)


def test_an_inexact_path_is_never_chosen_however_fast():
    choice = calibrate("unit", "model-c", {"torch": _path(0.03), "fast-but-off": _path(0.0, shift=1e-4)},
                       threads=2, say=lambda _: None)
    assert choice.path == "torch" and choice.inexact["fast-but-off"] == pytest.approx(1e-4)
    # within the tolerance (1e-6) is exact
    choice = calibrate("unit", "model-d", {"torch": _path(0.03), "close": _path(0.0, shift=5e-7)},
                       threads=2, say=lambda _: None)
    assert choice.path == "close" and not choice.inexact


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_cross_encoder_auto_calibrates_once_and_keeps_its_key(tmp_path, monkeypatch):
    from workbench.rerankers import get_reranker

    words = ["what", "is", "a", "cat", "dog", "sat", "on", "the", "mat"]
    model = write_tiny_bert(tmp_path / "ce", words, characters=True, model_max_length=64, num_labels=1)
    queries = ["what is a cat"] * 60 + ["dog"] * 60
    passages = ["the cat sat on the mat", "a dog", "mat", "what is the cat on"] * 30
    first = get_reranker(f"cross-encoder:{model}")
    # each exact backend at the default batch size and at 16 (the batch size was left to the workbench)
    assert first.config()["backend"] == "auto" and first.calibrating == ("torch", "onnx", "torch@16", "onnx@16")
    assert get_reranker(f"cross-encoder:{model},batch_size=32").calibrating == ("torch", "onnx")
    key = first.fingerprint
    real_run = first.session.run

    def slowed(*args, **kwargs):  # ONNX Runtime slowed on purpose: torch must win
        time.sleep(0.25)  # far beyond timing noise on a busy machine
        return real_run(*args, **kwargs)

    monkeypatch.setattr(first.session, "run", slowed)
    scores = first.score_pairs(queries, passages)
    assert first.choice.path in ("torch", "torch@16") and first.numerics()["backend"] == "torch"
    assert first.session is None and first.batch_size == (16 if first.choice.path == "torch@16" else 32)
    exact = get_reranker(f"cross-encoder:{model},backend=torch").score_pairs(queries, passages)
    np.testing.assert_allclose(scores, exact, atol=1e-6)
    # a second instance reads the decision: torch only, no ONNX session, the same key
    second = get_reranker(f"cross-encoder:{model}")
    assert second.choice.cached and second.choice.path == first.choice.path and second.session is None
    assert second.fingerprint == key and second.calibrating is None and second.batch_size == first.batch_size
    # a forced backend is its own key (it is asked for by name)
    assert get_reranker(f"cross-encoder:{model},backend=onnx").fingerprint != key


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_dense_encoder_auto_calibrates_once(tmp_path, monkeypatch):
    from workbench.rerankers import get_reranker

    words = ["what", "is", "a", "cat", "dog", "sat", "on", "the", "mat"]
    model = write_tiny_bert(tmp_path / "bi", words, characters=True, model_max_length=64, head="base")
    texts = ["the cat sat on the mat", "a dog", "mat", "what is the cat on"] * 30
    first = get_reranker(f"dense:{model},pooling=cls")
    first.encoder.encode(texts[:5])  # a handful of texts (a few queries) does not decide
    assert first.encoder.calibrating == ("torch", "onnx", "torch@16", "onnx@16") and first.encoder.choice is None
    encoder = first.encoder
    key = first.fingerprint
    real_run = encoder.session.run

    def slowed(*args, **kwargs):  # ONNX Runtime slowed on purpose: torch must win
        time.sleep(0.25)  # far beyond timing noise on a busy machine
        return real_run(*args, **kwargs)

    monkeypatch.setattr(encoder.session, "run", slowed)
    vectors = encoder.encode(texts)
    assert encoder.choice.path in ("torch", "torch@16") and encoder.session is None
    assert first.numerics()["backend"] == "torch"
    exact = get_reranker(f"dense:{model},pooling=cls,backend=torch").encoder.encode(texts)
    np.testing.assert_allclose(vectors, exact, atol=1e-6)
    second = get_reranker(f"dense:{model},pooling=cls")
    assert second.encoder.choice.cached and second.encoder.backend == "torch" and second.encoder.session is None
    assert second.encoder.batch_size == encoder.batch_size
    assert second.fingerprint == key


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_a_ray_worker_runs_the_drivers_exact_path(tmp_path, monkeypatch):
    """Workers take the driver's choice (no measuring of their own), so a run on Ray is the local run."""
    from workbench.engines.ray import ModelRecipe, settle_exact_path
    from workbench.rerankers import get_reranker

    words = ["what", "is", "a", "cat", "dog", "sat", "on", "the", "mat"]
    model = write_tiny_bert(tmp_path / "bi", words, characters=True, model_max_length=64, head="base")
    driver = get_reranker(f"dense:{model},pooling=cls")
    path = settle_exact_path(driver, None)  # settled here, on the driver (too little to measure: its default)
    assert path in ("torch", "onnx") and driver.encoder.calibrating is None and driver.encoder.backend == path
    # a measured choice with a batch size travels whole: the worker forms the driver's batches
    pinned = get_reranker(f"dense:{model},pooling=cls")
    pinned.encoder.pin("torch@16")
    assert (pinned.encoder.backend, pinned.encoder.batch_size, pinned.encoder.calibrating) == ("torch", 16, None)
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "worker-cache"))  # a worker that has measured nothing
    recipe = ModelRecipe(f"dense:{model},pooling=cls", None, None, "cpu", "encoder", driver.encoder.fingerprint,
                         None, path)
    worker = recipe.build()
    assert worker.backend == path and worker.calibrating is None and worker.choice is None
    texts = ["the cat sat on the mat", "a dog"]
    np.testing.assert_array_equal(worker.encode(texts), driver.encoder.encode(texts))
