"""The rerank protocol: score one query against a list of passages, higher is better.

Adding a reranker means writing one class with a ``score`` method and registering a
factory under a name::

    from workbench.rerankers import Reranker, register

    class Overlap(Reranker):
        kind = "overlap"
        def score(self, query, passages):
            words = set(query.lower().split())
            return np.array([len(words & set(p.lower().split())) for p in passages], float)

    @register("overlap", help="word overlap")
    def make_overlap(context, **options):
        return Overlap()

Rerankers that batch across queries (neural models) override ``score_pairs``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..cache import fingerprint as _fingerprint
from ..collection import Collection
from ..errors import WorkbenchError


class Reranker(ABC):
    """Base class of every reranker."""

    #: registry name of the reranker kind (``tfidf``, ``cross-encoder``, ...)
    kind: str = "reranker"

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

    @property
    def pairs_batch_size(self) -> int:
        """How many pairs to score between progress/cache checkpoints."""
        return 1024


@dataclass
class RerankContext:
    """What a reranker factory may need: the collection (for IDF, vocabularies) and settings."""

    collection: Collection | None = None
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)


Factory = Callable[..., Reranker]


@dataclass(frozen=True)
class RegisteredReranker:
    name: str
    factory: Factory
    help: str
    defaults: dict[str, Any]


REGISTRY: dict[str, RegisteredReranker] = {}


def register(name: str, help: str = "", **defaults: Any) -> Callable[[Factory], Factory]:
    """Register a reranker factory ``factory(context, **options) -> Reranker`` under ``name``.

    ``defaults`` are options passed to the factory unless overridden, which lets one factory
    be registered several times as named presets (e.g. a dense model with a given checkpoint).
    """

    def decorate(factory: Factory) -> Factory:
        if name in REGISTRY:
            raise ValueError(f"reranker {name!r} registered twice")
        REGISTRY[name] = RegisteredReranker(name, factory, help, dict(defaults))
        return factory

    return decorate


def parse_reranker_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name`` or ``name:model`` or ``name:model,key=value,...`` into a name and options."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    if rest:
        for position, part in enumerate(rest.split(",")):
            key, eq, value = part.partition("=")
            if eq:
                options[key.strip()] = value.strip()
            elif position == 0:
                options["model"] = part.strip()
            else:
                raise WorkbenchError(f"bad reranker option {part!r} in {spec!r}: expected key=value")
    return name.strip(), options


def get_reranker(spec: str, context: RerankContext | None = None, **options: Any) -> Reranker:
    """Build a registered reranker by name (``tfidf``, ``cross-encoder:<hub id or path>``, ...)."""
    from . import load_builtin  # registers the built-in rerankers

    load_builtin()
    name, parsed = parse_reranker_spec(spec)
    if name not in REGISTRY:
        raise WorkbenchError(f"unknown reranker {name!r}; known rerankers: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    merged = {**entry.defaults, **parsed, **options}
    return entry.factory(context or RerankContext(), **merged)
