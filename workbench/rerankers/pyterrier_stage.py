"""A PyTerrier transformer as a reranker: it reads each query's whole candidate list as PyTerrier
does (``qid, query, docno, text, score, rank``) and returns its scores.

Registered by name (``Workbench.register``, :func:`workbench.pyterrier.register`) or named by a
plugin's entry point whose object is a transformer (the registry adapts it here)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..core.pyterrier import check_output, is_transformer, transformer_identity
from .protocol import Reranker


class PyTerrierReranker(Reranker):
    """A PyTerrier transformer that reranks: it reads each query's whole candidate list as
    PyTerrier does (``qid, query, docno, text, score, rank``) and returns scores for it."""

    kind = "pyterrier"
    scores_whole_lists = True  # a PyTerrier stage may rank a list as a whole: cached per list

    def __init__(self, name: str, transformer: Any):
        self.name = name
        self.transformer = transformer
        self.identity = transformer_identity(transformer)
        self.calls = 0

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores of the rows of ``frame`` (PyTerrier columns, the candidates' ranks from 0); a
        document the transformer drops (a rank cutoff) is placed after those it returned, in
        candidate order."""
        self.calls += 1
        out = check_output(self.transformer.transform(frame), self.name, ("qid", "docno", "score"))
        returned = dict(zip(zip(out["qid"].astype(str), out["docno"].astype(str)), out["score"].astype(float)))
        keys = list(zip(frame["qid"].astype(str), frame["docno"].astype(str)))
        scores = np.array([returned.get(key, np.nan) for key in keys], dtype=float)
        dropped = np.isnan(scores)
        if dropped.all():
            raise WorkbenchError(f"PyTerrier transformer {self.name!r} returned none of its {len(keys)} candidates")
        if dropped.any():
            floor = np.nanmin(scores) - 1.0
            scores[dropped] = floor - np.arange(1, int(dropped.sum()) + 1)
        return scores

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        ids = [f"d{position}" for position in range(len(passages))]
        frame = pd.DataFrame({"qid": "q", "query": query, "docno": ids, "text": list(passages),
                              "score": 0.0, "rank": range(len(passages))})
        return self.score_frame(frame)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "transformer": self.identity}

    @property
    def fingerprint(self) -> str:
        # the name is left out: the same transformer registered under two names shares its scores
        return fingerprint({"kind": self.kind, "transformer": self.identity})


def adapt_reranker(obj: Any, name: str):
    """The factory of a reranker for a PyTerrier transformer a plugin's entry point names
    (declared in :mod:`.catalogue`: imported when a plugin's object first needs adapting)."""
    if not is_transformer(obj):
        return None
    return lambda context, **_: PyTerrierReranker(name, obj)

