"""Command line: a thin layer over the library API, one small function per subcommand.

    workbench eval          run systems on datasets and print the leaderboard (the main job)
    workbench retrieve      BM25 candidates over the Lucene index of the collection
    workbench rerank        rerank a candidate run with a registered reranker
    workbench evaluate      evaluate any TREC run on a dataset
    workbench compare       per-query gains and losses of one system against another
    workbench leaderboard   print the leaderboard
    workbench report        sliced leaderboard CSV, Markdown summary, slice plot, HTML report with drill-downs
    workbench query-types   label queries qa / exploratory (rules with reasons)
    workbench index         build (or reuse) the Lucene index
    workbench rerankers     list the registered rerankers and their options
    workbench first-stages  list the registered first stages and their options
    workbench data          materialise the data directory from ir_datasets (needs internet)
    workbench train         fine-tune a ranker from a configuration file, every cross-year fold
    workbench plot-training one PNG of a training run's curves
    workbench ablation      systems against one baseline per slice (the loss ablation table)
    workbench embed-diagnose embedding diagnostics per pooling (anisotropy, separation, plots)
    workbench similarity    cosine of sentence pairs from a TSV, pass/fail against expected values

Every subcommand is a :class:`Command` in :data:`COMMANDS`: its arguments and its handler.
A :class:`~workbench.core.errors.WorkbenchError` is printed as one line (exit status 2).
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .core.errors import WorkbenchError


def _systems(value: str) -> list[str]:
    """A ``--systems`` value: commas inside a system's option list stay with it (see split_systems)."""
    from .experiment.systems import split_systems

    return split_systems(value)


def _split(value: str) -> list[str]:
    return [item for item in (part.strip() for part in value.replace(",", " ").split()) if item]


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $WORKBENCH_DATA, ./data/msmarco-passage-mini, "
                             "../shared/data/msmarco-passage-mini)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--runs-dir", default="runs", help="where runs and manifests are stored (default: runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")


