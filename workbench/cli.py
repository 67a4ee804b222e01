"""Command line: a thin layer over the library API.

    workbench eval        run systems on datasets and print the leaderboard (the main job)
    workbench retrieve    BM25 candidates over the Lucene index of the collection
    workbench rerank      rerank a candidate run with a registered reranker
    workbench evaluate    evaluate any TREC run on a dataset
    workbench compare     per-query gains and losses of one system against another
    workbench leaderboard print the leaderboard
    workbench query-types label queries qa / exploratory (rules with reasons)
    workbench report      sliced leaderboard CSV, Markdown summary, slice plot
    workbench index       build (or reuse) the Lucene index
    workbench rerankers   list the registered rerankers
    workbench data        materialise the data directory from ir_datasets (needs internet)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .errors import WorkbenchError


def _split(value: str) -> list[str]:
    return [item for item in (part.strip() for part in value.replace(",", " ").split()) if item]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $WORKBENCH_DATA, ./data/msmarco-passage-mini, "
                             "../shared/data/msmarco-passage-mini)")
    parser.add_argument("--runs-dir", default="runs", help="where runs and manifests are stored (default: runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="IR evaluation workbench for MS MARCO passage "
                                     "ranking: BM25 candidates, rerankers, ranx evaluation, leaderboard.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("eval", help="run systems on datasets, evaluate, update and print the leaderboard")
    _add_common(run)
    run.add_argument("--datasets", default="dl19,dl20", help="comma-separated dataset names")
    run.add_argument("--systems", default=None, help="comma-separated systems (default: the standard set)")
    run.add_argument("--depth", type=int, default=100, help="rerank the top-N candidates (default 100)")
    run.add_argument("--threads", type=int, default=0, help="indexing/search threads (default: all cores)")
    run.add_argument("--device", default="cpu", help="device for neural rerankers (cpu, cuda, auto)")
    run.add_argument("--leaderboard", default=None, help="leaderboard CSV (default: <runs-dir>/leaderboard.csv)")
    run.add_argument("--baseline", default=None,
                     help="system every other system is tested against (default: each reranker's candidates)")
    run.add_argument("--query-types", default=None,
                     help="label file (qid<TAB>label[<TAB>reason]) overriding the committed query types")

    retrieve = commands.add_parser("retrieve", help="BM25 top-k over the Lucene index of the collection")
    _add_common(retrieve)
    retrieve.add_argument("--dataset", required=True)
    retrieve.add_argument("--k", type=int, default=1000)
    retrieve.add_argument("--k1", type=float, default=0.9, help="BM25 k1 (Anserini default 0.9; tuned 0.82)")
    retrieve.add_argument("--b", type=float, default=0.4, help="BM25 b (Anserini default 0.4; tuned 0.68)")
    retrieve.add_argument("--threads", type=int, default=0)

    rerank = commands.add_parser("rerank", help="rerank the top-N of a candidate run")
    _add_common(rerank)
    rerank.add_argument("--dataset", required=True)
    rerank.add_argument("--candidates", required=True,
                        help="a system (bm25-mini, official-bm25, ...) or a TREC run file path")
    rerank.add_argument("--reranker", required=True, help="registered reranker, e.g. tfidf or cross-encoder:<model>")
    rerank.add_argument("--depth", type=int, default=100)
    rerank.add_argument("--device", default="cpu")

    evaluate = commands.add_parser("evaluate", help="evaluate a TREC run on a dataset with ranx")
    _add_common(evaluate)
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--run", required=True, help="TREC run file")
    evaluate.add_argument("--metrics", default=None, help="comma-separated ranx metric names")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object of metric -> value")
    evaluate.add_argument("--per-query", action="store_true", help="also print per-query values (TSV)")

    board = commands.add_parser("leaderboard", help="print the leaderboard")
    board.add_argument("--path", default="runs/leaderboard.csv")
    board.add_argument("--dataset", default=None)

    index = commands.add_parser("index", help="build or reuse the Lucene index of the collection")
    _add_common(index)
    index.add_argument("--threads", type=int, default=0)
    index.add_argument("--force", action="store_true", help="rebuild even if cached")

    commands.add_parser("rerankers", help="list registered rerankers")

    types = commands.add_parser("query-types", help="label queries qa / exploratory and write qrels/<dataset>.query-types.tsv")
    types.add_argument("--data-dir", default=None)
    types.add_argument("--datasets", default=None, help="comma-separated (default: all)")
    types.add_argument("--labels-dir", default="qrels")
    types.add_argument("--override", default=None, help="user label file: print the resulting distribution only")

    report = commands.add_parser("report", help="sliced leaderboard CSV + Markdown summary + slice plot PNG")
    report.add_argument("--leaderboard", default="runs/leaderboard.csv")
    report.add_argument("--out", default="runs/report")
    report.add_argument("--datasets", default=None, help="only these datasets")
    report.add_argument("--systems", default=None, help="only these systems")

    compare = commands.add_parser("compare", help="per-query wins and losses of system B against system A")
    _add_common(compare)
    compare.add_argument("a", help="reference system, e.g. official-bm25")
    compare.add_argument("b", help="system compared with it, e.g. official-bm25+tfidf")
    compare.add_argument("--dataset", required=True)
    compare.add_argument("--metric", default="ndcg@10")
    compare.add_argument("--top", type=int, default=5, help="queries shown per side (gains, losses)")
    compare.add_argument("--passages", type=int, default=3, help="top passages shown per system")
    compare.add_argument("--depth", type=int, default=100)
    compare.add_argument("--device", default="cpu")
    compare.add_argument("--csv", default=None, help="also write every query's delta to this CSV")

    data = commands.add_parser("data", help="materialise the data directory from ir_datasets (needs internet)")
    data.add_argument("--target", default="data/msmarco-passage-mini", help="directory to write")
    data.add_argument("--depth", type=int, default=100, help="candidates kept per query")
    data.add_argument("--full-collection", action="store_true", help="all 8.8M passages, not only those needed")
    data.add_argument("--dl19-candidates", default=None, help="TREC run to use as DL19 BM25 candidates")
    data.add_argument("--dl20-candidates", default=None, help="TREC run to use as DL20 BM25 candidates")
    data.add_argument("--dev-candidates", default=None, help="TREC run of dev queries; writes dev600 from it")
    data.add_argument("--force", action="store_true", help="rewrite files that are already complete")
    data.add_argument("--quiet", action="store_true")
    return parser


def _system_for_candidates(value: str) -> str:
    return f"run:{value}" if (os.sep in value or value.endswith(".trec") or Path(value).is_file()) else value


def _print_table(board, dataset: str | None = None) -> None:
    from .leaderboard import format_table

    if dataset is not None and not board.empty:
        board = board[board["dataset"] == dataset]
    print(format_table(board))


def run_command(args: argparse.Namespace) -> int:
    if args.command == "evaluate":
        from .datasets import get_dataset
        from .evaluate import evaluate_run
        from .trec import read_run

        dataset = get_dataset(args.dataset, args.data_dir)
        run = read_run(args.run)
        evaluation = evaluate_run(run, dataset.qrels, dataset.relevance_level,
                                  _split(args.metrics) if args.metrics else None)
        if args.json:
            print(json.dumps(evaluation.means))
        else:
            for metric, value in evaluation.means.items():
                print(f"{metric}\t{value:.4f}")
            print(f"n_queries\t{evaluation.n_queries}")
        for note in evaluation.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.per_query:
            print(evaluation.per_query.to_csv(sep="\t", float_format="%.4f"), end="")
        return 0
    if args.command == "leaderboard":
        from .leaderboard import read_leaderboard

        _print_table(read_leaderboard(args.path), args.dataset)
        return 0
    if args.command == "query-types":
        from .querytypes import main_query_types

        args.datasets = _split(args.datasets) if args.datasets else None
        return main_query_types(args)
    if args.command == "report":
        from .leaderboard import read_leaderboard
        from .report import write_report

        board = read_leaderboard(args.leaderboard)
        if args.datasets and not board.empty:
            board = board[board["dataset"].isin(_split(args.datasets))]
        if args.systems and not board.empty:
            board = board[board["system"].isin(_split(args.systems))]
        for kind, path in write_report(board, args.out).items():
            print(f"{kind}\t{path}")
        return 0
    if args.command == "rerankers":
        from .rerankers import REGISTRY, load_builtin

        load_builtin()
        for name in sorted(REGISTRY):
            entry = REGISTRY[name]
            defaults = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
            print(f"{name}\t{entry.help}" + (f" [{defaults}]" if defaults else ""))
        return 0
    if args.command == "data":
        from .download import run_data_command

        return run_data_command(args.target, depth=args.depth, full_collection=args.full_collection,
                                dl19_candidates=args.dl19_candidates, dl20_candidates=args.dl20_candidates,
                                dev_candidates=args.dev_candidates, force=args.force, progress=not args.quiet)
    if args.command == "index":
        from .collection import Collection
        from .datasets import resolve_data_dir
        from .index import build_index

        collection = Collection(resolve_data_dir(args.data_dir) / "collection.tsv")
        built = build_index(collection, threads=args.threads or None, force=args.force)
        print(f"{built.path}\t{'built in %.1f s' % built.seconds if built.built else 'reused'}")
        return 0

    from .experiment import DEFAULT_SYSTEMS, Workbench

    runs_dir = Path(args.runs_dir)
    leaderboard = Path(getattr(args, "leaderboard", None) or runs_dir / "leaderboard.csv")
    bench = Workbench(data_dir=args.data_dir, runs_dir=runs_dir, leaderboard=leaderboard,
                      rerank_depth=getattr(args, "depth", 100), threads=getattr(args, "threads", 0),
                      device=getattr(args, "device", "cpu"), progress=not args.quiet)
    if args.command == "eval":
        systems = _split(args.systems) if args.systems else DEFAULT_SYSTEMS
        datasets = _split(args.datasets)
        bench.run_experiment(datasets, systems, baseline=args.baseline, query_types=args.query_types)
        from .leaderboard import read_leaderboard

        board = read_leaderboard(leaderboard)
        board = board[board["dataset"].isin(datasets) & board["system"].isin(systems)]
        print(f"\nLeaderboard ({leaderboard}); d_<metric>: delta vs baseline, * / ** significant at "
              "0.05 / 0.01 (randomization test, Holm-corrected across systems):")
        _print_table(board)
        return 0
    if args.command == "compare":
        from .atomic import atomic_write
        from .compare import compare_systems, format_comparison
        from .evaluate import ranx_metric

        ranx_metric(args.metric, 1)  # validates the metric name before any work
        comparison = compare_systems(bench, args.a, args.b, args.dataset, args.metric, args.top, args.passages)
        print(format_comparison(comparison))
        if args.csv:
            with atomic_write(args.csv) as handle:
                comparison.deltas.to_csv(handle, index=False, float_format="%.4f")
        return 0
    if args.command == "retrieve":
        system = f"bm25-mini:k1={args.k1},b={args.b},k={args.k}"
        if (args.k1, args.b, args.k) == (0.9, 0.4, 1000):
            system = "bm25-mini"
    else:  # rerank
        system = f"{_system_for_candidates(args.candidates)}+{args.reranker}"
    result = bench.run_system(system, args.dataset)
    from .leaderboard import upsert_rows

    upsert_rows([bench.leaderboard_row(result)], leaderboard)
    state = "reused" if result.stored.reused else "written"
    print(f"{result.stored.path}\t{state}\t" +
          " ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    for noisy in ("faiss", "faiss.loader", "numba", "urllib3", "httpx", "jnius"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return run_command(args)
    except WorkbenchError as error:
        print(f"workbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted; finished runs and cached scores are kept, re-run to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
