"""Subcommands that produce, evaluate and compare runs: eval, check-precision, retrieve, rerank, evaluate,
compare, leaderboard.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..core.errors import WorkbenchError
from .common import _add_common, _add_engine, _add_run_settings, _split, _systems, _workbench, command


def _print_table(board, dataset: str | None = None) -> None:
    from ..report.leaderboard import format_table

    if dataset is not None and not board.empty:
        board = board[board["dataset"] == dataset]
    print(format_table(board))
    _print_slice_warnings(board)


def _print_slice_warnings(board) -> None:
    """One line per dataset on ``board`` whose query-type slices are unreliable (its slice_note)."""
    from ..analysis.query_types import slice_warnings

    for dataset, note in slice_warnings(board).items():
        print(f"warning: {dataset}: {note}")


def _run_one(args: argparse.Namespace, system: str) -> int:
    """Produce and evaluate one system, upsert its leaderboard row, print where it is."""
    from ..experiment.risk_rows import add_georisk
    from ..report.leaderboard import upsert_rows

    bench = _workbench(args)
    result = bench.run_system(system, args.dataset)
    known = {args.dataset: {system: result.evaluation.per_query}}  # GeoRisk compares every system on the board
    upsert_rows([bench.leaderboard_row(result)], bench.leaderboard,
                finish=lambda board: add_georisk(bench.session, board, [args.dataset], known))
    state = "reused" if result.stored.reused else "written"
    print(f"{result.stored.path}\t{state}\t" +
          " ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--datasets", default="dl19,dl20", help="comma-separated dataset names: built in (dl19, dl20, "
                        "dev600, dev-small), declared (datasets/*.toml, --dataset-file) or irds:<ir_datasets id>")
    parser.add_argument("--systems", default=None, help="systems separated by commas or spaces; a system's own option list keeps its commas "
                        "(bm25-mini:k1=0.82,b=0.68), [brackets] keep anything together (default: the standard set)")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=D1,D2",
                        help="rows over the union of these datasets' judged queries, each with its own qrels "
                             "(e.g. dl19+dl20=dl19,dl20); repeatable; the datasets are evaluated too")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics for every dataset, workbench names (mrr@10) or ir_measures "
                        "notation (nDCG@10, RR(rel=2)@10, AP, P@30, R@100, Judged@10, bpref) (default: each "
                        "dataset's own headline metrics)")
    _add_run_settings(parser)
    parser.add_argument("--leaderboard", default=None, help="leaderboard CSV (default: <runs-dir>/leaderboard.csv)")
    parser.add_argument("--baseline", default=None,
                        help="system every other system is tested against (default: each reranker's candidates)")
    parser.add_argument("--query-types", default=None,
                        help="label file (qid<TAB>label[<TAB>reason]) overriding the committed query types")
    parser.add_argument("--fast", action="store_true",
                        help="replace each reranker that has a fast path check-precision found safe on DL19, DL20 "
                             "and dev600 by it (the system names say so); never the default")
    parser.add_argument("--correction", default="holm", choices=["holm", "bonferroni", "bh", "none"],
                        help="multiple-testing correction, applied to the whole leaderboard: one family per "
                             "(dataset, slice, baseline, metric) (default: holm)")
    _add_engine(parser)


@command("eval", "run systems on datasets, evaluate, update and print the leaderboard", _eval_arguments)
def run_eval(args: argparse.Namespace) -> int:
    from ..experiment import DEFAULT_SYSTEMS, FAST_PATHS, fast_systems
    from ..report.leaderboard import read_leaderboard

    systems = _systems(args.systems) if args.systems else DEFAULT_SYSTEMS
    if args.fast:
        if not FAST_PATHS:
            print("--fast: no fast path has passed check-precision on DL19, DL20 and dev600 (see docs/precision.md, "
                  "'Precision and speed'): running the exact systems", file=sys.stderr)
        systems = fast_systems(systems)
    datasets = _split(args.datasets)
    pools = _pools(args.pool)
    bench = _workbench(args)
    if args.metrics:
        from ..core.measures import check_metrics, split_metrics

        bench.metrics = check_metrics(split_metrics(args.metrics))
    bench.run_experiment(datasets, systems, baseline=args.baseline, query_types=args.query_types,
                         correction=args.correction, pools=pools)
    board = read_leaderboard(bench.leaderboard)
    shown = datasets + [m for members in pools.values() for m in members] + list(pools)
    board = board[board["dataset"].isin(shown) & board["system"].isin(systems)]
    print(f"\nLeaderboard ({bench.leaderboard}); d_<metric>: delta vs baseline, * / ** significant at "
          f"0.05 / 0.01 (exact randomization test, {args.correction}-corrected over every system the leaderboard "
          "compares with the same baseline on that dataset and slice; ≠: the judged-only delta disagrees in sign "
          "or significance):")
    from ..report.leaderboard import format_table

    # each dataset's metrics in its own order (CACM: map, precision@30, ndcg@10)
    metrics = list(dict.fromkeys(m for name in datasets for m in bench.metrics_for(name)))
    print(format_table(board, metrics))
    _print_slice_warnings(board)
    return 0


def _pools(values: list[str]) -> dict[str, list[str]]:
    """``--pool NAME=D1,D2`` values as {name: datasets}; each malformed one is one line."""
    pools: dict[str, list[str]] = {}
    for value in values:
        for item in (part for part in value.split() if part):  # make POOL="a=x,y b=z,w"
            name, sep, members = item.partition("=")
            if not sep or not name or not members:
                raise WorkbenchError(f"--pool {item!r}: expected NAME=DATASET,DATASET (e.g. dl19+dl20=dl19,dl20)")
            if name in pools:
                raise WorkbenchError(f"--pool {name!r} is given twice")
            pools[name] = _split(members)
    return pools


def _check_precision_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("reranker", help="reranker spec (dense-minilm, splade-tiny, cross-encoder:<model>, "
                        "finetuned:<name>)")
    parser.add_argument("--datasets", default="dl19,dl20,dev600", help="comma-separated dataset names")
    parser.add_argument("--candidates", default="official-bm25", help="candidate system (default: official-bm25)")
    parser.add_argument("--paths", default=None, help="comma-separated path labels to check besides the exact one "
                        "(default: every path the reranker offers)")
    parser.add_argument("--out", default=None, help="write <out>.md and <out>.json (default: "
                        "<runs-dir>/precision/<reranker>)")
    parser.add_argument("--equivalence", action="append", default=None, metavar="MARGIN|METRIC=MARGIN",
                        help="also a paired TOST of each fast path against the exact one within ±MARGIN, on "
                             "ndcg@10 or the metric named (ndcg@10=0.01), per dataset and pooled over dl19+dl20 "
                             "when both are checked; repeatable")
    _add_run_settings(parser, threads=False)


@command("check-precision", "measure what each faster numeric path (ONNX fp32, bf16, int8) changes against the "
         "exact one: headline metrics, score differences, top-10 order", _check_precision_arguments)
def run_check_precision(args: argparse.Namespace) -> int:
    from ..experiment.precision import check_precision, write_precision_report
    from ..experiment.precision_equivalence import precision_equivalence
    from ..experiment.store import safe_name

    equivalence = precision_equivalence(args.equivalence)  # a bad margin fails here, in one line
    bench = _workbench(args)
    paths = [p.strip() for p in args.paths.split(",")] if args.paths else None
    report = check_precision(bench.session, args.reranker, _split(args.datasets), candidates=args.candidates,
                             depth=args.depth, paths=paths, equivalence=equivalence)
    out = Path(args.out) if args.out else Path(args.runs_dir) / "precision" / safe_name(args.reranker)
    markdown, data = write_precision_report(report, out)
    print(report.markdown())
    print(f"written: {markdown}, {data}")
    return 0


def _retrieve_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--k1", type=float, default=0.9, help="BM25 k1 (Anserini default 0.9; tuned 0.82)")
    parser.add_argument("--b", type=float, default=0.4, help="BM25 b (Anserini default 0.4; tuned 0.68)")
    parser.add_argument("--threads", type=int, default=0)


@command("retrieve", "BM25 top-k over the Lucene index of the collection", _retrieve_arguments)
def run_retrieve(args: argparse.Namespace) -> int:
    system = f"bm25-mini:k1={args.k1},b={args.b},k={args.k}"
    if (args.k1, args.b, args.k) == (0.9, 0.4, 1000):
        system = "bm25-mini"
    return _run_one(args, system)


def _rerank_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--candidates", required=True,
                        help="a system (bm25-mini, official-bm25, ...) or a TREC run file path")
    parser.add_argument("--reranker", required=True, help="registered reranker, e.g. tfidf or cross-encoder:<model>")
    _add_run_settings(parser, threads=False)


@command("rerank", "rerank the top-N of a candidate run", _rerank_arguments)
def run_rerank(args: argparse.Namespace) -> int:
    candidates = args.candidates
    if os.sep in candidates or candidates.endswith(".trec") or Path(candidates).is_file():
        candidates = f"run:{candidates}"
    return _run_one(args, f"{candidates}+{args.reranker}")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run", required=True, help="TREC run file")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics: workbench names (mrr@10, ndcg@5) or ir_measures notation (nDCG@10, RR(rel=2)@10, Judged@10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metric -> value")
    parser.add_argument("--per-query", action="store_true", help="also print per-query values (TSV)")


@command("evaluate", "evaluate a TREC run on a dataset with ranx", _evaluate_arguments)
def run_evaluate(args: argparse.Namespace) -> int:
    from ..data.datasets import get_dataset
    from ..data.trec import read_run
    from ..core.measures import split_metrics
    from ..evaluation.metrics import evaluate_run

    dataset = get_dataset(args.dataset, args.data_dir)
    run = read_run(args.run)
    evaluation = evaluate_run(run, dataset.qrels, dataset.relevance_level,
                              split_metrics(args.metrics) if args.metrics else dataset.metrics)
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


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("a", help="reference system, e.g. official-bm25")
    parser.add_argument("b", help="system compared with it, e.g. official-bm25+tfidf")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--top", type=int, default=5, help="queries shown per side (gains, losses)")
    parser.add_argument("--passages", type=int, default=3, help="top passages shown per system")
    _add_run_settings(parser, threads=False)
    parser.add_argument("--csv", default=None, help="also write every query's delta to this CSV")


@command("compare", "per-query wins and losses of system B against system A", _compare_arguments)
def run_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import format_comparison
    from ..core.files import atomic_write
    from ..core.measures import resolve_measure

    resolve_measure(args.metric)  # validates the metric name before any work
    comparison = _workbench(args).compare(args.a, args.b, args.dataset, args.metric, args.top, args.passages)
    print(format_comparison(comparison))
    if args.csv:
        with atomic_write(args.csv) as handle:
            comparison.deltas.to_csv(handle, index=False, float_format="%.4f")
    return 0


def _leaderboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", default="runs/leaderboard.csv")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--rebuild", action="store_true",
                        help="recompute every row (metrics, CIs, deltas, tests, corrections) from the stored runs, "
                             "qrels and query types alone, with no model call, and rewrite the leaderboard")
    parser.add_argument("--fast", action="store_true",
                        help="replace each reranker that has a fast path check-precision found safe on DL19, DL20 "
                             "and dev600 by it (the system names say so); never the default")
    parser.add_argument("--correction", default="holm", choices=["holm", "bonferroni", "bh", "none"],
                        help="with --rebuild: the multiple-testing correction (default: holm)")
    parser.add_argument("--data-dir", default=None, help="with --rebuild: the data directory")
    parser.add_argument("--dataset-file", action="append", default=[], metavar="FILE",
                        help="with --rebuild: a dataset declared in a TOML file (repeatable)")
    parser.add_argument("--query-types", default=None, help="with --rebuild: a label file overriding the committed ones")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)


@command("leaderboard", "print the leaderboard (--rebuild: recompute it from the stored runs)", _leaderboard_arguments)
def run_leaderboard(args: argparse.Namespace) -> int:
    from ..report.leaderboard import read_leaderboard

    if args.rebuild:
        from ..experiment import Workbench

        path = Path(args.path)
        bench = Workbench(data_dir=args.data_dir, runs_dir=path.parent, leaderboard=path, progress=False)
        before = read_leaderboard(path)
        rebuilt = bench.rebuild_leaderboard(query_types=args.query_types, correction=args.correction)
        print(f"rebuilt {len(rebuilt)} rows of {path} from the stored runs ({len(before)} before)")
    _print_table(read_leaderboard(args.path), args.dataset)
    return 0

