"""Contrastive fine-tuning of a bi-encoder, per cross-year fold: InfoNCE with in-batch negatives and
BM25 hard negatives, through sentence-transformers' ``SentenceTransformerTrainer``.

Examples come from the same folds as the list trainer (:func:`~workbench.train.data.fold_lists`:
fold ``dl19`` trains on DL20's judged queries + dev600 and is evaluated on DL19), so the leakage
rules are the same. Each training query gives up to ``max_positives`` examples
``(query, positive, negative_1 .. negative_k)``:

* positives: candidates graded at least the source dataset's relevance level (2 for TREC DL,
  1 for dev), higher grades first, ties broken at random (seeded per query);
* hard negatives: grade-0 BM25 candidates among the first ``negative_depth`` of them in BM25
  order, drawn without replacement (seeded per query), so highly ranked ones are preferred and
  each of a query's examples gets different ones when there are enough.

The loss is sentence-transformers' ``MultipleNegativesRankingLoss`` (InfoNCE; van den Oord et al.,
2018; in-batch plus BM25 hard negatives as in DPR, Karpukhin et al., 2020). For a batch of B
examples with passages D (every positive and hard negative of the batch) and scale s::

    L = -1/B sum_i log( exp(s cos(q_i, p_i)) / sum_{d in D} exp(s cos(q_i, d)) )

Batches come from ``BatchSamplers.NO_DUPLICATES``: no text occurs twice in a batch, so a query's
other positives never serve as its in-batch negatives (the same query cannot share a batch).

Before training (logged as epoch -1: the backbone's own figures) and after every epoch the held-out
validation lists are reranked by cosine, in the training precision as the list trainer validates,
and MRR@10/NDCG@5/NDCG@10 computed with :func:`~workbench.train.trainer.validation_metrics`; the
best NDCG@10 epoch (of the trained ones) is kept as
``<fold>/model`` (a sentence-transformers directory with ``ranker.json`` of kind ``bi-encoder`` and
the leakage record), and training stops after ``patience`` epochs without a gain. The logs
(``steps.csv``, ``epochs.jsonl``) are the list trainer's, so :func:`~workbench.train.plot.plot_training`
and the model card read them. Checkpoints (weights, optimizer, scheduler, RNG, position) go to
``<fold>/checkpoints`` every ``checkpoint_every`` steps and after each epoch's validation; an
interrupted run resumes from the last one, and a finished fold is skipped.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..data.datasets import relevance_level_of
from ..models.devices import configure_threads, resolve_device
from ..models.hub import quiet_transformers
from ..models.precision import autocast, native_bf16
from ..models.ranker import RANKER_FILE
from .config import TrainConfig
from .data import Fold, RankingList
from .trainer import append_csv_row, publish_model, resolve_backbone, truncate_logs, validation_metrics

#: sentence-transformers' pooling modes -> the DenseEncoder's names (the reranker must pool alike)
ST_POOLINGS = {"mean": "masked_mean", "cls": "cls", "lasttoken": "last"}
STATE_FILE = "biencoder-state.json"          # in the fold directory: configuration key, done, summary
CHECKPOINT_STATE_FILE = "workbench-state.json"  # in each checkpoint: best epoch so far, seconds, ...


@dataclass(frozen=True)
class ContrastiveExample:
    """One training example: a query, one of its positives and its hard negatives."""

    source: str
    qid: str
    query: str
    positive: str
    negatives: tuple[str, ...]


def relevance_level(source: str) -> int:
    """The grade from which a candidate of ``source`` counts as relevant (1 for unknown sources)."""
    return relevance_level_of(source)


def contrastive_examples(lists: list[RankingList], max_positives: int = 4, hard_negatives: int = 1,
                         negative_depth: int = 30, seed: int = 0) -> list[ContrastiveExample]:
    """The ``(query, positive, negatives)`` examples of training lists (see the module docstring).

    A query without a positive, or with fewer than ``hard_negatives`` grade-0 candidates, gives
    none. Sampling is seeded per query (by source and id), so a list's examples do not depend on
    which other lists are present.
    """
    examples = []
    for lst in lists:
        rng = np.random.default_rng([seed, zlib.crc32(f"{lst.source}\t{lst.qid}".encode())])
        labels = np.asarray(lst.labels)
        positives = np.flatnonzero(labels >= relevance_level(lst.source))
        # candidates are in BM25 order (relevant passages BM25 missed are appended, never grade 0)
        pool = np.flatnonzero(labels == 0)[:negative_depth]
        if not len(positives) or len(pool) < hard_negatives:
            continue
        # highest grade first, a random order within a grade
        positives = positives[np.lexsort((rng.random(len(positives)), -labels[positives]))][:max_positives]
        drawn = rng.permutation(pool)
        for j, index in enumerate(positives):
            # consecutive slices of one permutation: a query's examples share no negative while the pool lasts
            negatives = tuple(lst.passages[drawn[(j * hard_negatives + t) % len(drawn)]]
                              for t in range(hard_negatives))
            examples.append(ContrastiveExample(lst.source, lst.qid, lst.query, lst.passages[index], negatives))
    return examples


def examples_dataset(examples: list[ContrastiveExample], hard_negatives: int) -> Any:
    """A ``datasets.Dataset`` with columns ``query, positive, negative_1 .. negative_k`` (the order
    ``MultipleNegativesRankingLoss`` reads them in)."""
    from datasets import Dataset

    columns: dict[str, list[str]] = {"query": [x.query for x in examples], "positive": [x.positive for x in examples]}
    for t in range(hard_negatives):
        columns[f"negative_{t + 1}"] = [x.negatives[t] for x in examples]
    return Dataset.from_dict(columns)


def st_pooling(model: Any) -> tuple[str, bool]:
    """(pooling as the DenseEncoder names it, whether a Normalize module follows) of a SentenceTransformer."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model.children())
    poolings = [m for m in modules if isinstance(m, Pooling)]
    if len(poolings) != 1 or not isinstance(poolings[0].pooling_mode, str) \
            or poolings[0].pooling_mode not in ST_POOLINGS:
        found = [getattr(m, "pooling_mode", None) for m in poolings]
        raise WorkbenchError(f"the bi-encoder backbone needs one mean, cls or lasttoken Pooling module (found {found}) "
                             "so that the dense reranker pools as it was trained")
    return ST_POOLINGS[poolings[0].pooling_mode], any(isinstance(m, Normalize) for m in modules)


