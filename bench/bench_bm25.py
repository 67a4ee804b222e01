"""Benchmark: BM25 queries/s of the workbench vs Pyserini's batch_search called directly.

Same Lucene index, same queries (MS MARCO dev-small, 6,980), same k and threads, one
process, alternating repetitions; reports the ratio workbench / reference (target >= 0.9).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="dev-small")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=0, help="limit the number of queries (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", default=None, help="write results to this JSON file")
    args = parser.parse_args()

    from workbench.data.collection import Collection
    from workbench.data.datasets import get_dataset
    from workbench.first_stage.lucene import build_index
    from workbench.first_stage.bm25 import BM25Config, BM25Retriever

    dataset = get_dataset(args.dataset)
    topics = dataset.judged_topics
    if args.queries:
        topics = topics.head(args.queries)
    index = build_index(Collection(dataset.collection_path))
    config = BM25Config(k=args.k, threads=args.threads)
    ours = BM25Retriever(index.path, config)
    threads = config.resolved_threads()

    from pyserini.search.lucene import LuceneSearcher

    reference = LuceneSearcher(str(index.path))
    reference.set_bm25(0.9, 0.4)
    queries, qids = topics["query"].tolist(), topics["qid"].tolist()

    def run_reference():
        hits = reference.batch_search(queries, qids, k=args.k, threads=threads)
        return sum(len(h) for h in hits.values())

    def run_ours():
        return len(ours.search(topics, k=args.k))

    assert run_reference() == run_ours()  # warm-up, and both return the same number of hits
    times = {"reference": [], "workbench": []}
    for _ in range(args.repeats):
        for name, fn in (("reference", run_reference), ("workbench", run_ours)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in times.items()}
    qps = {name: len(queries) / seconds for name, seconds in best.items()}
    result = {
        "benchmark": "bm25", "dataset": args.dataset, "queries": len(queries), "k": args.k, "threads": threads,
        "reference_qps": round(qps["reference"], 1), "workbench_qps": round(qps["workbench"], 1),
        "ratio": round(qps["workbench"] / qps["reference"], 3),
        "median_s": {name: round(statistics.median(values), 3) for name, values in times.items()},
        "cpus": os.cpu_count(),
    }
    print(f"BM25 {args.dataset} ({len(queries)} queries, k={args.k}, {threads} threads): "
          f"pyserini batch_search {result['reference_qps']} q/s, workbench {result['workbench_qps']} q/s, "
          f"ratio {result['ratio']} (target >= 0.9)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
