"""The cost of a training configuration before it runs (``workbench plan --train CONFIG``).

Per fold, the lists as training builds them: training and validation lists, steps per epoch and
in all (``epochs``; early stopping may end sooner), labelled (query, passage) pairs per step and
in all. The time per step is measured here with the real :class:`~workbench.train.trainer.Trainer`
(its ``train_step``, on the fold's first lists, one warm-up step then ``steps`` timed ones, in a
temporary directory) on this machine's CPU or GPU, or derived from a given throughput::

    seconds_per_step = pairs_per_step / pairs_per_s
    wall_s           = sum over folds (total_steps * seconds_per_step
                                       + epochs * validation_pairs / validation_pairs_per_s)

Validation scores each held-out list whole, forward only: measured too, or (given throughput)
assumed 3x the training pairs/s (a forward pass is about a third of forward + backward).
"""
from __future__ import annotations

import math
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError, first_line
from .config import TrainConfig
from .data import Fold, fold_lists

#: validation pairs/s per training pairs/s when the throughput is given (forward vs forward + backward)
FORWARD_SPEEDUP = 3.0


def cpu_name() -> str:
    """The CPU's model name (lscpu, else platform)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@dataclass
class FoldCost:
    """One fold's lists, steps and pairs."""

    fold: str
    train_lists: int
    validation_lists: int
    steps_per_epoch: int
    total_steps: int
    pairs_per_epoch: int
    validation_pairs: int          # scored once per epoch, forward only

    @property
    def pairs_per_step(self) -> float:
        return self.pairs_per_epoch / self.steps_per_epoch


def fold_cost(config: TrainConfig, fold: Fold) -> FoldCost:
    """Lists, steps and labelled pairs of ``fold`` under ``config`` (a list gives ``list_size``
    sampled candidates, all of them when it is shorter or ``list_size`` is 0)."""
    steps = math.ceil(len(fold.train) / config.lists_per_batch)
    pairs = sum(min(len(lst), config.list_size) if config.list_size else len(lst) for lst in fold.train)
    return FoldCost(fold.name, len(fold.train), len(fold.validation), steps, steps * config.epochs, pairs,
                    sum(len(lst) for lst in fold.validation))


@dataclass
class StepTiming:
    """Training and validation throughput: measured here, or given."""

    pairs_per_s: float
    validation_pairs_per_s: float
    source: str                     # how it was obtained (machine, threads, precision; or "given")
    seconds_per_step: float | None = None
    pairs_per_step: float | None = None


def measure_steps(config: TrainConfig, fold: Fold, steps: int = 3, warmup: int = 1) -> StepTiming:
    """Time ``steps`` real training steps (after ``warmup``) of ``config`` on ``fold``'s first lists,
    and the scoring of up to 4 validation lists; nothing is written outside a temporary directory."""
    import torch

    from .trainer import Trainer

    needed = (steps + warmup) * config.lists_per_batch
    small = Fold(fold.name, fold.evaluate_on, list(fold.train[:needed]), list(fold.validation[:4]), fold.sources)
    with tempfile.TemporaryDirectory(prefix="workbench-plan-") as out:
        trainer = Trainer(config, small, Path(out) / fold.name, progress=False)
        trainer.model.train()
        order = np.arange(len(small.train))
        batches = [order[i:i + config.lists_per_batch] for i in range(0, len(order), config.lists_per_batch)]
        seconds, pairs = 0.0, 0
        for position in range(steps + warmup):
            batch = batches[position % len(batches)]
            started = time.perf_counter()
            result = trainer.train_step(batch, np.random.default_rng([config.seed, 0, position]))
            _synchronize(trainer.device)
            if position >= warmup:
                seconds += time.perf_counter() - started
                pairs += result["pairs"]
        validation_rate = 0.0
        if trainer.validation_encoded:
            started = time.perf_counter()
            trainer.score_lists(trainer.validation_encoded)
            _synchronize(trainer.device)
            validation_rate = sum(len(x.labels) for x in trainer.validation_encoded) / (time.perf_counter() - started)
        device = trainer.device
        where = (torch.cuda.get_device_name(device) if device.type == "cuda"
                 else f"{cpu_name()}, {torch.get_num_threads()} threads")
        source = (f"measured here: {where}, {trainer.precision}, {steps} steps after {warmup} warm-up "
                  f"({pairs / steps:.0f} pairs per step)")
    return StepTiming(pairs / seconds, validation_rate or pairs / seconds * FORWARD_SPEEDUP, source,
                      seconds / steps, pairs / steps)


def _synchronize(device: Any) -> None:
    import torch

    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize(device)