def load_biencoder(directory: Path, config: TrainConfig, device: str) -> Any:
    """A SentenceTransformer on ``directory``: a sentence-transformers directory keeps its modules
    (all-MiniLM-L6-v2: masked mean + Normalize); a plain transformer gets ``config.pooling`` + Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if (directory / "modules.json").is_file():
        model = SentenceTransformer(str(directory), device=device, local_files_only=True)
        pooling, _ = st_pooling(model)
        if pooling != config.pooling:
            raise WorkbenchError(f"pooling = {config.pooling!r} disagrees with the backbone's sentence-transformers "
                                 f"pooling ({pooling!r}); set pooling = {pooling!r} or use a plain transformer "
                                 "backbone",
                                 directory)
    else:
        body = Transformer(str(directory), max_seq_length=config.max_length,
                           model_kwargs={"local_files_only": True}, processor_kwargs={"local_files_only": True},
                           config_kwargs={"local_files_only": True})
        mode = {"masked_mean": "mean", "cls": "cls"}[config.pooling]
        model = SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), pooling_mode=mode),
                                             Normalize()], device=device)
    # saved as the tokenizer's model_max_length, which the DenseEncoder reads back
    model.max_seq_length = config.max_length
    return model


@contextlib.contextmanager
def _quiet() -> Any:
    """transformers' and sentence-transformers' chatter off (a "Writing model shards" bar and a
    "Saving model" line at every checkpoint): the progress bar is the training's one line."""
    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    st_logger.setLevel(logging.WARNING)
    try:
        with quiet_transformers():
            yield
    finally:
        st_logger.setLevel(level)


def _trainer_classes() -> tuple[type, type]:
    """SentenceTransformerTrainer and a TrainerCallback base, importing ``accelerate`` with a clear error."""
    try:
        import accelerate  # noqa: F401 - SentenceTransformerTrainer needs it
        from sentence_transformers import SentenceTransformerTrainer
        from transformers import TrainerCallback
    except ImportError as error:
        raise WorkbenchError(f"bi-encoder training needs sentence-transformers' training extras ({error}): "
                             "pip install accelerate datasets") from None

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            pass  # ranker.json and the configuration's README are the model card; ST's reads the dataset

        def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
            # a checkpoint needs the weights, not a generated model card (which reads the dataset each time)
            output_dir = output_dir or self.args.output_dir
            os.makedirs(output_dir, exist_ok=True)
            self.model.save(output_dir, create_model_card=False)

    return Trainer, TrainerCallback