def _add_run_settings(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    parser.add_argument("--depth", type=int, default=100, help="rerank the top-N candidates (default 100)")
    parser.add_argument("--device", default="cpu", help="device for neural models (cpu, cuda, auto)")
    if threads:
        parser.add_argument("--threads", type=int, default=0, help="indexing/search threads (default: all cores)")


def _workbench(args: argparse.Namespace):
    from .experiment import Workbench

    runs_dir = Path(args.runs_dir)
    leaderboard = Path(getattr(args, "leaderboard", None) or runs_dir / "leaderboard.csv")
    return Workbench(data_dir=args.data_dir, runs_dir=runs_dir, leaderboard=leaderboard,
                     rerank_depth=getattr(args, "depth", 100), threads=getattr(args, "threads", 0),
                     device=getattr(args, "device", "cpu"), progress=not args.quiet, engine=_engine(args))


def _add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="local", choices=["local", "ray"],
                        help="where reranking, collection encoding and BM25 run: here (default) or on a Ray "
                             "cluster (pip install -e '.[ray]'); the runs are the same either way")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join (auto, ray://host:10001; default: start one on this machine)")
    parser.add_argument("--ray-workers", type=int, default=None,
                        help="actors per stage (default: the cluster's CPUs, or GPUs with --device cuda)")
    parser.add_argument("--ray-batch-size", type=int, default=1,
                        help="chunks of pairs (or groups of passages) per actor call (default 1; results do not depend on it)")


def _engine(args: argparse.Namespace):
    """The engine ``--engine`` names (None: local)."""
    if getattr(args, "engine", "local") != "ray":
        if getattr(args, "ray_address", None):
            raise WorkbenchError("--ray-address needs --engine ray")
        return None
    from .engines.ray import RayEngine

    return RayEngine(address=args.ray_address, workers=args.ray_workers, batch_size=args.ray_batch_size,
                     progress=not args.quiet)


def _print_table(board, dataset: str | None = None) -> None:
    from .report.leaderboard import format_table

    if dataset is not None and not board.empty:
        board = board[board["dataset"] == dataset]
    print(format_table(board))


def _run_one(args: argparse.Namespace, system: str) -> int:
    """Produce and evaluate one system, upsert its leaderboard row, print where it is."""
    from .report.leaderboard import upsert_rows

    bench = _workbench(args)
    result = bench.run_system(system, args.dataset)
    upsert_rows([bench.leaderboard_row(result)], bench.leaderboard)
    state = "reused" if result.stored.reused else "written"
    print(f"{result.stored.path}\t{state}\t" +
          " ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
    return 0


# ----------------------------------------------------------------------------- subcommands


@dataclass(frozen=True)
class Command:
    """A subcommand: its help, how it declares its arguments, and what it does."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None):
    """Decorator: register ``run(args) -> exit status`` as subcommand ``name``."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, arguments, run)
        return run

    return decorate


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--datasets", default="dl19,dl20", help="comma-separated dataset names")
    parser.add_argument("--systems", default=None, help="systems separated by commas or spaces; a system's own option list keeps its commas "
                        "(bm25-mini:k1=0.82,b=0.68), [brackets] keep anything together (default: the standard set)")
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
    from .experiment import DEFAULT_SYSTEMS, FAST_PATHS, fast_systems
    from .report.leaderboard import read_leaderboard

    systems = _systems(args.systems) if args.systems else DEFAULT_SYSTEMS
    if args.fast:
        if not FAST_PATHS:
            print("--fast: no fast path has passed check-precision on DL19, DL20 and dev600 (see README, "
                  "'Precision and speed'): running the exact systems", file=sys.stderr)
        systems = fast_systems(systems)
    datasets = _split(args.datasets)
    bench = _workbench(args)
    bench.run_experiment(datasets, systems, baseline=args.baseline, query_types=args.query_types,
                         correction=args.correction)
    board = read_leaderboard(bench.leaderboard)
    board = board[board["dataset"].isin(datasets) & board["system"].isin(systems)]
    print(f"\nLeaderboard ({bench.leaderboard}); d_<metric>: delta vs baseline, * / ** significant at "
          f"0.05 / 0.01 (exact randomization test, {args.correction}-corrected over every system the leaderboard "
          "compares with the same baseline on that dataset and slice):")
    _print_table(board)
    return 0


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
    _add_run_settings(parser, threads=False)


@command("check-precision", "measure what each faster numeric path (ONNX fp32, bf16, int8) changes against the "
         "exact one: headline metrics, score differences, top-10 order", _check_precision_arguments)
def run_check_precision(args: argparse.Namespace) -> int:
    from .experiment.precision import check_precision, write_report
    from .experiment.store import safe_name

    bench = _workbench(args)
    paths = [p.strip() for p in args.paths.split(",")] if args.paths else None
    report = check_precision(bench.session, args.reranker, _split(args.datasets), candidates=args.candidates,
                             depth=args.depth, paths=paths)
    out = Path(args.out) if args.out else Path(args.runs_dir) / "precision" / safe_name(args.reranker)
    markdown, data = write_report(report, out)
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
    parser.add_argument("--metrics", default=None, help="comma-separated ranx metric names")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metric -> value")
    parser.add_argument("--per-query", action="store_true", help="also print per-query values (TSV)")


@command("evaluate", "evaluate a TREC run on a dataset with ranx", _evaluate_arguments)
def run_evaluate(args: argparse.Namespace) -> int:
    from .data.datasets import get_dataset
    from .data.trec import read_run
    from .evaluation.metrics import evaluate_run

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
    from .analysis.compare import format_comparison
    from .core.files import atomic_write
    from .evaluation.metrics import ranx_metric

    ranx_metric(args.metric, 1)  # validates the metric name before any work
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
    parser.add_argument("--query-types", default=None, help="with --rebuild: a label file overriding the committed ones")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)


@command("leaderboard", "print the leaderboard (--rebuild: recompute it from the stored runs)", _leaderboard_arguments)
def run_leaderboard(args: argparse.Namespace) -> int:
    from .report.leaderboard import read_leaderboard

    if args.rebuild:
        from .experiment import Workbench

        path = Path(args.path)
        bench = Workbench(data_dir=args.data_dir, runs_dir=path.parent, leaderboard=path, progress=False)
        before = read_leaderboard(path)
        rebuilt = bench.rebuild_leaderboard(query_types=args.query_types, correction=args.correction)
        print(f"rebuilt {len(rebuilt)} rows of {path} from the stored runs ({len(before)} before)")
    _print_table(read_leaderboard(args.path), args.dataset)
    return 0


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaderboard", default="runs/leaderboard.csv")
    parser.add_argument("--out", default="runs/report")
    parser.add_argument("--datasets", default=None, help="only these datasets")
    parser.add_argument("--systems", default=None, help="only these systems")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"),
                        help="also drill into system B against system A (repeatable); every system is already "
                             "compared with its leaderboard baseline")
    parser.add_argument("--metric", default="ndcg@10", help="the metric that orders gains and losses (default ndcg@10)")
    parser.add_argument("--top", type=int, default=10, help="gains and losses shown per pair (default 10)")
    parser.add_argument("--passages", type=int, default=10, help="passages of each ranking shown (default 10)")
    parser.add_argument("--query-types", default=None, help="a label file overriding the committed query types "
                                                            "(as given to workbench eval)")
    parser.add_argument("--no-html", action="store_true", help="only the CSV, Markdown summary and plot")
    parser.add_argument("--screenshots", default=None, metavar="DIR",
                        help="also save PNG screenshots (headless Chromium) of --screenshot-dataset's leaderboard and "
                             "of the drill-down where --screenshot-baseline and the best reranker disagree most")
    parser.add_argument("--screenshot-dataset", default="dl19")
    parser.add_argument("--screenshot-baseline", default="official-bm25")
    _add_data_dir(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


@command("report", "sliced leaderboard CSV, Markdown summary, slice plot PNG and the HTML report with drill-downs",
         _report_arguments)
def run_report(args: argparse.Namespace) -> int:
    from .report.leaderboard import read_leaderboard
    from .report.summary import write_report

    board = read_leaderboard(args.leaderboard)
    if args.datasets and not board.empty:
        board = board[board["dataset"].isin(_split(args.datasets))]
    if args.systems and not board.empty:
        wanted = set(_systems(args.systems)) | {system for pair in args.pair for system in pair}
        board = board[board["system"].isin(wanted)]
    for kind, path in write_report(board, args.out).items():
        print(f"{kind}\t{path}")
    if args.no_html:
        return 0
    from .experiment import Workbench
    from .report.html import write_html_report

    leaderboard = Path(args.leaderboard)
    bench = Workbench(data_dir=args.data_dir, runs_dir=leaderboard.parent, leaderboard=leaderboard, progress=False)
    pairs = [tuple(pair) for pair in args.pair]
    shot = None
    if args.screenshots:
        best = bench.best_reranker(args.screenshot_dataset, board)
        if best is None:
            raise WorkbenchError(f"--screenshots: no reranked system on the leaderboard for {args.screenshot_dataset}")
        shot = (args.screenshot_baseline, best)
        pairs.append(shot)
    say = (lambda message: None) if args.quiet else (lambda message: print(f"report: {message}", file=sys.stderr))
    path, views = write_html_report(bench.session, board, args.out, named_pairs=pairs, query_types=args.query_types,
                                    metric=args.metric, top=args.top, passages=args.passages, progress=say,
                                    source=str(leaderboard))
    print(f"html\t{path}\t{path.stat().st_size / 1e6:.1f} MB")
    if shot is not None:
        from .report.browser import screenshots

        pair = next((p for v in views if v.name == args.screenshot_dataset for p in v.pairs
                     if (p.a, p.b) == shot), None)
        query = pair.largest_disagreement if pair else None
        if query is None:
            raise WorkbenchError(f"--screenshots: {shot[1]} and {shot[0]} score every query of "
                                 f"{args.screenshot_dataset} alike (or are not both on its leaderboard)")
        for written in screenshots(path, args.screenshots, args.screenshot_dataset, pair.anchor, query.anchor):
            print(f"screenshot\t{written}")
        print(f"drill-down\t{args.screenshot_dataset}: {pair.b} vs {pair.a}, query {query.qid} "
              f"({query.query!r}): {pair.metric} {query.values[pair.metric][0]:.4f} -> "
              f"{query.values[pair.metric][1]:.4f}")
    return 0


def _query_types_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--datasets", default=None, help="comma-separated (default: all)")
    parser.add_argument("--labels-dir", default="qrels")
    parser.add_argument("--override", default=None, help="user label file: print the resulting distribution only")


@command("query-types", "label queries qa / exploratory and write qrels/<dataset>.query-types.tsv",
         _query_types_arguments)
def run_query_types(args: argparse.Namespace) -> int:
    """Write the label files (unless ``--override``) and print each dataset's distribution."""
    from .analysis.query_types import label_distribution, load_query_types, write_dataset_labels
    from .data.datasets import DATASETS, get_dataset

    names = _split(args.datasets) if args.datasets else list(DATASETS)
    if args.override is None:
        for path in write_dataset_labels(names, args.data_dir, args.labels_dir):
            print(f"wrote {path}")
    for name in names:
        dataset = get_dataset(name, args.data_dir)
        labels = load_query_types(dataset, args.override, args.labels_dir)
        judged = labels[labels["qid"].isin(set(dataset.qrels["qid"]))]
        counts, judged_counts = label_distribution(labels), label_distribution(judged)
        print(f"{name}: {len(labels)} topics: " + ", ".join(f"{k} {v}" for k, v in counts.items())
              + f"; judged {len(judged)}: " + ", ".join(f"{k} {v}" for k, v in judged_counts.items()))
    return 0


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


@command("index", "build or reuse the Lucene index of the collection", _index_arguments)
def run_index(args: argparse.Namespace) -> int:
    from .data.collection import Collection
    from .data.datasets import resolve_data_dir
    from .first_stage.lucene import build_index

    collection = Collection(resolve_data_dir(args.data_dir) / "collection.tsv")
    built = build_index(collection, threads=args.threads or None, force=args.force)
    print(f"{built.path}\t{'built in %.1f s' % built.seconds if built.built else 'reused'}")
    return 0


@command("rerankers", "list the registered rerankers (built-in and plugins) and their options")
def run_rerankers(args: argparse.Namespace) -> int:
    from .rerankers.registry import REGISTRY

    print(REGISTRY.describe())
    return 0


@command("first-stages", "list the registered first stages (built-in and plugins) and their options")
def run_first_stages(args: argparse.Namespace) -> int:
    from .first_stage.registry import FIRST_STAGES

    print(FIRST_STAGES.describe())
    return 0


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="data/msmarco-passage-mini", help="directory to write")
    parser.add_argument("--depth", type=int, default=100, help="candidates kept per query")
    parser.add_argument("--full-collection", action="store_true", help="all 8.8M passages, not only those needed")
    parser.add_argument("--dl19-candidates", default=None, help="TREC run to use as DL19 BM25 candidates")
    parser.add_argument("--dl20-candidates", default=None, help="TREC run to use as DL20 BM25 candidates")
    parser.add_argument("--dev-candidates", default=None, help="TREC run of dev queries; writes dev600 from it")
    parser.add_argument("--force", action="store_true", help="rewrite files that are already complete")
    parser.add_argument("--quiet", action="store_true")


