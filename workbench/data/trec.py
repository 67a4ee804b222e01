"""TREC file formats: runs, qrels and topics, read strictly and written atomically.

The in-memory data model follows PyTerrier's fixed column names:

* a **run** is a DataFrame with columns ``qid, docno, score, rank``
  (``qid``/``docno`` strings, ``score`` float, ``rank`` int starting at 1);
* **qrels** are a DataFrame with columns ``qid, docno, label`` (``label`` int);
* **topics** are a DataFrame with columns ``qid, query``.

Readers reject malformed input with a :class:`~workbench.core.errors.WorkbenchError`
naming the file and line, instead of a traceback from deep inside pandas or ranx.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, text_lines

RUN_COLUMNS = ["qid", "docno", "score", "rank"]
QRELS_COLUMNS = ["qid", "docno", "label"]
TOPICS_COLUMNS = ["qid", "query"]


def read_run(path: str | Path) -> pd.DataFrame:
    """Read a 6-column TREC run ``qid Q0 docno rank score tag``; ranks are recomputed from scores."""
    path = Path(path)
    qids, docnos, scores = [], [], []
    seen: dict[tuple[str, str], int] = {}
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise WorkbenchError(
                f"malformed TREC run line: expected 6 fields 'qid Q0 docno rank score tag', got {len(fields)}",
                path, number)
        qid, _, docno, rank, score, _ = fields
        try:
            int(rank)
        except ValueError:
            raise WorkbenchError(f"malformed TREC run line: rank {rank!r} is not an integer", path, number) from None
        try:
            value = float(score)
        except ValueError:
            raise WorkbenchError(f"malformed TREC run line: score {score!r} is not a number", path, number) from None
        if not np.isfinite(value):
            raise WorkbenchError(f"malformed TREC run line: score {score!r} is not finite", path, number)
        key = (qid, docno)
        if key in seen:
            raise WorkbenchError(
                f"duplicate document {docno!r} for query {qid!r} (first on line {seen[key]})", path, number)
        seen[key] = number
        qids.append(qid)
        docnos.append(docno)
        scores.append(value)
    if not qids:
        raise WorkbenchError("run is empty: no TREC lines found", path)
    return sort_run(pd.DataFrame({"qid": qids, "docno": docnos, "score": scores}))


def sort_run(run: pd.DataFrame) -> pd.DataFrame:
    """Order a run as trec_eval ranks it and assign ranks 1..n per query.

    trec_eval orders a query's documents by score descending and breaks ties by docno
    *descending* (its ``qsort`` comparator); the written rank column, candidate depth cuts
    and every metric follow the same order, so tied scores evaluate as in trec_eval."""
    run = run[["qid", "docno", "score"]].copy()
    run["qid"] = run["qid"].astype(str).astype(object)
    run["docno"] = run["docno"].astype(str).astype(object)
    run["score"] = run["score"].astype(float)
    run = run.sort_values(["qid", "score", "docno"], ascending=[True, False, False], kind="mergesort")
    run["rank"] = run.groupby("qid", sort=False).cumcount() + 1
    return run.reset_index(drop=True)


def truncate_run(run: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Keep the top ``depth`` documents of each query."""
    return run[run["rank"] <= depth].reset_index(drop=True)


def write_run(run: pd.DataFrame, path: str | Path, tag: str) -> Path:
    """Write a run in 6-column TREC format, atomically, with deterministic ordering and ranks."""
    path = Path(path)
    if run.empty:
        raise WorkbenchError("refusing to write an empty run", path)
    ordered = sort_run(run)
    tag = "".join(tag.split()) or "workbench"
    with atomic_write(path) as handle:
        for qid, docno, score, rank in ordered[RUN_COLUMNS].itertuples(index=False):
            handle.write(f"{qid} Q0 {docno} {rank} {score:.6f} {tag}\n")
    return path


def read_qrels(path: str | Path) -> pd.DataFrame:
    """Read TREC qrels ``qid iteration docno label`` (4 whitespace-separated columns, integer labels)."""
    path = Path(path)
    qids, docnos, labels = [], [], []
    seen: dict[tuple[str, str], int] = {}
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise WorkbenchError(
                f"malformed qrels line: expected 4 fields 'qid iteration docno label', got {len(fields)}",
                path, number)
        qid, _, docno, label = fields
        try:
            grade = int(label)
        except ValueError:
            raise WorkbenchError(f"malformed qrels line: label {label!r} is not an integer", path, number) from None
        key = (qid, docno)
        if key in seen:
            raise WorkbenchError(
                f"duplicate judgment for document {docno!r} of query {qid!r} (first on line {seen[key]})",
                path, number)
        seen[key] = number
        qids.append(qid)
        docnos.append(docno)
        labels.append(grade)
    if not qids:
        raise WorkbenchError("qrels file is empty", path)
    return pd.DataFrame({"qid": pd.Series(qids, dtype=object), "docno": pd.Series(docnos, dtype=object),
                         "label": labels})


def read_topics(path: str | Path) -> pd.DataFrame:
    """Read topics ``qid<TAB>query`` (CRLF tolerated); empty queries and duplicate ids are errors."""
    path = Path(path)
    qids, queries = [], []
    seen: dict[str, int] = {}
    for number, line in text_lines(path):
        qid, sep, query = line.partition("\t")
        qid, query = qid.strip(), " ".join(query.split())
        if not sep:
            raise WorkbenchError("malformed topics line: expected 'qid<TAB>query'", path, number)
        if not query:
            raise WorkbenchError(f"empty query for qid {qid!r}", path, number)
        if qid in seen:
            raise WorkbenchError(f"duplicate query id {qid!r} (first on line {seen[qid]})", path, number)
        seen[qid] = number
        qids.append(qid)
        queries.append(query)
    if not qids:
        raise WorkbenchError("topics file is empty", path)
    return pd.DataFrame({"qid": pd.Series(qids, dtype=object), "query": pd.Series(queries, dtype=object)})
