"""Subcommands about the components themselves: index (the Lucene index), rerankers, first-stages."""
from __future__ import annotations

import argparse

from .common import _add_common, command


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--dataset", default="dl19", help="whose collection (default dl19: the mini collection "
                        "every built-in dataset shares)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


@command("index", "build or reuse the Lucene index of a dataset's collection", _index_arguments)
def run_index(args: argparse.Namespace) -> int:
    from ..data.datasets import get_dataset
    from ..first_stage.lucene import build_index

    collection = get_dataset(args.dataset, args.data_dir).collection()
    built = build_index(collection, threads=args.threads or None, force=args.force)
    print(f"{built.path}\t{'built in %.1f s' % built.seconds if built.built else 'reused'}")
    return 0


@command("rerankers", "list the registered rerankers (built-in and plugins) and their options")
def run_rerankers(args: argparse.Namespace) -> int:
    from ..rerankers.registry import REGISTRY

    print(REGISTRY.describe())
    return 0


@command("first-stages", "list the registered first stages (built-in and plugins) and their options")
def run_first_stages(args: argparse.Namespace) -> int:
    from ..first_stage.registry import FIRST_STAGES

    print(FIRST_STAGES.describe())
    return 0

