"""Subcommand that writes the leaderboard as a paper's table: export (LaTeX or Markdown)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import WorkbenchError
from .common import _split, _systems, command


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="latex", help="latex (booktabs) or markdown (default latex)")
    parser.add_argument("--leaderboard", default="runs/leaderboard.csv",
                        help="the CSV to read (default runs/leaderboard.csv)")
    parser.add_argument("--datasets", default=None,
                        help="column groups in this order (default: every dataset, pooled ones last)")
    parser.add_argument("--metrics", default=None,
                        help="columns of each dataset (default: its headline metrics, e.g. mrr@10, ndcg@5)")
    parser.add_argument("--systems", default=None, help="rows in this order (default: every system)")
    parser.add_argument("--slice", default="all", help="query-type slice (default all)")
    parser.add_argument("--digits", default=None, metavar="SPEC",
                        help="decimals: 3 (every metric), ndcg@10=3,mrr@10=2, or both (default 4)")
    parser.add_argument("--ci", action="store_true", help="each value's 95%% confidence interval")
    parser.add_argument("--n", action="store_true", help="each dataset's number of queries")
    parser.add_argument("--caption", default=None, help="caption text (LaTeX is written as given)")
    parser.add_argument("--label", default=None, help="LaTeX \\label of the table")
    parser.add_argument("--standalone", action="store_true",
                        help="LaTeX: a whole document (article + booktabs) that pdflatex compiles as is")
    parser.add_argument("--out", default=None, help="write here (atomically; default: standard output)")


@command("export", "the leaderboard as a paper's table (LaTeX or Markdown): datasets x metrics, the CSV's "
         "significance marks per baseline, best in bold", _export_arguments)
def run_export(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write
    from ..report.export import export_table, parse_digits
    from ..report.leaderboard import read_leaderboard

    digits = parse_digits(args.digits)  # a bad spec fails before the CSV is read
    if not Path(args.leaderboard).is_file():
        raise WorkbenchError(f"no leaderboard at {args.leaderboard} "
                             "(run `workbench eval` first, or pass --leaderboard)")
    text = export_table(read_leaderboard(args.leaderboard), args.format,
                        datasets=_split(args.datasets) if args.datasets else None,
                        metrics=_split(args.metrics) if args.metrics else None,
                        systems=_systems(args.systems) if args.systems else None,
                        slice=args.slice, digits=digits or None, ci=args.ci, n=args.n, caption=args.caption,
                        label=args.label, standalone=args.standalone)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    with atomic_write(args.out) as handle:
        handle.write(text)
    print(f"{args.format}\t{args.out}", file=sys.stderr)
    return 0
