"""Benchmark: ranx evaluation time for the 6,980 MS MARCO dev queries x 100 documents.

The run is the workbench's BM25 top-100 over the Lucene index (any run of that shape
would do). Reports the numba warm-up separately from the steady-state evaluation time,
and Pyserini's trec_eval on the same run and qrels as the side-by-side reference.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from workbench.data.collection import Collection
    from workbench.data.datasets import get_dataset
    from workbench.evaluation.metrics import evaluate_run
    from workbench.first_stage.lucene import build_index
    from workbench.first_stage.bm25 import BM25Config, BM25Retriever
    from workbench.data.trec import write_run

    dataset = get_dataset("dev-small")
    index = build_index(Collection(dataset.collection_path))
    run = BM25Retriever(index.path, BM25Config(k=100)).search(dataset.judged_topics)
    qrels = dataset.qrels

    started = time.perf_counter()
    evaluate_run(run.head(1000), qrels, dataset.relevance_level)
    warmup = time.perf_counter() - started

    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        evaluation = evaluate_run(run, qrels, dataset.relevance_level)
        timings.append(time.perf_counter() - started)

    from pyserini.eval.trec_eval import trec_eval

    with tempfile.TemporaryDirectory() as tmp:
        path = write_run(run, Path(tmp) / "run.trec", tag="bench")
        started = time.perf_counter()
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            for measure, options in (("recip_rank", ["-M", "10"]), ("ndcg_cut.5", []), ("ndcg_cut.10", []),
                                     ("recall.100", []), ("map", [])):
                trec_eval(["trec_eval", "-c", *options, "-m", measure, str(dataset.qrels_path), str(path)])
        trec_eval_seconds = time.perf_counter() - started

    result = {"benchmark": "evaluate", "queries": int(run.qid.nunique()), "lines": len(run),
              "metrics": evaluation.metrics, "numba_warmup_s": round(warmup, 2),
              "evaluate_s_best": round(min(timings), 3),
              "pyserini_trec_eval_s": round(trec_eval_seconds, 2), "means": evaluation.means}
    print(f"evaluate {result['queries']} queries x 100 docs ({len(run)} lines), 5 metrics: "
          f"{result['evaluate_s_best']} s (numba warm-up {result['numba_warmup_s']} s once per process); "
          f"pyserini trec_eval (5 calls) {result['pyserini_trec_eval_s']} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
