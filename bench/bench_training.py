"""Training throughput of the workbench's list trainer against sentence-transformers' trainers:
the cross-encoder against ``CrossEncoderTrainer`` (ListNet), and the bi-encoder against
``SentenceTransformerTrainer`` (InfoNCE = ``MultipleNegativesRankingLoss``).

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

The bi-encoder part (``--part bi-encoder``): the all-MiniLM-L6-v2 bi-encoder, the same lists cut to
one relevant passage and ``--list-size`` - 1 BM25 candidates of grade 0, the same loss (InfoNCE with
scale 20 over the batch: the workbench's ``loss = "infonce"`` with binary targets is exactly
``MultipleNegativesRankingLoss`` on ``(query, positive, negative_1 ..)`` rows whose other rows'
passages are the in-batch negatives), the same examples per step, one learning rate, the same
precision; pairs/s counts each example's labelled passages (``--list-size`` per query) for both.

    python bench/bench_training.py [--part cross-encoder|bi-encoder|both] [--lists 120] [--list-size 12]
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
    parser.add_argument("--part", default="both", choices=["cross-encoder", "bi-encoder", "both"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from workbench.models.precision import native_bf16
    from workbench.train.config import TrainConfig
    from workbench.train.data import Fold, fold_lists
    from workbench.train.trainer import Trainer, validation_metrics

    bf16 = native_bf16(torch.device("cpu"))
    report: dict = {"cpu": cpu_name(), "precision": "bf16" if bf16 else "fp32", "torch": torch.__version__}
    if args.part in ("bi-encoder", "both"):
        report["bi-encoder"] = bi_encoder(args, bf16)
    if args.part == "bi-encoder":
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
        return report
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
    report |= {"lists": len(train), "pairs": pairs, "list_size": args.list_size,
              "lists_per_batch": args.lists_per_batch, "validation_lists": len(validation),
              "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(),
              "torch": torch.__version__, "cpu": cpu_name(),
              "load_average": os.getloadavg(), "results": results, "ratio_workbench_vs_st": round(ratio, 3)}
    print(f"\n{'trainer':26} {'pairs/s':>8} {'seconds':>8} {'val ndcg@10':>12}")
    for name, row in results.items():
        print(f"{name:26} {row['pairs_per_s']:8.2f} {row['seconds']:8.1f} {row.get('val_ndcg@10', float('nan')):12.4f}")
    print(f"ratio (workbench / CrossEncoderTrainer): {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def cpu_name() -> str:
    """The CPU's model name (lscpu's), for the table the numbers go in."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def one_positive_lists(lists, size: int, seed: int):
    """Each list cut to its most relevant passage + ``size - 1`` grade-0 candidates (BM25 order
    kept), labels 1 / 0; lists without both are dropped."""
    from workbench.train.data import RankingList

    rng = np.random.default_rng(seed)
    out = []
    for lst in lists:
        labels = np.asarray(lst.labels)
        negatives = np.flatnonzero(labels == 0)
        if not (labels > 0).any() or len(negatives) < size - 1:
            continue
        best = np.flatnonzero(labels == labels.max())
        chosen = [int(rng.choice(best)), *np.sort(rng.permutation(negatives)[:size - 1]).tolist()]
        out.append(RankingList(lst.source, lst.qid, lst.query, [lst.docnos[i] for i in chosen],
                               [lst.passages[i] for i in chosen],
                               np.array([1.0] + [0.0] * (size - 1), dtype=np.float32)))
    return out


def bi_encoder(args, bf16: bool) -> dict:
    """The workbench's list trainer (bi-encoder, infonce) against SentenceTransformerTrainer (MNRL)."""
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from workbench.models.dense import minilm_path
    from workbench.train.config import TrainConfig
    from workbench.train.data import Fold, fold_lists
    from workbench.train.trainer import Trainer, validation_metrics

    full = fold_lists("dl19", validation=0.1, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    train = one_positive_lists([full.train[i] for i in rng.permutation(len(full.train))], args.list_size,
                               args.seed)[:args.lists]
    validation = full.validation
    pairs = sum(len(lst) for lst in train)
    work = Path(tempfile.mkdtemp(prefix="bench-training-bi-"))
    results = {}
    config = TrainConfig(name="bench", backbone="minilm", architecture="bi-encoder", loss="infonce", epochs=1,
                         lists_per_batch=args.lists_per_batch, list_size=0, max_length=args.max_length,
                         lr_embeddings=args.lr, lr_encoder=args.lr, lr_head=0.0, beta2=0.999, warmup=0.1,
                         weight_decay=0.0, precision="bf16" if bf16 else "fp32", seed=args.seed,
                         checkpoint_every=10**9, validation=0.0, scale=20.0)
    trainer = Trainer(config, Fold("dl19", "dl19", train, [], ("bench",)), work / "workbench", progress=False)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.model.eval()
    scored = trainer.score_lists([trainer._encode(lst) for lst in validation])
    results["workbench list trainer"] = {"seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds, 2),
                                         **{f"val_{k}": round(v, 4)
                                            for k, v in validation_metrics(validation, scored).items()}}
    del trainer

    torch.manual_seed(args.seed)
    model = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    model.max_seq_length = args.max_length
    columns = {"query": [lst.query for lst in train], "positive": [lst.passages[0] for lst in train]}
    for k in range(1, args.list_size):
        columns[f"negative_{k}"] = [lst.passages[k] for lst in train]
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "st"), num_train_epochs=1, per_device_train_batch_size=args.lists_per_batch,
        learning_rate=args.lr, warmup_ratio=0.1, weight_decay=0.0, bf16=bf16, use_cpu=True, save_strategy="no",
        logging_strategy="no", report_to="none", seed=args.seed, dataloader_drop_last=False)
    st_trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=Dataset.from_dict(columns),
                                            loss=MultipleNegativesRankingLoss(model, scale=20.0))
    started = time.perf_counter()
    st_trainer.train()
    seconds = time.perf_counter() - started
    model.eval()
    scored = []
    for lst in validation:
        vectors = model.encode([lst.query, *lst.passages], convert_to_numpy=True, normalize_embeddings=True)
        scored.append(np.asarray(vectors[1:] @ vectors[0], dtype=np.float64))
    results["st SentenceTransformerTrainer"] = {
        "seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds, 2),
        **{f"val_{k}": round(v, 4) for k, v in validation_metrics(validation, scored).items()}}
    ratio = results["workbench list trainer"]["pairs_per_s"] / results["st SentenceTransformerTrainer"]["pairs_per_s"]
    print(f"\nbi-encoder, InfoNCE, {len(train)} lists x {args.list_size}, {args.lists_per_batch} per step "
          f"({cpu_name()}, {'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} threads)")
    print(f"{'trainer':30} {'pairs/s':>8} {'seconds':>8} {'val ndcg@10':>12}")
    for name, row in results.items():
        print(f"{name:30} {row['pairs_per_s']:8.2f} {row['seconds']:8.1f} {row.get('val_ndcg@10', float('nan')):12.4f}")
    print(f"ratio (workbench / SentenceTransformerTrainer): {ratio:.2f}x")
    return {"lists": len(train), "pairs": pairs, "list_size": args.list_size, "lists_per_batch": args.lists_per_batch,
            "validation_lists": len(validation), "results": results, "ratio_workbench_vs_st": round(ratio, 3),
            "load_average": os.getloadavg()}


if __name__ == "__main__":
    main()
