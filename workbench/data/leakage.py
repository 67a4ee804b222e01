"""The leakage guard: a trained model is never evaluated on queries it saw in training.

Training writes the ids and texts of every training and validation query into the model
directory (``workbench-training.json``); before such a model reranks a dataset, the dataset's
topics are checked against them by id and by normalised text (the same question can carry
another id in another collection), and any overlap is one clear error.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from ..core.errors import WorkbenchError
from .datasets import Dataset

TRAINING_QUERIES_FILE = "workbench-training.json"


def normalise_query_text(text: str) -> str:
    """Lowercase, punctuation dropped, whitespace collapsed: how query texts are compared."""
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def write_training_queries(directory: str | Path, queries: Iterable[tuple[str, str, str]],
                           extra: dict[str, Any] | None = None) -> Path:
    """Record the ``(dataset, qid, text)`` of every query a model was trained or validated on."""
    path = Path(directory) / TRAINING_QUERIES_FILE
    rows = [{"dataset": dataset, "qid": str(qid), "query": text} for dataset, qid, text in queries]
    path.write_text(json.dumps({**(extra or {}), "queries": rows}, indent=1, sort_keys=True), encoding="utf-8")
    return path


def read_training_queries(directory: str | Path) -> list[dict[str, str]] | None:
    """The recorded training queries of a model directory (None when it was not trained here)."""
    path = Path(directory) / TRAINING_QUERIES_FILE
    if not path.is_file():
        return None
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["queries"])
    except (ValueError, KeyError, TypeError):
        raise WorkbenchError("unreadable training-query record", path) from None


def check_no_leakage(directory: str | Path, dataset: Dataset) -> None:
    """Raise if the model in ``directory`` was trained on any query of ``dataset`` (by id or text)."""
    seen = read_training_queries(directory)
    if not seen:
        return
    by_qid = {row["qid"]: row for row in seen}
    by_text = {normalise_query_text(row["query"]): row for row in seen}
    clashes = []
    for qid, query in dataset.topics[["qid", "query"]].itertuples(index=False):
        row = by_qid.get(str(qid)) or by_text.get(normalise_query_text(query))
        if row is not None:
            clashes.append((qid, query, row))
    if clashes:
        qid, query, row = clashes[0]
        raise WorkbenchError(f"leakage: this model was trained on {len(clashes)} queries of dataset {dataset.name!r} "
                             f"(e.g. qid {qid} {query!r}, seen as {row['dataset']} qid {row['qid']}); evaluate it "
                             "on a dataset it never saw (finetuned:<name> picks the right fold)", directory)
