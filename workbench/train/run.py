"""Training a configuration: every fold into ``<models>/<name>/<fold>/``, a model card, the plot.
Every architecture (encoder, encoder-decoder, bi-encoder) trains through :class:`Trainer`.

``<models>`` is ``$WORKBENCH_MODELS`` or ``./models``; ``finetuned:<name>`` finds the fold model
that never saw a dataset's queries there.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from ..models.ranker import models_root
from .config import TrainConfig
from .data import fold_lists
from .plot import plot_training
from .trainer import Trainer

def model_card(config: TrainConfig, results: list[dict[str, Any]]) -> str:
    bi_encoder = config.architecture == "bi-encoder"
    lines = [f"# {config.name}", "",
             f"- backbone: `{config.backbone}` ({config.architecture}, pooling `{config.pooling}`"
             + (f", score = {config.scale:g} x {config.similarity})" if bi_encoder else ")"),
             f"- loss: `{config.loss}` {json.dumps(config.loss_options) if config.loss_options else ''}"
             + (" (InfoNCE: each query's own candidates plus the batch's other lists' candidates as in-batch "
                "negatives)" if config.loss == "infonce" else "")
             + f"; {config.lists_per_batch} lists per step, {config.list_size or 'all'} candidates sampled per list",
             (f"- data: one model (fold `train`) trained on {', '.join(config.train)} (qrels positives plus up to "
              f"{config.negatives_depth} negatives from `{config.negatives or 'its candidate run'}`), validated on "
              + (f"{config.validation_queries} queries of {config.validation_source}" if config.validation_source
                 else "held-out training queries") + "." if config.train else
              "- data: cross-year folds. Each fold model was trained on the TREC DL judgments of the *other* year "
              "(official BM25 top-100, NIST grades) plus dev600 (BM25 top-20, one relevant passage), and is "
              "evaluated on its own year only. NOT comparable with models trained on MS MARCO train."),
             f"- optimiser: AdamW (beta2 {config.beta2}), lr embeddings/encoder/head {config.lr_embeddings}/"
             f"{config.lr_encoder}/{config.lr_head}, seed {config.seed}, "
             + f"warmup {config.warmup}, clip {config.clip}, "
             f"{config.epochs} epochs max, early stopping after {config.patience}", "",
             "| fold (evaluated on) | best epoch | val NDCG@10 | epochs run | seconds | pairs/s |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['fold']} | {r['best_epoch']} | {r['best_val_ndcg@10']:.4f} | {r['epochs_run']} | "
                     f"{r['seconds']} | {r['pairs_per_s']} |")
    if bi_encoder:
        lines += ["", "val NDCG@10 of the backbone before fine-tuning: "
                  + ", ".join(f"{r['fold']} {r['baseline_val_ndcg@10']:.4f}" for r in results
                              if r.get("baseline_val_ndcg@10") is not None) + ". pairs/s: labelled (query, passage) "
                  "pairs trained on per second (the sampled candidates of each list)."]
        lines += ["", f"Use: `official-bm25+finetuned:{config.name}` (each dataset gets the fold that never saw it; "
                  f"cosine of vectors encoded apart) or `dense-mini:encoder=finetuned:{config.name}` (dense "
                  "retrieval over the mini collection with the fold's encoder)."]
    else:
        lines += ["", "Use: `official-bm25+finetuned:" + config.name + "` (each dataset gets the fold that never saw it)."]
    return "\n".join(lines) + "\n"


def train_config(config: TrainConfig, data_dir: str | Path | None = None, out_root: str | Path | None = None,
                 folds: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Train every fold of ``config``; returns the per-fold summaries."""
    root = Path(out_root or models_root()) / config.name
    results = []
    if config.train:  # named training data: one model, no cross-year folds
        from .sources import TRAIN_FOLD, training_fold

        if folds and list(folds) != [TRAIN_FOLD]:
            raise WorkbenchError(f"{config.name}: a configuration with named training data (train = ...) has one "
                                 f"fold, {TRAIN_FOLD!r}, not {', '.join(folds)}")
        fold = training_fold(config, data_dir, progress=progress)
        results.append(Trainer(config, fold, root / TRAIN_FOLD, progress=progress).train())
    for fold_name in [] if config.train else folds or config.folds:
        fold = fold_lists(fold_name, data_dir, validation=config.validation, seed=config.seed,
                          sources=tuple(config.sources) if config.sources else None, limit=config.limit_queries)
        result = Trainer(config, fold, root / fold_name, progress=progress).train()
        results.append(result)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone writes
        with atomic_write(root / "README.md") as handle:
            handle.write(model_card(config, results))
        with atomic_write(root / "summary.json") as handle:
            json.dump(results, handle, indent=1)
        plot_training(root)
    return {"dir": str(root), "folds": results}
