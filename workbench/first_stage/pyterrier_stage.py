"""A PyTerrier transformer as a first stage: ``qid, query`` in, ``qid, docno, score`` out.

Registered by name (``Workbench.register``, :func:`workbench.pyterrier.register`) or named by a
plugin's entry point whose object is a transformer (the registry adapts it here)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.pyterrier import check_output, is_transformer, to_workbench_run, transformer_identity
from ..data.trec import sort_run
from .protocol import FirstStage, StageContext


class PyTerrierFirstStage(FirstStage):
    """A PyTerrier transformer that retrieves (``qid, query`` in, ``qid, docno, score`` out)."""

    kind = "pyterrier"
    candidates = "a PyTerrier pipeline's results"

    def __init__(self, name: str, transformer: Any, context: StageContext):
        self.name = name
        self.transformer = transformer
        self.identity = transformer_identity(transformer)
        self.calls = 0

    def config(self) -> dict[str, Any]:
        # the name is not part of the key: the same transformer under another name is the same run
        return {"type": self.kind, "transformer": self.identity}

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        frame = self.transformer.transform(pd.DataFrame({"qid": topics["qid"].astype(str),
                                                         "query": topics["query"].astype(str)}))
        return to_workbench_run(check_output(frame, self.name, ("qid", "docno", "score")), sort_run)

    def details(self) -> dict[str, Any]:
        return {"pyterrier_name": self.name}


def adapt_first_stage(obj: Any, name: str):
    """The factory of a first stage for a PyTerrier transformer a plugin's entry point names
    (declared in :mod:`.catalogue`: imported when a plugin's object first needs adapting)."""
    if not is_transformer(obj):
        return None
    return lambda context, **_: PyTerrierFirstStage(name, obj, context)