@command("data", "materialise the data directory from ir_datasets (needs internet)", _data_arguments)
def run_data(args: argparse.Namespace) -> int:
    from .data.datasets import DATA_ENV
    from .data.materialise import materialise

    summary = materialise(args.target, depth=args.depth, full_collection=args.full_collection,
                          dl19_candidates=args.dl19_candidates, dl20_candidates=args.dl20_candidates,
                          dev_candidates=args.dev_candidates, force=args.force, progress=not args.quiet)
    for rel, entry in summary["files"].items():
        details = ", ".join(f"{k}={v}" for k, v in entry.items()
                            if k not in ("status", "missing_examples") and v is not None)
        print(f"{rel}\t{entry['status']}\t{details}")
    for message in summary["warnings"]:
        print(f"workbench: warning: {message}", file=sys.stderr)
    print(f"data directory ready: {summary['target_dir']} (use --data-dir or {DATA_ENV}={summary['target_dir']})")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--config", required=True, help="training configuration (TOML or YAML), e.g. configs/minilm-hybrid.toml")
    parser.add_argument("--folds", default=None, help="only these folds (default: the configuration's)")
    parser.add_argument("--out", default=None, help="models directory (default: $WORKBENCH_MODELS or ./models)")
    parser.add_argument("--quiet", action="store_true")


