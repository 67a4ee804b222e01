"""The data subcommand: materialise the data directory from ir_datasets."""
from __future__ import annotations

import argparse
import sys

from .common import command


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
    from ..data.datasets import DATA_ENV
    from ..data.materialise import materialise

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

