"""What a faster numeric path changes: ``workbench check-precision RERANKER``.

The reranker is run on each dataset's candidates (default: the official BM25 run, the default
experiment's candidates; its top 100, which is the top 20 on dev600) once with the exact path
(torch at fp32: what sentence-transformers computes) and once per faster path (ONNX Runtime
fp32, bf16 autocast, ONNX int8, as far as the reranker offers them). For every path and dataset
it reports the change of every headline metric (MRR@10, NDCG@5, NDCG@10), the largest
per-pair score difference, how many queries change their top-10 order, and Kendall's tau
between the exact and the fast scores of the exact top 10. A path is *safe* when, on every
dataset, no headline metric moves by more than 0.002 and at most 2% of queries change their
top-10 order: the rule a fast path must pass before ``make eval FAST=1`` may use it.

Scores go through the score cache, so a second check (or ``make eval`` afterwards) recomputes
nothing; passage vectors go through each encoder's vector cache.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError, first_line
from ..core.files import atomic_write
from ..core.registry import with_options
from ..evaluation.metrics import evaluate_run

CHECK_METRICS = ["mrr@10", "ndcg@5", "ndcg@10"]
CHECK_DATASETS = ["dl19", "dl20", "dev600"]
#: a fast path is safe when no headline metric moves more than this on any dataset ...
MAX_METRIC_CHANGE = 0.002
#: ... and at most this share of queries changes its top-10 order
MAX_TOP10_CHANGED = 0.02

#: (label, options) of every numeric path a reranker may offer; the first is the exact reference
PATHS: list[tuple[str, dict[str, str]]] = [
    ("torch fp32 (exact)", {"backend": "torch", "precision": "fp32"}),
    ("onnx fp32", {"backend": "onnx", "precision": "fp32"}),
    # the batch size backend=auto may pick besides the default: exact paths too, checked as the others
    ("torch fp32 batch 16", {"backend": "torch", "precision": "fp32", "batch_size": "16"}),
    ("onnx fp32 batch 16", {"backend": "onnx", "precision": "fp32", "batch_size": "16"}),
    ("torch bf16", {"backend": "torch", "precision": "bf16"}),
    ("onnx int8", {"backend": "onnx", "precision": "int8"}),
]


@dataclass
class PathResult:
    """One numeric path on one dataset, compared with the exact path."""

    dataset: str
    path: str
    spec: str
    n_queries: int
    metrics: dict[str, float]
    deltas: dict[str, float]
    max_score_diff: float
    top10_changed: int
    kendall_tau_mean: float
    kendall_tau_min: float
    seconds: float = 0.0

    @property
    def top10_changed_share(self) -> float:
        return self.top10_changed / self.n_queries if self.n_queries else 0.0

    def safe(self) -> bool:
        return (all(abs(d) <= MAX_METRIC_CHANGE for d in self.deltas.values())
                and self.top10_changed_share <= MAX_TOP10_CHANGED)


@dataclass
class PrecisionReport:
    """Every path on every dataset, and which paths are safe everywhere they were measured."""

    reranker: str
    candidates: str
    depth: int
    results: list[PathResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # dataset -> why it was not measured
    equivalence: Any = None  # a precision_equivalence.PrecisionEquivalence with --equivalence

    def verdicts(self) -> dict[str, bool]:
        """Path label -> safe on every measured dataset (the exact path is trivially safe)."""
        verdicts: dict[str, bool] = {}
        for result in self.results:
            verdicts[result.path] = verdicts.get(result.path, True) and result.safe()
        return verdicts

    def markdown(self) -> str:
        """The report as Markdown: one table, the rule, and the verdict per path."""
        lines = [f"# check-precision {self.reranker}", "",
                 f"Candidates: {self.candidates} (top {self.depth}; dev600's official run holds the top 20). "
                 f"Deltas are fast minus exact (torch fp32). A path is safe when on every dataset no headline "
                 f"metric moves by more than {MAX_METRIC_CHANGE} and at most {MAX_TOP10_CHANGED:.0%} of queries "
                 "change their top-10 order (Kendall tau over the exact top 10).", "",
                 "| dataset | path | n | " + " | ".join(f"{m} (Δ)" for m in CHECK_METRICS) +
                 " | max abs score diff | top-10 changed | tau mean / min | safe | s |",
                 "|---|---|---|" + "---|" * len(CHECK_METRICS) + "---|---|---|---|---|"]
        for r in self.results:
            cells = [f"{r.metrics[m]:.4f} ({r.deltas[m]:+.4f})" for m in CHECK_METRICS]
            lines.append(f"| {r.dataset} | {r.path} | {r.n_queries} | " + " | ".join(cells) +
                         f" | {r.max_score_diff:.2e} | {r.top10_changed} ({r.top10_changed_share:.1%}) | "
                         f"{r.kendall_tau_mean:.4f} / {r.kendall_tau_min:.4f} | {'yes' if r.safe() else 'no'} | "
                         f"{r.seconds:.0f} |")
        lines.append("")
        for dataset, why in self.skipped.items():
            lines.append(f"- {dataset} not measured: {why}")
        for path, safe in self.verdicts().items():
            lines.append(f"- **{path}**: safe on every measured dataset" if safe
                         else f"- **{path}**: not safe (fails the rule on at least one dataset)")
        if self.equivalence is not None:
            lines += self.equivalence.markdown_lines()
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"reranker": self.reranker, "candidates": self.candidates, "depth": self.depth,
                "rule": {"max_metric_change": MAX_METRIC_CHANGE, "max_top10_changed": MAX_TOP10_CHANGED},
                "results": [{**asdict(r), "safe": r.safe()} for r in self.results], "skipped": self.skipped,
                "verdicts": self.verdicts(),
                **({"equivalence": self.equivalence.to_json()} if self.equivalence is not None else {})}


def offered_paths(spec: str) -> list[tuple[str, dict[str, str]]]:
    """The paths of :data:`PATHS` the reranker ``spec`` names accepts (by its declared options)."""
    from ..rerankers.registry import REGISTRY

    entry, _ = REGISTRY.parse(spec)
    declared = {option.name: option for option in entry.options}
    if "precision" not in declared:
        raise WorkbenchError(f"reranker {entry.name!r} has no precision option: nothing to check")
    has_backend = "backend" in declared and "onnx" in tuple(declared["backend"].choices or ())
    offered = []
    for label, options in PATHS:
        if (options["backend"] == "onnx" and not has_backend) or ("batch_size" in options and
                                                                  "batch_size" not in declared):
            continue
        offered.append((label, options if has_backend else {key: value for key, value in options.items()
                                                            if key != "backend"}))
    return offered


def top10_agreement(exact: pd.DataFrame, fast: pd.DataFrame) -> tuple[int, list[float]]:
    """(queries whose ordered top-10 differs, Kendall tau per query between the exact and the
    fast scores of the exact top 10)."""
    from scipy.stats import kendalltau

    changed, taus = 0, []
    fast_scores = fast.set_index(["qid", "docno"])["score"]
    fast_by_qid = {qid: group for qid, group in fast.groupby("qid", sort=False)}
    for qid, group in exact.groupby("qid", sort=False):
        top = group.nsmallest(10, "rank")
        other = fast_by_qid.get(qid)
        if other is None or list(other.nsmallest(10, "rank")["docno"]) != list(top["docno"]):
            changed += 1
        if len(top) >= 2:
            mine = [fast_scores.get((qid, d), np.nan) for d in top["docno"]]
            tau = kendalltau(top["score"].to_numpy(), np.asarray(mine)).statistic
            taus.append(1.0 if np.isnan(tau) else float(tau))
    return changed, taus


def check_precision(session: Any, spec: str, datasets: Sequence[str] = CHECK_DATASETS,
                    candidates: str = "official-bm25", depth: int | None = None,
                    paths: Sequence[str] | None = None, equivalence: Any = None) -> PrecisionReport:
    """Score ``spec`` on each dataset with the exact path and each faster one it offers (or the
    ``paths`` labels named) and compare them (see the module docstring); with ``equivalence``
    (``--equivalence`` specs: ``0.01``, ``ndcg@10=0.01``) also a paired TOST of each fast path."""
    from ..rerankers.rerank import rerank_run
    from .precision_equivalence import precision_equivalence

    depth = depth or session.rerank_depth
    offered = offered_paths(spec)
    if paths:
        unknown = set(paths) - {label for label, _ in offered}
        if unknown:
            raise WorkbenchError(f"unknown path(s) {sorted(unknown)} for {spec!r}; offered: "
                                 f"{', '.join(label for label, _ in offered)}")
        offered = [offered[0]] + [p for p in offered[1:] if p[0] in paths]
    report = PrecisionReport(spec, candidates, depth, equivalence=precision_equivalence(equivalence))
    for dataset_name in datasets:
        dataset = session.dataset(dataset_name)
        candidate_run = session.produce(candidates, dataset_name).run
        reference: pd.DataFrame | None = None
        reference_eval = None
        reference_key = None
        for label, options in offered:
            path_spec = with_options(spec, options)
            started = time.perf_counter()
            try:
                reranker = session.reranker(path_spec, dataset)
            except WorkbenchError as error:
                if reference is None:  # e.g. a fine-tuned model that trained on this dataset's queries
                    report.skipped[dataset_name] = first_line(error)
                    break
                raise
            cache = session.score_cache()
            if reference_key is None:
                reference_key = reranker.fingerprint
            elif reranker.fingerprint == reference_key or "batch_size" in options:
                # a batch size is not part of a key (exact paths agree within 1e-6): such a path would
                # read back the scores and vectors of the same path at another batch size, so it
                # computes every score and vector afresh
                cache = None
                if hasattr(reranker, "cache_passages"):
                    reranker.cache_passages = False
            run, _ = rerank_run(candidate_run, dataset.judged_topics, session.collection(dataset), reranker,
                                depth=depth, cache=cache, progress=session.progress,
                                desc=f"{dataset_name} {label}")
            seconds = time.perf_counter() - started
            evaluation = evaluate_run(run, dataset.qrels, dataset.relevance_level, CHECK_METRICS)
            if reference is None:
                reference, reference_eval = run, evaluation
            if report.equivalence is not None:
                report.equivalence.record(dataset_name, label, run, dataset, evaluation)
            merged = reference.merge(run, on=["qid", "docno"], suffixes=("_exact", "_fast"))
            changed, taus = top10_agreement(reference, run)
            report.results.append(PathResult(
                dataset=dataset_name, path=label, spec=path_spec, n_queries=evaluation.n_queries,
                metrics={m: float(evaluation.means[m]) for m in CHECK_METRICS},
                deltas={m: float(evaluation.means[m] - reference_eval.means[m]) for m in CHECK_METRICS},
                max_score_diff=float((merged["score_exact"] - merged["score_fast"]).abs().max()),
                top10_changed=changed, kendall_tau_mean=float(np.mean(taus)) if taus else 1.0,
                kendall_tau_min=float(np.min(taus)) if taus else 1.0, seconds=round(seconds, 1)))
    if not report.results:
        raise WorkbenchError(f"nothing measured for {spec!r}: " + "; ".join(report.skipped.values()))
    return report


def write_precision_report(report: PrecisionReport, out: str | Path) -> tuple[Path, Path]:
    """Write ``<out>.md`` and ``<out>.json`` atomically; returns both paths."""
    out = Path(out)
    markdown, data = out.with_suffix(".md"), out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(markdown) as handle:
        handle.write(report.markdown())
    with atomic_write(data) as handle:
        json.dump(report.to_json(), handle, indent=1, sort_keys=True)
    return markdown, data
