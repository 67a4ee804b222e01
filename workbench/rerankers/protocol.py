"""The rerank protocol: score one query against a list of passages, higher is better.

Adding a reranker means writing one file: a class with a ``score`` method and a factory
registered under a name with its declared options (:mod:`workbench.rerankers.registry`)::

    from workbench.core.options import Option
    from workbench.rerankers import Reranker, register

    class Overlap(Reranker):
        kind = "overlap"
        def __init__(self, lowercase): self.lowercase = lowercase
        def score(self, query, passages):
            norm = str.lower if self.lowercase else str
            words = set(norm(query).split())
            return np.array([len(words & set(norm(p).split())) for p in passages], float)
        def config(self): return {"kind": self.kind, "lowercase": self.lowercase}

    @register("overlap", help="word overlap", options=(Option("lowercase", bool, True),))
    def make_overlap(context, lowercase):
        return Overlap(lowercase)

``official-bm25+overlap:lowercase=false`` then works as a system once the module is imported (a
plugin's entry point imports it). A built-in reranker is declared in :mod:`.catalogue` instead,
so that its module is imported only when it is built. Rerankers that batch across
queries (neural models) override ``score_pairs``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..core.cache import fingerprint as _fingerprint
from ..data.collection import Collection
from ..data.datasets import Dataset


class Reranker(ABC):
    """Base class of every reranker."""

    #: registry name of the reranker kind (``tfidf``, ``cross-encoder``, ...)
    kind: str = "reranker"
    #: True when the reranker was built for one dataset (a fold model): not shared across datasets
    per_dataset: bool = False
    #: what the leaderboard's comparability column says about its numbers ("" when nothing to add)
    comparability: str = ""
    #: True when a passage's score depends on the other candidates of its query (a listwise LLM
    #: ranker): each query's whole list is scored in one call, and cached under the list
    scores_whole_lists: bool = False

    @abstractmethod
    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Relevance scores of ``passages`` for ``query`` (one float per passage)."""

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        """Scores of many (query, passage) pairs; the default groups pairs by query."""
        scores = np.empty(len(passages), dtype=np.float64)
        groups: dict[str, list[int]] = {}
        for position, query in enumerate(queries):
            groups.setdefault(query, []).append(position)
        for query, positions in groups.items():
            scores[positions] = self.score(query, [passages[p] for p in positions])
        return scores

    def config(self) -> dict[str, Any]:
        """Everything that determines the scores (model id, options), recorded in manifests."""
        return {"kind": self.kind}

    @property
    def fingerprint(self) -> str:
        """Key of this reranker's scores in the score cache: changes whenever scores could."""
        return _fingerprint(self.config())

    def numerics(self) -> dict[str, str]:
        """How the scores are computed, for the leaderboard's ``precision`` and ``backend``
        columns: ``fp32``/``bf16``/``int8`` and ``torch``/``onnx`` for a neural model; "" for
        rerankers without one (TF-IDF computes in float64)."""
        precision = getattr(self, "precision", "")
        backend = getattr(self, "backend", "")
        encoder = getattr(self, "encoder", None)
        if encoder is not None and not precision:
            precision, backend = getattr(encoder, "precision", ""), getattr(encoder, "backend", "")
        return {"precision": str(precision or ""), "backend": str(backend or "")}

    @property
    def pairs_batch_size(self) -> int:
        """How many pairs to score between progress/cache checkpoints."""
        return 1024


@dataclass
class RerankContext:
    """What a reranker factory may need: the collection (for IDF, vocabularies), the dataset it
    will rerank (a fine-tuned model picks the fold that never saw it) and settings."""

    collection: Collection | None = None
    dataset: Dataset | None = None
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
