"""What the subcommands share: the registry of subcommands (:func:`command`), argument helpers,
and the :class:`~workbench.experiment.Workbench` (and engine) that the arguments name.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import WorkbenchError


def _systems(value: str) -> list[str]:
    """A ``--systems`` value: commas inside a system's option list stay with it (see split_systems)."""
    from ..experiment.systems import split_systems

    return split_systems(value)


def _split(value: str) -> list[str]:
    return [item for item in (part.strip() for part in value.replace(",", " ").split()) if item]


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="data directory of the built-in datasets (default: $WORKBENCH_DATA, "
                             "./data/msmarco-passage-mini, ../shared/data/msmarco-passage-mini)")
    parser.add_argument("--dataset-file", action="append", default=[], metavar="FILE",
                        help="a dataset declared in a TOML file (repeatable; every ./datasets/*.toml is read too)")


def use_dataset_files(args: argparse.Namespace) -> None:
    """Declare the ``--dataset-file`` datasets for this process (and the workers it starts)."""
    if getattr(args, "dataset_file", None):
        from ..data.datasets import declare_dataset_files as declare

        declare(args.dataset_file)


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
    from ..experiment import Workbench

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
    from ..engines.ray import RayEngine

    return RayEngine(address=args.ray_address, workers=args.ray_workers, batch_size=args.ray_batch_size,
                     progress=not args.quiet)


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

