"""The topics, qrels and candidate-run files :func:`~.materialise.materialise` writes, each from
an ir_datasets dataset (or, for candidates, a TREC run the user gives).

Each writer takes the :class:`~.materialise_plan.Plan` (progress bars), writes its file
atomically and returns the counts recorded in the manifest and the summary.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from .formats import collapse
from .materialise_plan import Plan, fetching_from_irds
from .trec import read_run, sort_run, truncate_run, write_run


def materialise_topics(plan: Plan, dataset: Any, label: str, path: Path) -> dict[str, Any]:
    count = 0
    with fetching_from_irds(f"the {label} queries"), atomic_write(path) as handle:
        for query in plan.bar(dataset.queries_iter(), f"{label} queries", unit="query"):
            text = collapse(query.text)
            if not text:  # read_topics rejects empty queries; say which one instead of failing later
                raise WorkbenchError(f"ir_datasets gave an empty query for qid {query.query_id!r} ({label})")
            handle.write(f"{query.query_id}\t{text}\n")
            count += 1
    if count == 0:
        path.unlink()
        raise WorkbenchError(f"ir_datasets gave no queries for {label}")
    return {"queries": count}


def write_qrels(plan: Plan, dataset: Any, label: str, path: Path) -> dict[str, Any]:
    count, qids = 0, set()
    with fetching_from_irds(f"the {label} qrels"), atomic_write(path) as handle:
        for qrel in plan.bar(dataset.qrels_iter(), f"{label} qrels", unit="qrel"):
            iteration = getattr(qrel, "iteration", "0") or "0"
            handle.write(f"{qrel.query_id} {iteration} {qrel.doc_id} {int(qrel.relevance)}\n")
            count += 1
            qids.add(qrel.query_id)
    if count == 0:
        path.unlink()
        raise WorkbenchError(f"ir_datasets gave no qrels for {label}")
    return {"judgments": count, "judged_queries": len(qids)}


def run_info(run: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    per_query = run.groupby("qid").size()
    return {"queries": int(per_query.size), "candidates": int(len(run)),
            "max_per_query": int(per_query.max()), **extra}


def write_scoreddocs_run(plan: Plan, dataset: Any, label: str, depth: int, path: Path) -> dict[str, Any]:
    """Top-``depth`` of the scoreddocs by score, or the whole pool when it has no scores."""
    qids, docnos, scores = [], [], []
    with fetching_from_irds(f"the {label} candidates (scoreddocs)"):
        for doc in plan.bar(dataset.scoreddocs_iter(), f"{label} candidates", unit="doc"):
            qids.append(doc.query_id)
            docnos.append(doc.doc_id)
            scores.append(float(doc.score))
    if not qids:
        raise WorkbenchError(f"ir_datasets gave no scoreddocs for {label}")
    run = pd.DataFrame({"qid": qids, "docno": docnos, "score": scores})
    run = run.drop_duplicates(["qid", "docno"], keep="first")
    # The official MS MARCO / TREC DL pools carry no scores (all 0, random order): any
    # top-depth cut of them would be arbitrary, so keep the whole pool in that case.
    scored = bool((run.groupby("qid")["score"].nunique() > 1).any())
    ranked = sort_run(run)
    if scored:
        ranked = truncate_run(ranked, depth)
    write_run(ranked, path, tag="ir_datasets-scoreddocs")
    return run_info(ranked, source="scoreddocs", scored=scored, depth=depth if scored else None)


def write_given_run(candidates: Path, topic_qids: set[str], label: str, depth: int, path: Path) -> dict[str, Any]:
    """A user-supplied TREC run restricted to the dataset's topics and cut to ``depth``."""
    run = read_run(candidates)
    run = run[run["qid"].isin(topic_qids)]
    if run.empty:
        raise WorkbenchError(f"the {label} candidate run has no query of the {label} topics", candidates)
    ranked = truncate_run(sort_run(run), depth)
    write_run(ranked, path, tag=f"{label}-candidates")
    return run_info(ranked, source=str(candidates), scored=True, depth=depth)
