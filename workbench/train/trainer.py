"""Fine-tuning a ranker on lists, per fold: resumable, seeded, logged.

One step takes ``lists_per_batch`` queries, samples ``list_size`` candidates of each (every
relevant one first, seeded per step), scores all pairs in length-sorted, dynamically padded
chunks, and applies the list loss. AdamW with three learning rates (embeddings / encoder /
head), configurable beta2, linear warmup then linear decay, gradient clipping, a full reshuffle
every epoch, bf16 autocast where the device computes it natively. Each epoch ends with
validation on the held-out training queries (loss, MRR@10, NDCG@5, NDCG@10, separation,
parameter drift per group); the best NDCG@10 checkpoint is kept and training stops early after
``patience`` epochs without a gain. A checkpoint (weights, optimizer, scheduler, RNG states,
position) every ``checkpoint_every`` steps lets an interrupted run resume to the same weights.

Why a hand-written loop rather than ``CrossEncoderTrainer``: lists with graded labels and
per-step candidate sampling, the hybrid loss's top-5 pair selection on the current ranking,
three learning-rate groups, and per-epoch ranking validation with drift and separation logs;
``make bench`` compares its throughput with ``CrossEncoderTrainer`` on a loss both support.

On GPUs: ``gradient_accumulation`` splits each step's lists into micro-batches (each loss weighted
by its share of the lists), ``gradient_checkpointing`` recomputes the backbone's activations, and
under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) each rank trains on its share of
every step's lists and the gradients are summed over ranks before the optimizer step, so the
global batch stays ``lists_per_batch`` lists and the loss curve is the single process's (for
losses that average over lists; InfoNCE's in-batch negatives are those of each micro-batch).
Rank 0 alone writes logs, checkpoints and models.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import WorkbenchError
from ..models.devices import resolve_device, set_torch_threads
from ..models.precision import native_bf16
from .batches import Encoded, ListBatcher, sample_candidates
from .checkpoints import (CHECKPOINT_DIR, append_csv_row, append_json_line, publish_model, read_checkpoint,
                          truncate_logs, write_checkpoint)
from .config import INFONCE, TrainConfig
from .data import Fold, RankingList
from .distributed import join_process_group, sum_gradients, sum_over_ranks, wait_for_ranks
from .losses import LOSSES, listwise_softmax
from .model_factory import build_model, enable_gradient_checkpointing, resolve_backbone
from .optimiser import GROUPS, make_optimizer, parameter_drift, warmup_linear
from .validation import validation_figures, validation_metrics

__all__ = ["Trainer", "sample_candidates", "validation_metrics", "warmup_linear"]


class Trainer:
    """Trains one fold of a configuration into ``out_dir`` (``model/`` keeps the best checkpoint)."""

    def __init__(self, config: TrainConfig, fold: Fold, out_dir: str | Path, progress: bool = True):
        from transformers import AutoTokenizer

        self.config = config
        self.fold = fold
        self.out = Path(out_dir)
        self.progress = progress
        if not fold.train:
            raise WorkbenchError(f"fold {fold.name} has no training lists")
        if threads := config.threads:
            set_torch_threads(threads)
        self.rank, self.world_size, self.device = join_process_group(resolve_device(config.device))
        self.main = self.rank == 0  # the process that writes logs, checkpoints and models
        self.precision = ("bf16" if native_bf16(self.device) else "fp32") if config.precision == "auto" \
            else config.precision
        self.backbone = resolve_backbone(config.backbone)
        torch.manual_seed(config.seed)
        self.bi_encoder = config.architecture == "bi-encoder"
        self.tokenizer = None if self.bi_encoder else AutoTokenizer.from_pretrained(str(self.backbone),
                                                                                     local_files_only=True)
        self.model = build_model(config, self.backbone, self.tokenizer).to(self.device)
        if self.bi_encoder:  # the body's own tokenizer (a sentence-transformers directory may nest it)
            self.tokenizer = self.model.tokenizer
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        self.batcher = ListBatcher(config, self.model, self.tokenizer, self.device, self.precision)
        self.initial = {name: p.detach().clone() for name, p in self.model.named_parameters()}
        self.optimizer = make_optimizer(self.model, config)
        self.steps_per_epoch = math.ceil(len(fold.train) / config.lists_per_batch)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           warmup_linear(self.total_steps, config.warmup))
        self.loss_fn = listwise_softmax if config.loss == INFONCE else LOSSES[config.loss]
        # a list is tokenized once; lists read lazily from disk (ShardedLists) per batch, never all at once
        self.train_encoded = [self._encode(lst) for lst in fold.train] if isinstance(fold.train, list) else None
        self.validation_encoded = [self._encode(lst) for lst in fold.validation]
        self.state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_ndcg": -1.0, "best_epoch": None,
                      "stale_epochs": 0, "stopped_early": False, "done": False, "train_seconds": 0.0,
                      "pairs_seen": 0, "baseline_ndcg": None}

    # ------------------------------------------------------------------ data

    def _encode(self, lst: RankingList) -> Encoded:
        return self.batcher.encode(lst)

    def _encoded(self, index: int) -> Encoded:
        """Training list ``index``, tokenized (lazy lists: now, kept nowhere)."""
        if self.train_encoded is not None:
            return self.train_encoded[index]
        return self._encode(self.fold.train[index])

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """The training lists' order in ``epoch``: a seeded permutation (lazy lists: their own
        order, which reads each shard once)."""
        order = getattr(self.fold.train, "epoch_order", None)
        if order is not None:
            return order(self.config.seed, epoch)
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.fold.train))

    def _batch(self, encoded: list[Encoded], rng: np.random.Generator | None,
               in_batch: bool = False, picks: list[np.ndarray] | None = None) -> tuple[torch.Tensor, ...]:
        """Scores, labels and mask of a batch of lists (see :meth:`ListBatcher.batch`)."""
        return self.batcher.batch(encoded, rng, in_batch=in_batch, picks=picks)

    def _loss(self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        options = dict(self.config.loss_options)
        if self.config.loss == "hybrid":
            return self.loss_fn(scores, labels, mask, return_parts=True, **options)
        return self.loss_fn(scores, labels, mask, **options), {}

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def save_checkpoint(self) -> None:
        """Weights, optimizer, scheduler, RNG and position, written to a temp dir then renamed (by rank 0)."""
        if not self.main:
            return
        write_checkpoint(self.out, {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                                    "scheduler": self.scheduler.state_dict(), "state": dict(self.state),
                                    "torch_rng": torch.get_rng_state(), "config": self.config.key()})

    def load_checkpoint(self) -> bool:
        saved = read_checkpoint(self.out, self.device, self.config.key())
        if saved is None:
            return False
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state.update(saved["state"])
        torch.set_rng_state(saved["torch_rng"])
        return True

    # ------------------------------------------------------------------ logs

    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        if self.main:
            append_csv_row(self.out / name, row)

    def _append_epoch(self, row: dict[str, Any]) -> None:
        if self.main:
            append_json_line(self.out / "epochs.jsonl", row)

    def _truncate_logs(self) -> None:
        truncate_logs(self.out, self.state["global_step"], self.state["epoch"])

    def drift(self) -> dict[str, float]:
        """Relative parameter drift from the initial weights per group: ``||w - w0|| / ||w0||``."""
        return parameter_drift(self.model, self.initial)

    # ------------------------------------------------------------------ validation

    def score_lists(self, encoded: list[Encoded]) -> list[np.ndarray]:
        return self.batcher.score_lists(encoded)

    def validate(self) -> dict[str, float]:
        lists, encoded = self.fold.validation, self.validation_encoded
        if not lists:
            return {}
        return validation_figures(lists, encoded, self.score_lists(encoded), self._loss)

    # ------------------------------------------------------------------ the loop

    def train_step(self, indices: Any, rng: np.random.Generator) -> dict[str, float]:
        """One optimizer step over the training lists ``indices``: this rank's share of them (all in one
        process) in ``gradient_accumulation`` micro-batches, each loss weighted by its share of the step's
        lists, the gradients summed over ranks, then clipping, AdamW and the schedule. Returns the step's
        loss (and its parts), gradient norm and labelled pairs, over all ranks."""
        items = [self._encoded(i) for i in indices]
        # every list's candidates drawn as one process draws them, whatever the split
        picks = [sample_candidates(item.labels, self.config.list_size, rng) for item in items]
        share = np.array_split(np.arange(len(items)), self.world_size)[self.rank]
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {"loss": 0.0, "pairs": 0}
        for micro in np.array_split(share, self.config.gradient_accumulation):
            if not len(micro):  # fewer lists than micro-batches (the epoch's last step)
                continue
            scores, labels, mask = self._batch([items[i] for i in micro], None, in_batch=self.config.loss == INFONCE,
                                               picks=[picks[i] for i in micro])
            loss, parts = self._loss(scores, labels, mask)
            weight = len(micro) / len(items)
            (loss * weight if weight != 1 else loss).backward()
            for name, value in {"loss": loss, **{f"loss_{k}": v for k, v in parts.items()}}.items():
                totals[name] = totals.get(name, 0.0) + weight * float(value.detach())
            totals["pairs"] += self.batcher.last_batch_pairs
        if self.world_size > 1:
            sum_gradients(self.model)
            totals = sum_over_ranks(totals, self.world_size)
        totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip))
        self.optimizer.step()
        self.scheduler.step()
        return totals

    def train(self, stop_after_steps: int | None = None) -> dict[str, Any]:
        """Train (resuming from the checkpoint if there is one); returns the summary.

        ``stop_after_steps`` stops (as an interruption would) after that many steps of this call.
        """
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.load_checkpoint()
        if self.main and resumed:
            self._truncate_logs()
        elif self.main:
            for name in ("steps.csv", "epochs.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        if self.main:
            (self.out / "train-config.json").write_text(json.dumps(self.config.to_dict(), indent=1), encoding="utf-8")
        if self.bi_encoder and not resumed:
            # a bi-encoder ranks before training: its figures are what fine-tuning has to beat (epoch -1)
            metrics = self.validate()
            self.state["baseline_ndcg"] = metrics.get("ndcg@10")
            self._append_epoch({"epoch": -1, "step": 0, **metrics, **{f"drift_{k}": 0.0 for k in GROUPS}})
        steps_this_call = 0
        started = time.perf_counter()
        bar = tqdm(total=self.total_steps, initial=self.state["global_step"], desc=f"train {self.fold.name}",
                   unit="step", disable=not (self.progress and self.main))
        try:
            while not self.state["done"] and self.state["epoch"] < self.config.epochs:
                epoch = self.state["epoch"]
                order = self._epoch_order(epoch)
                batches = [order[i:i + self.config.lists_per_batch]
                           for i in range(0, len(order), self.config.lists_per_batch)]
                self.model.train()
                for position in range(self.state["step_in_epoch"], len(batches)):
                    if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                        raise KeyboardInterrupt
                    step = self.train_step(batches[position], np.random.default_rng([self.config.seed, epoch,
                                                                                      position]))
                    self.state["step_in_epoch"] = position + 1
                    self.state["global_step"] += 1
                    steps_this_call += 1
                    self.state["pairs_seen"] += step.pop("pairs")
                    now = time.perf_counter()
                    self.state["train_seconds"] += now - started
                    started = now
                    row = {"step": self.state["global_step"], "epoch": epoch, **step,
                           **{f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}}
                    self._append_csv("steps.csv", row)
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    if self.state["global_step"] % self.config.checkpoint_every == 0:
                        self.save_checkpoint()
                self._end_epoch(epoch, started)
                started = time.perf_counter()
        finally:
            bar.close()
        if self.world_size > 1:  # rank 0 has published the model when any rank returns
            wait_for_ranks()
        # totals over every call that trained this fold (an interrupted run's time counts too)
        seconds, pairs_seen = self.state["train_seconds"], self.state["pairs_seen"]
        return {"fold": self.fold.name, "epochs_run": self.state["epoch"], "best_epoch": self.state["best_epoch"],
                "best_val_ndcg@10": self.state["best_ndcg"], "stopped_early": self.state["stopped_early"],
                "seconds": round(seconds, 1), "pairs_per_s": round(pairs_seen / seconds, 2) if seconds else None,
                "steps": self.state["global_step"], "baseline_val_ndcg@10": self.state.get("baseline_ndcg"),
                "resumed": resumed}

    def _end_epoch(self, epoch: int, started: float) -> None:
        metrics = self.validate()
        self.state["train_seconds"] += time.perf_counter() - started  # validation counts as training time
        row = {"epoch": epoch, "step": self.state["global_step"], **metrics,
               **{f"drift_{k}": v for k, v in self.drift().items()},
               **{f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups}}
        self._append_epoch(row)
        ndcg = metrics.get("ndcg@10", 0.0)
        if ndcg > self.state["best_ndcg"] or self.state["best_epoch"] is None:
            self.state.update(best_ndcg=ndcg, best_epoch=epoch, stale_epochs=0)
            self.save_model()
        else:
            self.state["stale_epochs"] += 1
            if self.state["stale_epochs"] >= self.config.patience:
                self.state.update(done=True, stopped_early=True)
        self.state["epoch"] = epoch + 1
        self.state["step_in_epoch"] = 0
        if self.state["epoch"] >= self.config.epochs:
            self.state["done"] = True
        self.save_checkpoint()

    def save_model(self) -> Path:
        """The current weights as the fold's model (``model/``), with the leakage record and a card."""
        target = self.out / "model"
        if not self.main:
            return target
        work = self.out / ".model.tmp"
        shutil.rmtree(work, ignore_errors=True)
        meta = {"backbone": self.config.backbone, "loss": self.config.loss, "loss_options": self.config.loss_options,
                "fold": self.fold.name, "evaluate_on": self.fold.evaluate_on, "sources": list(self.fold.sources),
                "max_length": self.config.max_length, "epoch": self.state["epoch"]}
        self.model.save(work, self.tokenizer, meta)
        return publish_model(work, target, self.fold)