@command("train", "fine-tune a ranker on every cross-year fold of a configuration (resumable)", _train_arguments)
def run_train(args: argparse.Namespace) -> int:
    from .train.config import TrainConfig
    from .train.run import train_config

    config = TrainConfig.from_file(args.config)
    result = train_config(config, args.data_dir, args.out, _split(args.folds) if args.folds else None,
                          progress=not args.quiet)
    for fold in result["folds"]:
        print(f"{fold['fold']}\tbest epoch {fold['best_epoch']}\tval ndcg@10 {fold['best_val_ndcg@10']:.4f}\t"
              f"{fold['seconds']} s\t{fold['pairs_per_s']} pairs/s")
    print(f"models: {result['dir']} (use finetuned:{config.name})")
    return 0


def _plot_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a trained configuration's directory (models/<name>) or one fold's")
    parser.add_argument("--out", default=None, help="PNG to write (default: <run_dir>/training.png)")


@command("plot-training", "one PNG of a training run's curves (loss, validation, learning rates, drift)",
         _plot_training_arguments)
def run_plot_training(args: argparse.Namespace) -> int:
    from .train.plot import plot_training

    print(plot_training(args.run_dir, args.out))
    return 0


def _ablation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaderboard", default="runs/leaderboard.csv")
    parser.add_argument("--systems", required=True, help="the systems compared, the baseline among them")
    parser.add_argument("--baseline", required=True, help="the system every other one was tested against")
    parser.add_argument("--out", default=None, help="also write the table as Markdown here")


