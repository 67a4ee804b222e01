"""The plan subcommand: a capacity plan (wall time, worker-hours, cost) for N workers, or with
``--train CONFIG`` the cost of a training configuration (lists, steps, pairs, wall time)."""
from __future__ import annotations

import argparse
import json

from .common import _add_data_dir, command


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--pairs", default="6980x1000",
                        help="pairs to rerank: QxK (queries x candidates) or a number (default: 6980x1000, "
                             "MS MARCO dev-small x BM25 top-1000)")
    parser.add_argument("--reranker", default=None, help="reranker spec, e.g. cross-encoder:<path> or dense-minilm "
                        "(required unless --train)")
    parser.add_argument("--train", default=None, metavar="CONFIG",
                        help="plan a training configuration instead: its lists, steps, labelled pairs and wall time "
                             "(time per step measured here with the real trainer, or from --throughput in labelled "
                             "training pairs/s, e.g. a GPU's)")
    parser.add_argument("--folds", default=None, help="--train: only these folds (default: the configuration's)")
    parser.add_argument("--steps", type=int, default=3, help="--train: training steps timed after one warm-up "
                        "(default 3)")
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
         "data moved for N workers (reranking, collection encoding, BM25); --train CONFIG: a training run's lists, "
         "steps, pairs and wall time", _plan_arguments)
def run_plan(args: argparse.Namespace) -> int:
    from ..core.errors import WorkbenchError
    from ..core.files import atomic_write
    from ..engines.plan import capacity_plan, parse_pairs, parse_workers

    if args.train:
        from ..train.config import TrainConfig
        from ..train.cost import training_plan

        result = training_plan(TrainConfig.from_file(args.train), args.data_dir,
                               [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None,
                               throughput=args.throughput, steps=args.steps)
    elif not args.reranker:
        raise WorkbenchError("plan needs --reranker SPEC (a reranking plan) or --train CONFIG (a training plan)")
    else:
        result = capacity_plan(args.reranker, parse_pairs(args.pairs), parse_workers(args.workers),
                               device=args.device, throughput=args.throughput, encoder=args.encoder,
                               passages=args.passages, encode_throughput=args.encode_throughput, queries=args.queries,
                               bm25_throughput=args.bm25_throughput, price_per_worker_hour=args.price_per_hour,
                               overhead_factor=args.overhead, startup_s=args.startup_s, sample=args.sample,
                               data_dir=args.data_dir,
                               pairs_label=f"{parse_pairs(args.pairs):,} pairs ({args.pairs})")
    print(result.text())
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(result.to_json(), handle, indent=1, default=str)
        print(f"written: {args.json}")
    return 0

