"""Subcommands that describe a leaderboard and its queries: report, query-types."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import WorkbenchError
from .common import _add_data_dir, _split, _systems, command


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
    from ..report.leaderboard import read_leaderboard
    from ..report.summary import write_report

    board = read_leaderboard(args.leaderboard)
    if args.datasets and not board.empty:
        board = board[board["dataset"].isin(_split(args.datasets))]
    if args.systems and not board.empty:
        wanted = set(_systems(args.systems)) | {system for pair in args.pair for system in pair}
        board = board[board["system"].isin(wanted)]
    from ..experiment import Workbench
    from ..report.inspection import dataset_headlines

    leaderboard = Path(args.leaderboard)
    bench = Workbench(data_dir=args.data_dir, runs_dir=leaderboard.parent, leaderboard=leaderboard, progress=False)
    headlines = dataset_headlines(bench.session, board) if not board.empty else {}
    for kind, path in write_report(board, args.out, headlines=headlines).items():
        print(f"{kind}\t{path}")
    if args.no_html:
        return 0
    from ..report.html import write_html_report

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
                                    source=str(leaderboard), depth_dir=leaderboard.parent / "depth")
    print(f"html\t{path}\t{path.stat().st_size / 1e6:.1f} MB")
    if shot is not None:
        from ..report.browser import screenshots

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
    parser.add_argument("--datasets", default=None, help="comma-separated, any dataset name (default: the built-in ones)")
    parser.add_argument("--labels-dir", default="qrels")
    parser.add_argument("--override", default=None, help="user label file: print the resulting distribution only")


@command("query-types", "label queries qa / exploratory and write qrels/<dataset>.query-types.tsv",
         _query_types_arguments)
def run_query_types(args: argparse.Namespace) -> int:
    """Write the label files (unless ``--override``) and print each dataset's distribution."""
    from ..analysis.query_types import label_distribution, load_query_types, slice_reliability, write_dataset_labels
    from ..data.datasets import DATASETS, get_dataset

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
        if note := slice_reliability(labels).note():
            print(f"warning: {name}: {note}")
    return 0