@command("ablation", "per-slice table of systems against one baseline (deltas, Holm-corrected significance)",
         _ablation_arguments)
def run_ablation(args: argparse.Namespace) -> int:
    from .core.files import atomic_write
    from .report.ablation import ablation_markdown, ablation_table
    from .report.leaderboard import read_leaderboard

    table = ablation_table(read_leaderboard(args.leaderboard), _systems(args.systems), args.baseline)
    text = ablation_markdown(table, args.baseline)
    print(text)
    if args.out:
        with atomic_write(args.out) as handle:
            handle.write(text)
    return 0


def _embedding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pad-to", type=int, default=None, help="pad every text to N tokens (only mean pooling, "
                        "which counts padding, sees it)")
    parser.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the vectors")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per text (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per batch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")


def _embedding_kwargs(args: argparse.Namespace) -> dict:
    return {"normalize": not args.no_normalize, "pad_to": args.pad_to, "max_length": args.max_length,
            "batch_size": args.batch_size, "device": args.device}


def _diagnose_arguments(parser: argparse.ArgumentParser) -> None:
    from .models.dense import POOLINGS

    _add_data_dir(parser)
    parser.add_argument("--model", action="append", required=True,
                        help="hub id, local path, minilm, splade-tiny, or finetuned:<name> (the fold model that never "
                             "saw the dataset); repeat to compare models (before/after fine-tuning)")
    parser.add_argument("--pooling", nargs="+", default=list(POOLINGS), choices=POOLINGS,
                        help=f"poolings, one row each (default: {' '.join(POOLINGS)})")
    parser.add_argument("--whiten", nargs="*", default=[], choices=("center", "whiten"),
                        help="also rows post-processed by mean-centering / whitening fitted on the collection")
    parser.add_argument("--fit-sample", type=int, default=None, help="fit the whitening on N random collection "
                        "passages (default: all of them)")
    parser.add_argument("--dataset", default="dl19", help="dataset whose judged pairs are used (default: dl19)")
    parser.add_argument("--limit-queries", type=int, default=None, help="a seeded sample of N judged queries")
    parser.add_argument("--out", default=None, help="output directory (default: runs/diagnostics/<model>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _embedding_options(parser)


@command("embed-diagnose", "embedding diagnostics per pooling: similarity range, anisotropy, relevant vs "
         "non-relevant separation (gap, AUC), group separation, neighbours; JSON, Markdown and plots",
         _diagnose_arguments)
def run_embed_diagnose(args: argparse.Namespace) -> int:
    from .embeddings.report import diagnose, write_report
    from .experiment.store import safe_name

    report, embedded, judged = diagnose(args.model, args.dataset, args.pooling, args.whiten, args.data_dir,
                                        args.limit_queries, args.fit_sample, progress=not args.quiet,
                                        **_embedding_kwargs(args))
    labels = list(dict.fromkeys(row.model for row in embedded))
    out = Path(args.out) if args.out else Path("runs") / "diagnostics" / safe_name("+".join(labels))
    written = write_report(report, embedded, judged, out)
    print(report.markdown())
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def _similarity_arguments(parser: argparse.ArgumentParser) -> None:
    from .models.dense import POOLINGS

    parser.add_argument("pairs", help="TSV with a header: name, a, b (and optionally expected)")
    parser.add_argument("--model", default="minilm", help="hub id, local path, minilm or splade-tiny (default: minilm)")
    parser.add_argument("--pooling", default="masked_mean", choices=POOLINGS, help="default: masked_mean")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest |cosine - expected| that passes")
    parser.add_argument("--reference", default=None, choices=("sentence-transformers",),
                        help="compute the expected values with this implementation on the same model")
    _embedding_options(parser)


@command("similarity", "cosine of each sentence pair of a TSV file; pass/fail against expected values",
         _similarity_arguments)
def run_similarity(args: argparse.Namespace) -> int:
    from .embeddings.pairs import check_pairs, read_pairs

    table = check_pairs(read_pairs(args.pairs), args.model, args.pooling, args.tolerance, args.reference,
                        **_embedding_kwargs(args))
    checked = table[table["ok"].notna()]
    for row in table.itertuples(index=False):
        verdict = "" if row.ok is None else (f"\texpected {row.expected:.6f}\tdiff {row.difference:+.2e}\t"
                                              + ("pass" if row.ok else "FAIL"))
        print(f"{row.name}\t{row.cosine:.6f}{verdict}")
    if checked.empty:
        return 0
    failed = int((~checked["ok"].astype(bool)).sum())
    print(f"{len(checked) - failed}/{len(checked)} pairs within {args.tolerance:g} of the expected cosine "
          f"({args.model}, {args.pooling}{'' if args.pad_to is None else f', padded to {args.pad_to}'})")
    return 1 if failed else 0


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--pairs", default="6980x1000",
                        help="pairs to rerank: QxK (queries x candidates) or a number (default: 6980x1000, "
                             "MS MARCO dev-small x BM25 top-1000)")
    parser.add_argument("--reranker", required=True, help="reranker spec, e.g. cross-encoder:<path> or dense-minilm")
    parser.add_argument("--workers", default="1,8,32,128", help="worker counts, one row each (default: 1,8,32,128)")
    parser.add_argument("--device", default="cpu", help="what one worker is: cpu (one thread) or cuda (one GPU: "
                        "give --throughput unless a GPU is here)")
    parser.add_argument("--throughput", type=float, default=None,
                        help="pairs/s of one worker, given instead of measured")
    parser.add_argument("--encoder", default=None, help="reranker spec whose encoder encodes the collection "
                        "(dense-minilm, splade-tiny); adds the encoding stage")
    parser.add_argument("--passages", type=int, default=8_841_823, help="passages to encode (default: 8,841,823)")
    parser.add_argument("--encode-throughput", type=float, default=None,
                        help="passages/s of one worker, given instead of measured")
    parser.add_argument("--queries", type=int, default=6980, help="BM25 queries, top-1000 (default 6980; 0: no "
                        "BM25 stage)")
    parser.add_argument("--bm25-throughput", type=float, default=None,
                        help="queries/s of one worker on the full index, given instead of measured on the mini one")
    parser.add_argument("--price-per-hour", type=float, default=0.05, help="$ per worker-hour (default 0.05)")
    parser.add_argument("--overhead", type=float, default=None,
                        help="Ray overhead factor on compute time (default: engines.plan.RAY_OVERHEAD_FACTOR)")
    parser.add_argument("--startup-s", type=float, default=None,
                        help="Ray start-up seconds per stage (default: engines.plan.RAY_STARTUP_S)")
    parser.add_argument("--sample", type=int, default=256, help="pairs and passages timed per measurement "
                        "(default 256)")
    parser.add_argument("--json", default=None, help="also write the plan (settings, assumptions, rows) as JSON")
    parser.add_argument("--quiet", action="store_true", help="no info messages")


