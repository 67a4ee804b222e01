"""``backend=auto``: the fastest *exact* path on this machine, chosen by measurement, once.

Which exact fp32 path is faster depends on the CPU: on an AMD EPYC without AVX-512, ONNX Runtime
fp32 beat torch fp32 by 1.36x (cross-encoder); on an Intel Xeon with AVX-512 and AMX, torch fp32
beat ONNX fp32. So no rule fixed in code can be right everywhere. The first time a component
with ``backend=auto`` scores on a machine, each candidate path scores the same few hundred real
pairs (or passages); a candidate whose scores differ from torch fp32 by more than ``tolerance``
is not exact and never chosen; the fastest exact one is kept, and the choice is cached under
``$WORKBENCH_CACHE/backend-choice`` per (CPU model and flags, thread count, model, component),
with the timings, so later processes choose without measuring.

The choice never changes what a run means: the run's key says ``auto`` (an exact fp32 path), the
manifest and the leaderboard's ``backend`` column say which path ran.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..core.cache import cache_dir, fingerprint
from ..core.files import atomic_write

#: exactness: the largest absolute score difference from torch fp32 a candidate may show
EXACT_TOLERANCE = 1e-6
#: timed calls per candidate, after every candidate's untimed warm-up call and in rounds over all
#: candidates (the minimum is kept: least disturbed by others)
TIMED_CALLS = 2
CHOICE_VERSION = "backend-choice/v2"
#: batch sizes timed besides the default one when a user left the batch size to the workbench: on
#: CPUs the default 32 can lose to 16 (less padding in a length-sorted batch) by 7-13% (Intel Xeon,
#: docs/precision.md); a path named ``torch@16`` is torch fp32 at 16 per batch
TUNED_BATCH_SIZES = (16,)


def path_name(backend: str, batch_size: int | None = None) -> str:
    """A candidate's name: ``torch``, ``onnx``, or with a batch size, ``torch@16``."""
    return backend if batch_size is None else f"{backend}@{int(batch_size)}"


def split_path(name: str) -> tuple[str, int | None]:
    """(backend, batch size or None) of a candidate's name."""
    backend, _, size = name.partition("@")
    return backend, (int(size) if size else None)


def candidates_for(backends: Sequence[str], tune_batch: bool) -> tuple[str, ...]:
    """The candidate paths: each backend at the default batch size and, when the batch size is
    the workbench's to choose, at each of :data:`TUNED_BATCH_SIZES`."""
    sizes = (None, *TUNED_BATCH_SIZES) if tune_batch else (None,)
    return tuple(path_name(backend, size) for size in sizes for backend in backends)


def cpu_signature() -> dict[str, str]:
    """The CPU model and a digest of its flags: what decides which kernels a path can use."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and value.strip():
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    return {"cpu": model, "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16]}


@dataclass
class Choice:
    """What calibration decided: the path, the seconds of each candidate on the sample, and the
    candidates left out as inexact (with their largest difference from torch fp32)."""

    path: str
    seconds: dict[str, float]
    inexact: dict[str, float]
    items: int
    cached: bool = False

    def line(self, what: str) -> str:
        timings = ", ".join(f"{name} {self.items / s:.1f}/s" for name, s in sorted(self.seconds.items(),
                                                                                   key=lambda kv: kv[1]))
        left_out = "".join(f"; {name} left out (max |diff| {diff:.1e})" for name, diff in self.inexact.items())
        return f"backend=auto for {what}: {self.path} (measured on {self.items} items: {timings}{left_out})"


def choice_path(component: str, model_key: str, candidates: Sequence[str], threads: int) -> Path:
    key = fingerprint(CHOICE_VERSION, component, model_key, sorted(candidates), threads, cpu_signature())
    return cache_dir("backend-choice") / f"{component}-{key[:24]}.json"


def cached_choice(component: str, model_key: str, candidates: Sequence[str], threads: int) -> Choice | None:
    """The cached choice for this machine, model and thread count, if one was made."""
    path = choice_path(component, model_key, candidates, threads)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("path") in candidates:
            return Choice(record["path"], dict(record["seconds"]), dict(record.get("inexact", {})),
                          int(record["items"]), cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def calibrate(component: str, model_key: str, paths: Mapping[str, Callable[[], np.ndarray]], threads: int,
              reference: str = "torch", tolerance: float = EXACT_TOLERANCE, items: int = 0,
              say: Callable[[str], None] | None = None) -> Choice:
    """Score the same sample with every candidate path (``paths``: name -> a call that scores the
    sample and returns its scores), keep the fastest whose scores are within ``tolerance`` of the
    ``reference`` path's, cache the decision and return it. The reference is always exact."""
    found = cached_choice(component, model_key, list(paths), threads)
    if found is not None:
        return found
    if say is None:
        say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    say(f"backend=auto: timing {', '.join(paths)} on {items or 'a sample of'} items for {component} "
        "(once per machine and model)")
    # every path runs once untimed before any is timed (its outputs are what exactness is judged
    # on): a path slow only on its first call (lazy set-up, kernel choice, buffers growing) is not
    # penalised, whichever order the paths come in
    outputs = {name: np.asarray(run(), dtype=np.float64) for name, run in paths.items()}
    seconds = {name: float("inf") for name in paths}
    for _ in range(TIMED_CALLS):  # in rounds over all paths: a spell of load elsewhere hits each alike
        for name, run in paths.items():
            started = time.perf_counter()
            run()
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    truth = outputs[reference]
    inexact = {name: float(np.max(np.abs(out - truth))) if out.shape == truth.shape else float("inf")
               for name, out in outputs.items() if name != reference}
    inexact = {name: diff for name, diff in inexact.items() if not diff <= tolerance}
    exact = {name: s for name, s in seconds.items() if name not in inexact}
    choice = Choice(min(exact, key=exact.get), seconds, inexact, items or len(truth))
    record = {"path": choice.path, "seconds": seconds, "inexact": inexact, "items": choice.items,
              "component": component, "threads": threads, **cpu_signature(), "pid": os.getpid(),
              "tolerance": tolerance}
    path = choice_path(component, model_key, list(paths), threads)
    with atomic_write(path) as handle:
        json.dump(record, handle, indent=1)
    say(choice.line(component))
    return choice


def keep_path(component: Any, path: str) -> None:
    """Make ``component`` (with ``session``, ``model``, ``backend``, ``calibrating``, ``batch_size``) run
    ``path`` alone: ``torch`` drops its ONNX Runtime session, ``onnx`` its torch model, ``@N`` sets the
    batch size; calibration is over."""
    component.calibrating = None
    path, batch_size = split_path(path)
    if batch_size is not None:
        component.batch_size = batch_size
    if path == "torch":
        component.session, component.backend = None, "torch"
    else:
        component.model, component.backend = None, "onnx"


def describe_choice(choice: Choice | None) -> dict[str, Any]:
    """Manifest fields of a choice (empty when the backend was forced)."""
    if choice is None:
        return {}
    return {"backend_choice": choice.path, "backend_choice_items_per_s":
            {name: round(choice.items / s, 2) for name, s in choice.seconds.items() if s > 0},
            "backend_choice_cached": choice.cached}
