"""Command line: a thin layer over the library API, one small function per subcommand.

    workbench eval          run systems on datasets and print the leaderboard (the main job)
    workbench retrieve      BM25 candidates over the Lucene index of the collection
    workbench rerank        rerank a candidate run with a registered reranker
    workbench evaluate      evaluate any TREC run on a dataset
    workbench compare       per-query gains and losses of one system against another
    workbench leaderboard   print the leaderboard
    workbench report        sliced leaderboard CSV, Markdown summary, slice plot, HTML report with drill-downs
    workbench export        the leaderboard as a paper's table (LaTeX or Markdown)
    workbench query-types   label queries qa / exploratory (rules with reasons)
    workbench index         build (or reuse) the Lucene index
    workbench rerankers     list the registered rerankers and their options
    workbench first-stages  list the registered first stages and their options
    workbench data          materialise the data directory from ir_datasets (needs internet)
    workbench dataset       declare a local test collection (dataset add), list the datasets, show one
    workbench train         fine-tune a ranker from a configuration file, every cross-year fold
    workbench plot-training one PNG of a training run's curves
    workbench ablation      systems against one baseline per slice (the loss ablation table)
    workbench embed-diagnose embedding diagnostics per pooling (anisotropy, separation, plots)
    workbench similarity    cosine of sentence pairs from a TSV, pass/fail against expected values

Every subcommand is a :class:`Command` in :data:`COMMANDS`: its arguments and its handler. The
subcommands live in one module per group (:mod:`.experiment`, :mod:`.report`, :mod:`.components`,
:mod:`.data`, :mod:`.datasets`, :mod:`.training`, :mod:`.scale`), the registry and the shared argument helpers in
:mod:`.common`; importing this package registers them all, in the order ``--help`` lists them.
A :class:`~workbench.core.errors.WorkbenchError` is printed as one line (exit status 2).
"""
from __future__ import annotations

import argparse
import errno
import logging
import sqlite3
import sys

from ..core.errors import WorkbenchError
from .common import COMMANDS, Command, command, use_dataset_files

# Importing a group registers its subcommands: the order of these imports is the order of ``--help``.
from .experiment import (run_check_precision, run_compare, run_eval, run_evaluate, run_leaderboard,
                         run_rerank, run_retrieve)
from .report import run_query_types, run_report
from .components import run_first_stages, run_index, run_rerankers
from .data import run_data
from .datasets import run_dataset
from .training import (run_ablate, run_ablation, run_embed_diagnose, run_plot_training, run_similarity,
                       run_train)
from .scale import run_plan
from .depth import run_depth  # noqa: F401 (registers `workbench depth`)
from .export import run_export  # noqa: F401 (registers `workbench export`)

__all__ = [
    "COMMANDS", "Command", "ENVIRONMENT_ERRNOS", "SQLITE_HINT", "build_parser", "command", "main",
    "run_ablate", "run_ablation", "run_check_precision", "run_compare", "run_data", "run_dataset", "run_embed_diagnose", "run_eval",
    "run_evaluate", "run_first_stages", "run_index", "run_leaderboard", "run_plan", "run_plot_training",
    "run_query_types", "run_rerank", "run_rerankers", "run_report", "run_retrieve", "run_similarity", "run_train",
]


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
        use_dataset_files(args)
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