@command("plan", "capacity plan: measured (or given) one-worker throughput -> wall time, worker-hours, cost and "
         "data moved for N workers (reranking, collection encoding, BM25)", _plan_arguments)
def run_plan(args: argparse.Namespace) -> int:
    from .core.files import atomic_write
    from .engines.plan import capacity_plan, parse_pairs, parse_workers

    result = capacity_plan(args.reranker, parse_pairs(args.pairs), parse_workers(args.workers), device=args.device,
                           throughput=args.throughput, encoder=args.encoder, passages=args.passages,
                           encode_throughput=args.encode_throughput, queries=args.queries,
                           bm25_throughput=args.bm25_throughput, price_per_worker_hour=args.price_per_hour,
                           overhead_factor=args.overhead, startup_s=args.startup_s, sample=args.sample,
                           data_dir=args.data_dir, pairs_label=f"{parse_pairs(args.pairs):,} pairs ({args.pairs})")
    print(result.text())
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(result.to_json(), handle, indent=1, default=str)
        print(f"written: {args.json}")
    return 0


# ----------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="IR evaluation workbench for MS MARCO passage "
                                     "ranking: BM25 candidates, rerankers, ranx evaluation, leaderboard.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for entry in COMMANDS.values():
        entry.arguments(subcommands.add_parser(entry.name, help=entry.help))
    return parser


ENVIRONMENT_ERRNOS = {  # errno -> what to do about it
    errno.ENOSPC: " (disk full: free space and re-run; finished runs and cached scores are kept)",
    errno.EDQUOT: " (disk quota exceeded: free space and re-run)",
    errno.ENAMETOOLONG: " (file name too long)",
    errno.EACCES: " (permission denied)",
    errno.EROFS: " (read-only file system)",
}
SQLITE_HINT = " (if the disk is full, free space and re-run; finished runs and cached scores are kept)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    for noisy in ("faiss", "faiss.loader", "numba", "urllib3", "httpx", "jnius"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command].run(args)
    except WorkbenchError as error:
        print(f"workbench: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # faults of the machine, not bugs: one line naming the file, exit 2, outputs untouched
        # (every output is written to a temporary file and renamed, so nothing is half-written)
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"workbench: error: {where}{error.strerror or error}{ENVIRONMENT_ERRNOS[error.errno]}", file=sys.stderr)
        return 2
    except sqlite3.Error as error:
        print(f"workbench: error: score cache: {error}{SQLITE_HINT}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted; finished runs and cached scores are kept, re-run to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