class BiEncoderTrainer:
    """Trains one fold of a bi-encoder configuration into ``out_dir`` (``model/`` keeps the best epoch).

    The same shape as :class:`~workbench.train.trainer.Trainer`: ``train()`` resumes from the last
    checkpoint and returns the fold's summary; ``stop_after_steps`` interrupts it (for tests).
    """

    def __init__(self, config: TrainConfig, fold: Fold, out_dir: str | Path, progress: bool = True):
        if config.architecture != "bi-encoder":
            raise WorkbenchError(f"BiEncoderTrainer trains architecture = \"bi-encoder\", not {config.architecture!r}")
        if not fold.train:
            raise WorkbenchError(f"fold {fold.name} has no training lists")
        self.config = config
        self.fold = fold
        self.out = Path(out_dir)
        self.progress = progress
        self.options = dict(config.loss_options)
        self.examples = contrastive_examples(fold.train, self.options["max_positives"], self.options["hard_negatives"],
                                             self.options["negative_depth"], config.seed)
        if not self.examples:
            raise WorkbenchError(f"fold {fold.name}: no training query has a positive and "
                                 f"{self.options['hard_negatives']} grade-0 BM25 candidates")
        if config.threads:
            configure_threads(config.threads)
        self.device = resolve_device(config.device)
        self.precision = ("bf16" if native_bf16(self.device) else "fp32") if config.precision == "auto" \
            else config.precision
        self.backbone = resolve_backbone(config.backbone)
        self.model: Any = None
        self.state = {"baseline_ndcg": None, "best_ndcg": -1.0, "best_mrr": None, "best_epoch": None, "stale_epochs": 0,
                      "stopped_early": False, "train_seconds": 0.0, "epochs_run": 0, "global_step": 0}

    # ------------------------------------------------------------------ files

    @property
    def checkpoints_dir(self) -> Path:
        return self.out / "checkpoints"

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (one whose trainer state was written), or None."""
        found = []
        for path in self.checkpoints_dir.glob("checkpoint-*"):
            step = path.name.rpartition("-")[2]
            if step.isdigit() and (path / "trainer_state.json").is_file():
                found.append((int(step), path))
        return max(found)[1] if found else None

    def _read_state(self) -> dict[str, Any] | None:
        path = self.out / STATE_FILE
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise WorkbenchError("unreadable training state", path) from None

    def _write_state(self, **values: Any) -> None:
        with atomic_write(self.out / STATE_FILE) as handle:
            json.dump({"key": self.config.key(), **values}, handle, indent=1)

    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        append_csv_row(self.out / name, row)

    # ------------------------------------------------------------------ validation

    def validate(self, model: Any) -> dict[str, float]:
        """Rerank the validation lists by cosine (in the training precision): MRR@10, NDCG@5, NDCG@10,
        and the separation (mean cosine of relevant minus non-relevant candidates)."""
        lists = self.fold.validation
        if not lists:
            return {}
        queries = list(dict.fromkeys(lst.query for lst in lists))
        passages = list(dict.fromkeys(p for lst in lists for p in lst.passages))
        encode = dict(batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        with autocast(self.device, self.precision):
            query_vectors = dict(zip(queries, model.encode(queries, **encode).astype(np.float64)))
            passage_vectors = model.encode(passages, **encode).astype(np.float64)
        passage_row = {p: i for i, p in enumerate(passages)}
        scored = [passage_vectors[[passage_row[p] for p in lst.passages]] @ query_vectors[lst.query] for lst in lists]
        metrics = validation_metrics(lists, scored)
        positives = np.concatenate([s[lst.labels > 0] for lst, s in zip(lists, scored)])
        negatives = np.concatenate([s[lst.labels <= 0] for lst, s in zip(lists, scored)])
        separation = float(positives.mean() - negatives.mean()) if len(positives) and len(negatives) else 0.0
        return {**metrics, "separation": separation}

    def drift(self, model: Any, initial: dict[str, Any]) -> dict[str, float]:
        """Relative parameter drift from the backbone's weights: ``||w - w0|| / ||w0||`` for the
        embeddings and the encoder layers."""
        moved = {"embeddings": 0.0, "encoder": 0.0}
        size = {"embeddings": 0.0, "encoder": 0.0}
        for name, parameter in model.named_parameters():
            group = "embeddings" if "embeddings" in name else "encoder"
            start = initial[name]
            moved[group] += float((parameter.detach().float() - start).pow(2).sum())
            size[group] += float(start.pow(2).sum())
        return {g: math.sqrt(moved[g]) / math.sqrt(size[g]) if size[g] else 0.0 for g in moved}

    # ------------------------------------------------------------------ model

    def save_model(self, model: Any, epoch: int) -> Path:
        """The current weights as the fold's model (``model/``): a sentence-transformers directory
        with ``ranker.json`` and the leakage record, swapped in whole."""
        pooling, normalize = st_pooling(model)
        target = self.out / "model"
        work = self.out / ".model.tmp"
        shutil.rmtree(work, ignore_errors=True)
        model.save(str(work), create_model_card=False)
        meta = {"kind": "bi-encoder", "backbone": self.config.backbone, "architecture": "bi-encoder",
                "pooling": pooling, "normalize": normalize, "similarity": "cosine",
                "max_length": self.config.max_length, "loss": self.config.loss,
                "loss_options": self.config.loss_options, "fold": self.fold.name,
                "evaluate_on": self.fold.evaluate_on, "sources": list(self.fold.sources), "epoch": epoch,
                "training_precision": self.precision, "examples": len(self.examples)}
        (work / RANKER_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str), encoding="utf-8")
        return publish_model(work, target, self.fold)

    # ------------------------------------------------------------------ the run

    def _summary(self, steps_per_epoch: int, resumed: bool) -> dict[str, Any]:
        seconds = self.state["train_seconds"]
        # examples (and labelled query-passage pairs: a positive + its hard negatives) trained on so far
        examples_seen = self.state["global_step"] / max(1, steps_per_epoch) * len(self.examples)
        pairs_seen = examples_seen * (1 + self.options["hard_negatives"])
        return {"fold": self.fold.name, "epochs_run": self.state["epochs_run"], "best_epoch": self.state["best_epoch"],
                "best_val_ndcg@10": self.state["best_ndcg"], "best_val_mrr@10": self.state["best_mrr"],
                "baseline_val_ndcg@10": self.state["baseline_ndcg"],
                "stopped_early": self.state["stopped_early"], "seconds": round(seconds, 1),
                "pairs_per_s": round(pairs_seen / seconds, 2) if seconds else None,
                "examples": len(self.examples),
                "examples_per_s": round(examples_seen / seconds, 2) if seconds else None,
                "steps": self.state["global_step"], "resumed": resumed}

    def train(self, stop_after_steps: int | None = None) -> dict[str, Any]:
        """Train (resuming from the last checkpoint if there is one); returns the summary.

        A fold already finished with this configuration is not trained again. ``stop_after_steps``
        stops (as an interruption would: ``KeyboardInterrupt``) after that many steps of this call.
        """
        from sentence_transformers import SentenceTransformerTrainingArguments
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        self.out.mkdir(parents=True, exist_ok=True)
        previous = self._read_state()
        checkpoint = self.last_checkpoint()
        if previous is not None and previous.get("key") != self.config.key() and (checkpoint or previous.get("done")):
            raise WorkbenchError("a run of another configuration is in the way; delete it or use another output "
                                 "directory", self.out)
        if previous and previous.get("done") and (self.out / "model" / RANKER_FILE).is_file():
            return {**previous["summary"], "resumed": True}
        if checkpoint is None:
            for name in ("steps.csv", "epochs.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        else:
            saved = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            extra = checkpoint / CHECKPOINT_STATE_FILE
            if extra.is_file():
                self.state.update(json.loads(extra.read_text(encoding="utf-8")))
            truncate_logs(self.out, int(saved["global_step"]), self.state["epochs_run"])
        self._write_state(done=False)
        (self.out / "train-config.json").write_text(json.dumps(self.config.to_dict(), indent=1), encoding="utf-8")

        Trainer, TrainerCallback = _trainer_classes()
        import torch

        torch.manual_seed(self.config.seed)
        with _quiet():
            model = self.model = load_biencoder(self.backbone, self.config, str(self.device))
        initial = {name: p.detach().float().clone() for name, p in model.named_parameters()}
        batch_size = self.options["batch_size"]
        args = SentenceTransformerTrainingArguments(
            output_dir=str(self.checkpoints_dir), num_train_epochs=self.config.epochs,
            per_device_train_batch_size=batch_size, learning_rate=self.config.lr_encoder,
            lr_scheduler_type="linear", warmup_steps=min(float(self.config.warmup), 0.999),  # a share below 1
            weight_decay=self.config.weight_decay,
            adam_beta2=self.config.beta2, max_grad_norm=self.config.clip, bf16=self.precision == "bf16",
            use_cpu=self.device.type == "cpu", seed=self.config.seed, data_seed=self.config.seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES, dataloader_drop_last=False,
            # checkpoints are asked for by the callback below (every checkpoint_every steps, and after
            # each epoch's validation, so a resumed run never skips one), the last one kept
            save_strategy="no", save_total_limit=1, eval_strategy="no", logging_strategy="steps", logging_steps=1,
            report_to="none", disable_tqdm=True)
        loss = MultipleNegativesRankingLoss(model, scale=float(self.options["scale"]))
        owner = self
        bar_holder: dict[str, Any] = {}
        call = {"steps": 0, "clock": time.perf_counter()}

        def tick() -> None:
            now = time.perf_counter()
            owner.state["train_seconds"] += now - call["clock"]
            call["clock"] = now

        class FoldCallback(TrainerCallback):
            """Logs, validation at each epoch's end, the best model, early stopping, checkpoints."""

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                from tqdm.auto import tqdm

                bar_holder["bar"] = tqdm(total=state.max_steps, initial=state.global_step, unit="step",
                                         desc=f"train {owner.fold.name} (bi-encoder)", disable=not owner.progress)
                call["clock"] = time.perf_counter()
                if state.global_step == 0:  # the backbone's figures: what fine-tuning has to beat
                    metrics = owner.validate(kwargs["model"])
                    owner.state["baseline_ndcg"] = metrics.get("ndcg@10")
                    row = {"epoch": -1, "step": 0, **metrics, "drift_embeddings": 0.0, "drift_encoder": 0.0}
                    with open(owner.out / "epochs.jsonl", "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    tick()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                tick()
                owner.state["global_step"] = state.global_step
                call["steps"] += 1
                bar_holder["bar"].update(1)
                if stop_after_steps is not None and call["steps"] >= stop_after_steps:
                    raise KeyboardInterrupt
                at_epoch_end = abs(state.epoch - round(state.epoch)) < 1e-9
                if state.global_step % owner.config.checkpoint_every == 0 and not at_epoch_end:
                    control.should_save = True

            def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
                if not logs or "loss" not in logs:
                    return
                row = {"step": state.global_step, "epoch": max(0, math.ceil(state.epoch - 1e-9) - 1),
                       "loss": float(logs["loss"]), "grad_norm": float(logs.get("grad_norm", float("nan"))),
                       "lr_encoder": float(logs.get("learning_rate", float("nan")))}
                owner._append_csv("steps.csv", row)
                bar_holder["bar"].set_postfix(loss=f"{row['loss']:.4f}")

            def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                epoch = max(0, math.ceil(state.epoch - 1e-9) - 1)
                metrics = owner.validate(kwargs["model"])
                row = {"epoch": epoch, "step": state.global_step, **metrics,
                       **{f"drift_{k}": v for k, v in owner.drift(kwargs["model"], initial).items()},
                       "lr_encoder": kwargs["optimizer"].param_groups[0]["lr"]}
                with open(owner.out / "epochs.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
                ndcg = metrics.get("ndcg@10", 0.0)
                if ndcg > owner.state["best_ndcg"] or owner.state["best_epoch"] is None:
                    owner.state.update(best_ndcg=ndcg, best_mrr=metrics.get("mrr@10"), best_epoch=epoch,
                                       stale_epochs=0)
                    owner.save_model(kwargs["model"], epoch)
                else:
                    owner.state["stale_epochs"] += 1
                    if owner.state["stale_epochs"] >= owner.config.patience:
                        owner.state["stopped_early"] = True
                        control.should_training_stop = True
                owner.state["epochs_run"] = epoch + 1
                tick()  # validation counts as training time
                control.should_save = True

            def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                # what the trainer state does not hold, beside the checkpoint it belongs to
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    (folder / CHECKPOINT_STATE_FILE).write_text(json.dumps(owner.state), encoding="utf-8")

        trainer = Trainer(model=model, args=args, train_dataset=examples_dataset(self.examples,
                                                                                   self.options["hard_negatives"]),
                          loss=loss, callbacks=[FoldCallback()])
        from transformers import PrinterCallback, ProgressCallback

        for quiet in (PrinterCallback, ProgressCallback):  # the callback above shows progress, one line
            trainer.remove_callback(quiet)
        steps_per_epoch = math.ceil(len(self.examples) / batch_size)  # what the no-duplicates sampler promises
        try:
            with _quiet():
                trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        finally:
            if "bar" in bar_holder:
                bar_holder["bar"].close()
        summary = self._summary(steps_per_epoch, resumed=checkpoint is not None)
        self._write_state(done=True, summary=summary)
        # finished: the fold model is kept, the resumable state (weights + optimizer) is not needed
        shutil.rmtree(self.checkpoints_dir, ignore_errors=True)
        return summary