def given_timing(pairs_per_s: float) -> StepTiming:
    if not (pairs_per_s > 0 and math.isfinite(pairs_per_s)):
        raise WorkbenchError("--throughput must be a positive number of labelled pairs per second")
    return StepTiming(pairs_per_s, pairs_per_s * FORWARD_SPEEDUP,
                      f"given: {pairs_per_s:g} pairs/s (validation assumed {FORWARD_SPEEDUP:g}x, forward only)")


@dataclass
class TrainingPlan:
    """Lists, steps, pairs and wall time of a configuration; ``notes`` say what is unknown."""

    config: dict[str, Any]
    folds: list[FoldCost]
    timing: StepTiming | None
    notes: list[str] = field(default_factory=list)

    def fold_seconds(self, cost: FoldCost) -> float | None:
        if self.timing is None:
            return None
        train = cost.total_steps * cost.pairs_per_step / self.timing.pairs_per_s
        return train + self.config["epochs"] * cost.validation_pairs / self.timing.validation_pairs_per_s

    @property
    def wall_s(self) -> float | None:
        times = [self.fold_seconds(cost) for cost in self.folds]
        return sum(times) if self.folds and None not in times else None

    def text(self) -> str:
        from ..engines.plan import format_duration

        c = self.config
        lines = [f"training plan: {c['name']} ({c['architecture']}, {c['backbone']}, loss {c['loss']}, "
                 f"{c['epochs']} epochs max, {c['lists_per_batch']} lists x {c['list_size'] or 'all'} candidates "
                 f"per step, gradient_accumulation {c['gradient_accumulation']})"]
        for cost in self.folds:
            seconds = self.fold_seconds(cost)
            lines.append(f"  fold {cost.fold}: {cost.train_lists:,} training lists, {cost.validation_lists:,} "
                         f"validation lists; {cost.steps_per_epoch:,} steps per epoch, {cost.total_steps:,} in all; "
                         f"{cost.pairs_per_step:,.1f} pairs per step, {cost.pairs_per_epoch * c['epochs']:,} in all "
                         f"(+ {cost.validation_pairs:,} validation pairs per epoch)"
                         + (f"; {format_duration(seconds)}" if seconds is not None else ""))
        if self.timing is not None:
            t = self.timing
            per_step = t.seconds_per_step if t.seconds_per_step is not None else (
                self.folds[0].pairs_per_step / t.pairs_per_s if self.folds else None)
            lines.append(f"  time per step: {per_step:.3g} s, {t.pairs_per_s:,.1f} pairs/s "
                         f"(validation {t.validation_pairs_per_s:,.1f} pairs/s); {t.source}"
                         if per_step is not None else f"  throughput: {t.pairs_per_s:,.1f} pairs/s; {t.source}")
        if self.wall_s is not None:
            lines.append(f"  wall time: {format_duration(self.wall_s)} for {len(self.folds)} fold(s), "
                         f"all {c['epochs']} epochs (early stopping may end sooner)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "folds": [{**asdict(f), "pairs_per_step": f.pairs_per_step,
                                                  "seconds": self.fold_seconds(f)} for f in self.folds],
                "timing": asdict(self.timing) if self.timing else None, "wall_s": self.wall_s, "notes": self.notes}


def config_folds(config: TrainConfig, data_dir: str | Path | None, folds: list[str] | None) -> list[Fold]:
    """The folds' lists, built as ``workbench train`` builds them (train.run.train_config)."""
    return [fold_lists(name, data_dir, validation=config.validation, seed=config.seed,
                       sources=tuple(config.sources) if config.sources else None, limit=config.limit_queries)
            for name in folds or config.folds]


def training_plan(config: TrainConfig, data_dir: str | Path | None = None, folds: list[str] | None = None,
                  throughput: float | None = None, steps: int = 3) -> TrainingPlan:
    """Lists, steps and pairs of ``config``'s folds and its wall time: from ``throughput`` (labelled
    pairs per second) when given, else measured here on the first fold."""
    notes: list[str] = []
    built: list[Fold] = []
    if getattr(config, "train", None):
        notes.append(f"training data {', '.join(config.train)} are built by `workbench train` (they may need "
                     "internet and a first-stage run over the training queries): the list count is unknown "
                     f"until then; a step is {config.lists_per_batch} lists of up to {config.list_size or 'all'} "
                     "candidates")
    else:
        try:
            built = config_folds(config, data_dir, folds)
        except WorkbenchError as error:
            notes.append(f"the folds' lists cannot be built here ({error}); steps and wall time unknown")
    timing = None
    if throughput is not None:
        timing = given_timing(throughput)
    elif built:
        try:
            timing = measure_steps(config, built[0], steps)
        except (WorkbenchError, OSError) as error:
            notes.append(f"cannot measure here ({first_line(error)}); give --throughput PAIRS_PER_S "
                         "(e.g. measured on the GPU)")
    config_values = config.to_dict()
    return TrainingPlan(config_values, [fold_cost(config, fold) for fold in built], timing, notes)
