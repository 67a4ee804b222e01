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

import csv
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..data.datasets import relevance_level_of
from ..data.leakage import write_training_queries
from ..evaluation.metrics import evaluate_run
from ..models.batching import length_sorted_batches, pad_batch, to_device
from ..models.devices import configure_threads, resolve_device
from ..models.precision import autocast, native_bf16
from ..models.ranker import EncoderDecoderRanker, EncoderRanker, pair_features
from .config import TrainConfig
from .data import Fold, RankingList
from .config import INFONCE
from .losses import LOSSES, listwise_softmax

GROUPS = ("embeddings", "encoder", "head")


def append_csv_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a CSV log (the header first when the file is new)."""
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def publish_model(work: Path, target: Path, fold: Fold) -> Path:
    """Record the fold's training and validation queries in the model saved at ``work`` (the leakage
    guard reads them), then swap it in as ``target`` whole."""
    write_training_queries(work, fold.queries(), {"fold": fold.name, "train_qids": fold.train_qids(),
                                                  "validation_qids": [x.qid for x in fold.validation]})
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)
    return target


def truncate_logs(out: Path, global_step: int, epochs_done: int) -> None:
    """On resume, drop the log rows (``steps.csv``, ``epochs.jsonl``) written after the checkpoint
    being resumed: they will be written again."""
    path = out / "steps.csv"
    if path.is_file():
        frame = pd.read_csv(path)
        with atomic_write(path) as handle:
            frame[frame["step"] <= global_step].to_csv(handle, index=False)
    path = out / "epochs.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        with atomic_write(path) as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows if row["epoch"] < epochs_done)


def resolve_backbone(backbone: str) -> Path:
    """A local directory for ``backbone``: ``minilm`` is the packaged all-MiniLM-L6-v2 body."""
    from ..models.dense import minilm_path
    from ..models.hub import resolve_model_dir

    if backbone == "minilm":
        return minilm_path()
    return resolve_model_dir(backbone, "backbone", download=False)


def _encoder_decoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    ids = tokenizer.encode(config.true_token, add_special_tokens=False)
    if len(ids) != 1:
        raise WorkbenchError(f"true_token {config.true_token!r} is not one token for this tokenizer")
    return EncoderDecoderRanker(directory, ids[0])


def _encoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    return EncoderRanker(directory, pooling=config.pooling, dropout=config.dropout)


def _bi_encoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    from .biencoder import BiEncoderRanker

    return BiEncoderRanker(directory, pooling=config.pooling, max_length=config.max_length,
                           similarity=config.similarity, scale=config.scale)


#: the rankers a configuration's ``architecture`` can name
ARCHITECTURES: dict[str, Callable[[TrainConfig, Path, Any], torch.nn.Module]] = {
    "encoder": _encoder,
    "encoder-decoder": _encoder_decoder,
    "bi-encoder": _bi_encoder,
}


def build_model(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    """The ranker of ``config.architecture`` on the backbone in ``directory``."""
    return ARCHITECTURES[config.architecture](config, directory, tokenizer)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the three parameter groups, each with its learning rate (``name`` kept per group)."""
    rates = {"embeddings": config.lr_embeddings, "encoder": config.lr_encoder, "head": config.lr_head}
    groups = [{"params": params, "lr": rates[name], "name": name}
              for name, params in model.parameter_groups().items() if params]
    return torch.optim.AdamW(groups, betas=(0.9, config.beta2), weight_decay=config.weight_decay)


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """``(rank, world size, device)`` of this process: under ``torchrun`` / ``accelerate launch``
    (``WORLD_SIZE`` > 1) the process group is joined (nccl on CUDA, gloo on the CPU) and a CUDA
    device becomes the local rank's GPU; ``(0, 1, device)`` in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def sum_gradients(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient over the ranks (one all-reduce of one flat buffer), as
    DistributedDataParallel does (it averages; the trainer weights each rank's losses by its share of
    the step's lists, so a sum is the whole batch's gradient). A parameter no rank computed a gradient
    for (a pooler the ranker does not read) keeps ``grad = None``, so AdamW skips it as in one process."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                     + [torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    for p, computed in zip(params, flat[offset:].tolist()):
        if not computed:
            p.grad = None


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Gradient checkpointing in every Hugging Face body of ``model`` (non-reentrant: works with
    several forward calls per step and parameters without gradients)."""
    from transformers import PreTrainedModel

    bodies = [m for m in model.modules() if isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing]
    if not bodies:
        raise WorkbenchError("gradient_checkpointing = true, but the backbone does not support it")
    for body in bodies:  # transformers >= 5.x names it activation checkpointing (the old name is deprecated)
        if hasattr(body, "activation_checkpointing_enable"):
            body.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def warmup_linear(total_steps: int, warmup: float) -> Callable[[int], float]:
    """Learning-rate factor: linear from 0 to 1 over the warmup steps, then linearly down to 0."""
    warm = max(1, int(round(warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


@dataclass
class Encoded:
    """One list, tokenized once: its (query, passage) pairs, or for a bi-encoder its passages
    (``features``) and its query (``query``) apart."""

    features: dict[str, list[list[int]]]
    labels: np.ndarray
    query: dict[str, list[list[int]]] | None = None
    docnos: tuple[str, ...] = ()


def sample_candidates(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` candidates: the relevant ones first (at most half), the rest at random."""
    n = len(labels)
    if not size or n <= size:
        return np.arange(n)
    positives = np.flatnonzero(labels > 0)
    negatives = np.flatnonzero(labels <= 0)
    keep_pos = rng.permutation(positives)[:max(1, size // 2)] if len(positives) else positives
    keep_neg = rng.permutation(negatives)[:size - len(keep_pos)]
    chosen = np.concatenate([keep_pos, keep_neg])
    if len(chosen) < size:  # few negatives: fill with more positives
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen = np.concatenate([chosen, rng.permutation(rest)[:size - len(chosen)]])
    return np.sort(chosen)


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
            configure_threads(threads)
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
        self.encoder_decoder = config.architecture == "encoder-decoder"
        self.pad_values = {"input_ids": self.tokenizer.pad_token_id or 0, "token_type_ids": 0}
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
        if self.bi_encoder:
            tokenize = dict(truncation=True, max_length=self.config.max_length, padding=False,
                            return_attention_mask=False)
            names = ("input_ids", "token_type_ids")
            passages = self.tokenizer(list(lst.passages), **tokenize)
            query = self.tokenizer([lst.query], **tokenize)
            return Encoded({n: passages[n] for n in names if n in passages}, lst.labels,
                           {n: query[n] for n in names if n in query}, tuple(lst.docnos))
        features = pair_features(self.tokenizer, [lst.query] * len(lst), lst.passages, self.config.max_length,
                                 self.encoder_decoder)
        return Encoded(features, lst.labels)

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

    def _forward_chunks(self, features: dict[str, list[list[int]]], forward: Callable) -> torch.Tensor:
        """``forward`` over all rows of ``features`` in length-sorted chunks padded per chunk, the
        outputs back in row order (grad kept when training)."""
        lengths = [len(ids) for ids in features["input_ids"]]
        chunks = length_sorted_batches(lengths, self.config.pairs_per_forward)
        parts = []
        for indices in chunks:
            arrays = pad_batch(features, indices, self.pad_values, getattr(self.tokenizer, "padding_side", "right"))
            tensors = to_device(arrays, self.device)
            with autocast(self.device, self.precision):
                values = forward(**tensors).float()
            parts.append((torch.as_tensor(indices, device=self.device), values))
        order = torch.cat([i for i, _ in parts])
        values = torch.cat([v for _, v in parts])
        # scatter keeps the autograd graph (index_put on a fresh tensor)
        out = torch.zeros((len(lengths), *values.shape[1:]), device=self.device, dtype=values.dtype)
        return out.index_put((order,), values)

    def _score_pairs(self, features: dict[str, list[list[int]]]) -> torch.Tensor:
        """Scores of all (query, passage) pairs of ``features``."""
        return self._forward_chunks(features, self.model)

    def _batch(self, encoded: list[Encoded], rng: np.random.Generator | None,
               in_batch: bool = False, picks: list[np.ndarray] | None = None) -> tuple[torch.Tensor, ...]:
        """Scores, labels and mask ``[B, L]`` of a batch of lists (sampled when ``rng`` is given;
        ``picks``: the candidates already drawn, per list).

        ``in_batch`` (bi-encoder, InfoNCE): ``[B, N]`` over all N candidates of the batch, each
        query's own first; another list's candidates are its negatives (label 0), except copies of
        its own candidates (masked)."""
        features: dict[str, list[list[int]]] = {}
        drawn, picks = picks, []
        for position, item in enumerate(encoded):
            chosen = drawn[position] if drawn is not None else \
                sample_candidates(item.labels, self.config.list_size, rng) if rng is not None \
                else np.arange(len(item.labels))
            picks.append(chosen)
            for name, rows in item.features.items():
                features.setdefault(name, []).extend(rows[i] for i in chosen)
        sizes = [len(p) for p in picks]
        self.last_batch_pairs = sum(sizes)  # labelled (query, passage) pairs: the throughput's unit
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        if self.bi_encoder:
            queries: dict[str, list[list[int]]] = {}
            for item in encoded:
                for name, rows in item.query.items():
                    queries.setdefault(name, []).extend(rows)
            matrix = self.model.scores(self._forward_chunks(queries, self.model.embed),
                                       self._forward_chunks(features, self.model.embed))
            if in_batch:
                return self._in_batch(encoded, picks, matrix, starts)
            flat = torch.cat([matrix[row, start:start + size] for row, (start, size) in enumerate(zip(starts, sizes))])
        else:
            flat = self._score_pairs(features)
        rows = torch.cat([torch.full((len(p),), row, dtype=torch.long) for row, p in enumerate(picks)])
        columns = torch.cat([torch.arange(len(p)) for p in picks])
        width = max(sizes)
        # one scatter keeps the autograd graph from the pair scores to the [B, L] matrix
        scores = torch.zeros((len(encoded), width), device=self.device).index_put((rows, columns), flat)
        labels = torch.zeros((len(encoded), width), device=self.device)
        labels[rows, columns] = torch.as_tensor(np.concatenate([item.labels[p] for item, p in zip(encoded, picks)]),
                                                device=self.device)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool, device=self.device)
        mask[rows, columns] = True
        return scores, labels, mask

    def _in_batch(self, encoded: list[Encoded], picks: list[np.ndarray], matrix: torch.Tensor,
                  starts: np.ndarray) -> tuple[torch.Tensor, ...]:
        """InfoNCE's view of a batch: every query against every candidate of the batch."""
        docnos = [item.docnos[i] for item, p in zip(encoded, picks) for i in p]
        labels = torch.zeros(matrix.shape, device=self.device)
        mask = torch.ones(matrix.shape, dtype=torch.bool, device=self.device)
        for row, (item, chosen) in enumerate(zip(encoded, picks)):
            own = set(item.docnos[i] for i in chosen)
            start = int(starts[row])
            for column, docno in enumerate(docnos):
                if docno in own and not start <= column < start + len(chosen):
                    mask[row, column] = False  # the same passage through another list: not a negative
            labels[row, start:start + len(chosen)] = torch.as_tensor(item.labels[chosen], device=self.device)
        return matrix, labels, mask

    def _loss(self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        options = dict(self.config.loss_options)
        if self.config.loss == "hybrid":
            return self.loss_fn(scores, labels, mask, return_parts=True, **options)
        return self.loss_fn(scores, labels, mask, **options), {}

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoint"

    def save_checkpoint(self) -> None:
        """Weights, optimizer, scheduler, RNG and position, written to a temp dir then renamed (by rank 0)."""
        if not self.main:
            return
        work = self.out / ".checkpoint.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "state": dict(self.state),
                    "torch_rng": torch.get_rng_state(), "config": self.config.key()}, work / "trainer.pt")
        old = self.out / ".checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint_dir.exists():
            os.replace(self.checkpoint_dir, old)
        os.replace(work, self.checkpoint_dir)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_dir / "trainer.pt"
        if not path.is_file():
            return False
        saved = torch.load(path, map_location=self.device, weights_only=False)
        if saved.get("config") != self.config.key():
            raise WorkbenchError("a checkpoint of another configuration is in the way; delete it or use another "
                                 "output directory", self.checkpoint_dir)
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
            with open(self.out / "epochs.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    def _truncate_logs(self) -> None:
        truncate_logs(self.out, self.state["global_step"], self.state["epoch"])

    def drift(self) -> dict[str, float]:
        """Relative parameter drift from the initial weights per group: ``||w - w0|| / ||w0||``."""
        by_id = {id(p): group for group, params in self.model.parameter_groups().items() for p in params}
        moved = {g: 0.0 for g in GROUPS}
        size = {g: 0.0 for g in GROUPS}
        for name, parameter in self.model.named_parameters():
            group = by_id.get(id(parameter), "encoder")
            start = self.initial[name]
            moved[group] += float((parameter.detach() - start).pow(2).sum())
            size[group] += float(start.pow(2).sum())
        return {g: math.sqrt(moved[g]) / math.sqrt(size[g]) if size[g] else 0.0 for g in GROUPS}

    # ------------------------------------------------------------------ validation

    def score_lists(self, encoded: list[Encoded]) -> list[np.ndarray]:
        self.model.eval()
        out = []
        with torch.inference_mode():
            for item in encoded:
                out.append(self._batch([item], None)[0][0].double().cpu().numpy())
        return out

    def validate(self) -> dict[str, float]:
        lists, encoded = self.fold.validation, self.validation_encoded
        if not lists:
            return {}
        scored = self.score_lists(encoded)
        losses = []
        with torch.inference_mode():
            for item, values in zip(encoded, scored):
                scores = torch.as_tensor(values, dtype=torch.float32)[None]
                labels = torch.as_tensor(item.labels)[None]
                losses.append(float(self._loss(scores, labels, torch.ones_like(scores, dtype=torch.bool))[0]))
        metrics = validation_metrics(lists, scored)
        positives = np.concatenate([v[lst.labels > 0] for lst, v in zip(lists, scored)])
        negatives = np.concatenate([v[lst.labels <= 0] for lst, v in zip(lists, scored)])
        separation = float(positives.mean() - negatives.mean()) if len(positives) and len(negatives) else 0.0
        return {"val_loss": float(np.mean(losses)), **metrics, "separation": separation}

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
            totals["pairs"] += self.last_batch_pairs
        if self.world_size > 1:
            import torch.distributed as dist

            sum_gradients(self.model)
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, totals)
            totals = {name: sum(part.get(name, 0) for part in gathered) for name in gathered[0] | totals}
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
            import torch.distributed as dist

            dist.barrier()
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


def validation_metrics(lists: list[RankingList], scored: list[np.ndarray]) -> dict[str, float]:
    """MRR@10, NDCG@5 and NDCG@10 of scored lists (ranx), averaged over queries of all sources
    (binary metrics at each source's relevance level)."""
    totals: dict[str, float] = {}
    count = 0
    for source in sorted({lst.source for lst in lists}):
        members = [(lst, s) for lst, s in zip(lists, scored) if lst.source == source]
        run = pd.DataFrame([(lst.qid, d, float(v)) for lst, s in members for d, v in zip(lst.docnos, s)],
                           columns=["qid", "docno", "score"])
        qrels = pd.DataFrame([(lst.qid, d, int(g)) for lst, _ in members for d, g in zip(lst.docnos, lst.labels)
                              if g > 0], columns=["qid", "docno", "label"])
        if qrels.empty:
            continue
        evaluation = evaluate_run(run, qrels, relevance_level_of(source), ["mrr@10", "ndcg@5", "ndcg@10"])
        n = evaluation.n_queries
        for metric, value in evaluation.means.items():
            totals[metric] = totals.get(metric, 0.0) + value * n
        count += n
    return {metric: value / count for metric, value in totals.items()} if count else {}
