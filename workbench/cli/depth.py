"""The depth subcommand: one reranked system at several reranking depths, each depth against the
deepest (metrics with CIs, corrected tests, equivalence), with the pairs scored and the time per
query (:mod:`workbench.experiment.depth`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import _add_common, _add_engine, _split, _workbench, command


def _depth_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--system", required=True, help="a reranked system <candidates>+<reranker> "
                        "(e.g. official-bm25+dense-minilm)")
    parser.add_argument("--datasets", default="dl19,dl20", help="comma-separated dataset names (default: dl19,dl20)")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=D1,D2",
                        help="also over the union of these datasets' judged queries (e.g. dl19+dl20=dl19,dl20); "
                             "repeatable")
    parser.add_argument("--depths", default="5,10,20,50,100",
                        help="rerank depths k, comma-separated positive integers (default: 5,10,20,50,100); "
                             "the deepest is produced first and the others read its cached scores")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics (default: the datasets' headline "
                        "metrics and ndcg@10)")
    parser.add_argument("--equivalence", default=None, metavar="[METRIC=]MARGIN",
                        help="also test each depth for equivalence with the deepest within ±MARGIN (TOST), on "
                             "METRIC (default ndcg@10), e.g. 0.01 or ndcg@10=0.01")
    parser.add_argument("--correction", default="holm", choices=["holm", "bonferroni", "bh", "none"],
                        help="multiple-testing correction over the shallower depths, one family per dataset and "
                             "metric (default: holm)")
    parser.add_argument("--out", default=None, help="where <system>/depth.{csv,md,png} go (default: <runs-dir>/depth)")
    parser.add_argument("--device", default="cpu", help="device for neural models (cpu, cuda, auto)")
    parser.add_argument("--threads", type=int, default=0, help="indexing/search threads (default: all cores)")
    _add_engine(parser)


@command("depth", "rerank the top k of a system's candidates for several k: metrics with CIs against the deepest, "
         "equivalence, pairs scored and time per query, table and plot", _depth_arguments)
def run_depth(args: argparse.Namespace) -> int:
    from ..evaluation.equivalence import parse_equivalence
    from ..experiment.depth import DEPTH_METRIC, depth_analysis
    from ..experiment.store import safe_name
    from .experiment import _pools

    metrics = None
    if args.metrics:
        from ..core.measures import check_metrics, split_metrics

        metrics = check_metrics(split_metrics(args.metrics))
    spec = parse_equivalence(args.equivalence) if args.equivalence else None
    bench = _workbench(args)
    report = depth_analysis(bench.session, args.system, _split(args.datasets), depths=_split(args.depths),
                            pools=_pools(args.pool), metrics=metrics,
                            equivalence_margin=spec.margin if spec else None,
                            equivalence_metric=spec.metric_or(DEPTH_METRIC) if spec else DEPTH_METRIC,
                            correction=args.correction)
    out = Path(args.out) if args.out else Path(args.runs_dir) / "depth"
    paths = report.write(out / safe_name(args.system))
    print(paths["depth.md"].read_text(encoding="utf-8"))
    for run in report.runs:
        state = "reused" if run.stored.reused else "computed"
        print(f"{run.dataset}\tk={run.depth}\t{state}\tpairs {run.pairs}\tscored {run.pairs_scored}\t"
              f"cache hits {run.cache_hits}\t{run.seconds:.1f} s\t{run.stored.path}")
    for name, path in paths.items():
        print(f"written\t{path}")
    return 0
