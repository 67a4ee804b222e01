"""The independent check behind "the starting point and the data are the limit": a plain
sentence-transformers ``CrossEncoderTrainer`` recipe, as a new user would write it, on the same
data as the workbench's fold ``dl20``, evaluated the same way.

Recipe: the all-MiniLM-L6-v2 body with a new one-label head (``CrossEncoder(minilm, num_labels=1)``),
``BinaryCrossEntropyLoss`` on ``grade / 3``, learning rate 2e-5, one epoch, batch 32 pairs, linear
warmup 10%. Data: fold ``dl20``'s training queries: DL19's judged queries with the official BM25
top-100 (NIST grades, unjudged = 0) plus the first ``--dev-queries`` (300) dev600 queries (BM25
top-20, the relevant passage appended when BM25 missed it); no query of DL20 (checked by
``fold_lists``). Evaluation: NDCG@10 (ranx, trec_eval semantics) of reranking the official BM25
top-100 of DL20's judged queries, beside BM25 itself and the off-the-shelf all-MiniLM-L6-v2
bi-encoder.

    python bench/crossencoder_recipe.py [--dev-queries 300] [--precision auto|bf16|fp32] [--json FILE] [--save DIR]

Measured in an earlier session: 0.214 NDCG@10 on DL20 (BM25 0.480; the workbench's own hybrid
cross-encoder from the same body 0.348). The trained model is saved with ``--save DIR``; then
``workbench eval --datasets dl20 --systems "official-bm25 official-bm25+cross-encoder:DIR"``
reproduces the number through the workbench (the saved directory carries no training record, so
the leakage guard cannot check it: evaluate it on DL20 only).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


def rerank_ndcg(score_lists, lists, dataset) -> float:
    """NDCG@10 of the lists reordered by ``score_lists`` (one array per list)."""
    from workbench.evaluation.metrics import evaluate_run

    rows = [(lst.qid, docno, float(score)) for lst, scores in zip(lists, score_lists)
            for docno, score in zip(lst.docnos, scores)]
    run = pd.DataFrame(rows, columns=["qid", "docno", "score"])
    run["rank"] = run.groupby("qid")["score"].rank(ascending=False, method="first").astype(int)
    return evaluate_run(run, dataset.qrels, dataset.relevance_level, ["ndcg@10"]).means["ndcg@10"]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev-queries", type=int, default=300, help="dev600 queries added to DL19's")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="auto: bf16 autocast where the CPU has it natively")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--save", default=None, help="keep the trained CrossEncoder here")
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", type=int, default=0, help="only this many training and DL20 queries (a check "
                        "that the script runs, not the figure)")
    args = parser.parse_args()

    from datasets import Dataset as HFDataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from workbench.data.datasets import get_dataset
    from workbench.data.trec import read_run
    from workbench.models.dense import minilm_path
    from workbench.models.precision import native_bf16
    from workbench.train.data import dataset_lists, fold_lists

    bf16 = args.precision == "bf16" or (args.precision == "auto" and native_bf16(torch.device("cpu")))
    fold = fold_lists("dl20", args.data_dir, validation=0.0, seed=args.seed, limit=args.dev_queries)
    train = fold.train[:args.smoke] if args.smoke else fold.train
    sources = {s: sum(lst.source == s for lst in train) for s in fold.sources}
    pairs = {"sentence_A": [lst.query for lst in train for _ in lst.passages],
             "sentence_B": [p for lst in train for p in lst.passages],
             "label": [float(g) / 3.0 for lst in train for g in lst.labels]}
    print(f"training: {sources} queries, {len(pairs['label'])} pairs, precision {'bf16' if bf16 else 'fp32'}",
          flush=True)

    dl20 = get_dataset("dl20", args.data_dir)
    bm25 = read_run(dl20.official_run_path("bm25"))
    evaluation = dataset_lists(dl20, dl20.collection(), bm25, depth=100)
    if args.smoke:
        evaluation = evaluation[:args.smoke]
    bm25_scores = [np.asarray(-np.arange(len(lst.docnos)), dtype=float) for lst in evaluation]  # BM25's order

    torch.manual_seed(args.seed)
    model = CrossEncoder(str(minilm_path()), num_labels=1, max_length=args.max_length, device="cpu",
                         local_files_only=True)
    work = Path(tempfile.mkdtemp(prefix="ce-recipe-"))
    training_args = CrossEncoderTrainingArguments(
        output_dir=str(work), num_train_epochs=1, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, warmup_ratio=0.1, bf16=bf16, use_cpu=True, save_strategy="no",
        logging_steps=50, report_to="none", seed=args.seed)
    trainer = CrossEncoderTrainer(model=model, args=training_args, train_dataset=HFDataset.from_dict(pairs),
                                  loss=BinaryCrossEntropyLoss(model))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.model.eval()
    if args.save:
        model.save(args.save)

    def predict(lst):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return np.asarray(model.predict([(lst.query, p) for p in lst.passages], batch_size=64,
                                            activation_fn=torch.nn.Identity(), convert_to_numpy=True), dtype=float)

    crossencoder_ndcg = rerank_ndcg([predict(lst) for lst in evaluation], evaluation, dl20)
    report = {
        "recipe": {"body": "all-MiniLM-L6-v2 + new head", "loss": "BinaryCrossEntropyLoss(grade/3)",
                   "lr": args.lr, "epochs": 1, "batch_size": args.batch_size, "max_length": args.max_length,
                   "precision": "bf16" if bf16 else "fp32", "seed": args.seed},
        "train_queries": sources, "train_pairs": len(pairs["label"]), "train_seconds": round(seconds, 1),
        "pairs_per_s": round(len(pairs["label"]) / seconds, 2),
        "dl20_queries": len(evaluation), "dl20_ndcg@10": {"official-bm25": round(rerank_ndcg(bm25_scores, evaluation, dl20), 4),
                                                          "crossencoder-trainer": round(crossencoder_ndcg, 4)},
        "cpu": _cpu_name(), "torch": torch.__version__,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _cpu_name() -> str:
    from bench_training import cpu_name

    return cpu_name()


if __name__ == "__main__":
    main()
