"""Training throughput of the workbench trainer against sentence-transformers' CrossEncoderTrainer.

Same backbone (the all-MiniLM-L6-v2 body as a BertForSequenceClassification with one label:
``pooling=cls``), same lists (fold dl19's training lists, each cut once to ``--list-size``
candidates with every relevant one kept, seeded), same loss (ListNet: sentence-transformers'
``ListNetLoss``, the workbench's ``listnet``, equal to 1e-6 in the tests), same lists per step,
one learning rate (``--lr``, linear warmup 10% then decay), same precision (bf16 autocast where
the CPU has it natively, else fp32), same threads, one epoch each, in this process. Reported:
training pairs/s of each (wall time of the training call, model saving excluded for
sentence-transformers and included for the workbench, which keeps its best checkpoint), their
ratio, and the validation NDCG@10 of both trained models on the fold's held-out lists (scored the
same way).

    python bench/bench_training.py [--lists 120] [--list-size 12] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def cut_lists(lists, size: int, seed: int):
    from workbench.train.data import RankingList
    from workbench.train.trainer import sample_candidates

    rng = np.random.default_rng(seed)
    out = []
    for lst in lists:
        chosen = sample_candidates(lst.labels, size, rng)
        out.append(RankingList(lst.source, lst.qid, lst.query, [lst.docnos[i] for i in chosen],
                               [lst.passages[i] for i in chosen], lst.labels[chosen]))
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=120, help="training lists (queries), one epoch")
    parser.add_argument("--list-size", type=int, default=12)
    parser.add_argument("--lists-per-batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from workbench.models.precision import native_bf16
    from workbench.train.config import TrainConfig
    from workbench.train.data import Fold, fold_lists
    from workbench.train.trainer import Trainer, validation_metrics

    bf16 = native_bf16(torch.device("cpu"))
    full = fold_lists("dl19", validation=0.1, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    train = cut_lists([full.train[i] for i in rng.permutation(len(full.train))[:args.lists]], args.list_size,
                      args.seed)
    validation = full.validation
    pairs = sum(len(lst) for lst in train)
    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    results = {}

    # --- workbench
    config = TrainConfig(name="bench", backbone="minilm", pooling="cls", loss="listnet", epochs=1,
                         lists_per_batch=args.lists_per_batch, list_size=0, max_length=args.max_length,
                         lr_embeddings=args.lr, lr_encoder=args.lr, lr_head=args.lr, beta2=0.999, warmup=0.1,
                         weight_decay=0.0, precision="bf16" if bf16 else "fp32", seed=args.seed,
                         checkpoint_every=10**9, validation=0.0)
    trainer = Trainer(config, Fold("dl19", "dl19", train, [], ("bench",)), work / "workbench", progress=False)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    scored = trainer.score_lists([trainer._encode(lst) for lst in validation])
    results["workbench"] = {"seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds, 2),
                            **{f"val_{k}": round(v, 4) for k, v in validation_metrics(validation, scored).items()}}
    del trainer

    # --- sentence-transformers CrossEncoderTrainer
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import ListNetLoss

    from workbench.models.dense import minilm_path

    torch.manual_seed(args.seed)
    model = CrossEncoder(str(minilm_path()), num_labels=1, max_length=args.max_length, device="cpu",
                         local_files_only=True)
    dataset = Dataset.from_dict({"query": [lst.query for lst in train], "docs": [lst.passages for lst in train],
                                 "labels": [lst.labels.tolist() for lst in train]})
    training_args = CrossEncoderTrainingArguments(
        output_dir=str(work / "st"), num_train_epochs=1, per_device_train_batch_size=args.lists_per_batch,
        learning_rate=args.lr, warmup_ratio=0.1, weight_decay=0.0, bf16=bf16, use_cpu=True, save_strategy="no",
        logging_strategy="no", report_to="none", seed=args.seed, dataloader_drop_last=False)
    st_trainer = CrossEncoderTrainer(model=model, args=training_args, train_dataset=dataset,
                                     loss=ListNetLoss(model, mini_batch_size=args.list_size * args.lists_per_batch))
    started = time.perf_counter()
    st_trainer.train()
    seconds = time.perf_counter() - started
    model.model.eval()
    scored = [np.asarray(model.predict([(lst.query, p) for p in lst.passages], activation_fn=torch.nn.Identity(),
                                       convert_to_numpy=True), dtype=np.float64) for lst in validation]
    results["st-crossencoder-trainer"] = {
        "seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds, 2),
        **{f"val_{k}": round(v, 4) for k, v in validation_metrics(validation, scored).items()}}

    ratio = results["workbench"]["pairs_per_s"] / results["st-crossencoder-trainer"]["pairs_per_s"]
    report = {"lists": len(train), "pairs": pairs, "list_size": args.list_size,
              "lists_per_batch": args.lists_per_batch, "validation_lists": len(validation),
              "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(),
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "load_average": os.getloadavg(), "results": results, "ratio_workbench_vs_st": round(ratio, 3)}
    print(f"\n{'trainer':26} {'pairs/s':>8} {'seconds':>8} {'val ndcg@10':>12}")
    for name, row in results.items():
        print(f"{name:26} {row['pairs_per_s']:8.2f} {row['seconds']:8.1f} {row.get('val_ndcg@10', float('nan')):12.4f}")
    print(f"ratio (workbench / CrossEncoderTrainer): {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
