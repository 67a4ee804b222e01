"""The first-stage protocol: produce a candidate run for topics, from a collection or a file.

A first stage is built per (spec, dataset) by its registered factory from a
:class:`StageContext`, then asked for ``search(topics)``::

    from workbench.core.options import Option
    from workbench.first_stage import FirstStage, register

    class Constant(FirstStage):
        kind = "constant"
        candidates = "every passage with score 0 (not comparable)"
        def __init__(self, context, k): self.collection, self.k = context.collection, k
        def config(self): return {"type": self.kind, "k": self.k, "collection_sha256": self.collection.fingerprint}
        def search(self, topics): ...  # a DataFrame qid, docno, score, rank

    @register("constant", help="...", options=(Option("k", int, 100, minimum=1),))
    def make_constant(context, k):
        return Constant(context, k)

``constant:k=10`` and ``constant:k=10+tfidf`` then work as systems once the module is imported (a
plugin's entry point imports it). A built-in first stage is declared in :mod:`.catalogue`
instead, so that its module is imported only when it is built.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..core.cache import fingerprint
from ..data.collection import Collection
from ..data.datasets import Dataset


class FirstStage(ABC):
    """Base class of every first stage: ``config()`` says what determines its results,
    ``search(topics)`` returns a run (``qid, docno, score, rank``)."""

    #: registry name of the first-stage kind (``bm25-mini``, ``official-``, ``dense-mini``, ...)
    kind: str = "first-stage"
    #: what the leaderboard's ``candidates`` column says about its runs (comparability)
    candidates: str = ""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that determines the results for a given set of topics (recorded in manifests)."""

    @abstractmethod
    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        """The run for ``topics`` (``qid, query``): a DataFrame ``qid, docno, score, rank``."""

    def run_config(self, topics_sha256: str) -> dict[str, Any]:
        """The configuration of this stage's run on topics with this checksum (a stored run's config)."""
        return {**self.config(), "topics_sha256": topics_sha256}

    def run_key(self, topics_sha256: str) -> str:
        """Key of this stage's run on these topics: a stored run with the same key is reused."""
        return fingerprint(self.run_config(topics_sha256))

    def details(self) -> dict[str, Any]:
        """Manifest fields describing the last ``search`` (threads, index build time, model ids)."""
        return {}

    def documents(self) -> Any:
        """Where rerankers read the texts of this stage's candidates when not from the dataset's
        collection (a prebuilt index's stored documents); None: the dataset's collection."""
        return None


@dataclass
class StageContext:
    """What a first-stage factory may need.

    ``models`` builds (and shares) a model by reranker spec: a learned first stage indexes the
    collection with the encoder of such a model, which the rerankers of the same experiment
    reuse; the experiment wires it to the reranker registry. ``shared`` is a per-process memo
    for expensive objects several stages or datasets can share (Lucene searchers, faiss indexes).
    """

    collection: Collection | None = None
    dataset: Dataset | None = None
    device: str = "cpu"
    threads: int = 0
    progress: bool = True
    models: Callable[[str], Any] | None = None
    shared: dict[Any, Any] = field(default_factory=dict)
    #: where expensive work runs: None (here) or an engine (:class:`workbench.engines.ray.RayEngine`)
    #: with ``bind(spec, dataset, device, model)`` and ``bm25_search(...)``; never changes a run
    engine: Any = None

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """``shared[key]``, built once."""
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]
