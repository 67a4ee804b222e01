"""What the learned first stages (``dense-mini``, ``splade-mini``) share: the collection is
indexed with the encoder of a model named by a reranker spec (so a reranker of the same
experiment reuses the loaded model), the index is built once per process, and the run's key
holds the encoder's fingerprint (its files' hashes and settings)."""
from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd

from ..core.errors import WorkbenchError
from ..core.registry import with_options
from ..models.encoder import EncoderModel, TextEncoder
from .catalogue import NUMERICS_OPTIONS  # noqa: F401 - declared (with the stages' other options) there
from .protocol import FirstStage, StageContext


class LearnedFirstStage(FirstStage):
    """Searches an index of the collection built with ``encoder``; subclasses say how to build it."""

    kind = "learned"
    label = "learned"  # words for the candidates column ("dense", "SPLADE")

    def __init__(self, context: StageContext, encoder_spec: str, index_kind: str, k: int):
        if context.collection is None:
            raise WorkbenchError(f"the {self.kind} first stage needs a collection")
        if context.models is None:
            raise WorkbenchError(f"the {self.kind} first stage needs a model loader (StageContext.models)")
        self.context = context
        self.collection = context.collection
        self.encoder_spec = encoder_spec
        self.index_kind = index_kind
        self.k = k
        self.model = context.models(encoder_spec)
        if not isinstance(self.model, EncoderModel):
            raise WorkbenchError(f"{encoder_spec!r} is not an encoder-based reranker; {self.kind} needs one "
                                 "(dense-minilm, dense:<model>, splade-tiny, splade:<model>)")
        self.encoder: TextEncoder = self.model.encoder
        self.candidates = (f"mini-collection {self.label} retrieval (not comparable with full-collection figures)")
        self._index_seconds = 0.0
        self._search_seconds = 0.0
        self._encoded = 0

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "encoder": self.encoder_spec, "encoder_fingerprint": self.encoder.fingerprint,
                "index": self.index_kind, "k": self.k, "collection_sha256": self.collection.fingerprint}

    def build_index(self) -> Any:
        """The searchable index of the whole collection (``search(topics, k)``)."""
        raise NotImplementedError

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        started = time.perf_counter()
        encoded_before = self.encoder.vector_cache.encoded
        key = (self.kind, self.encoder.fingerprint, self.index_kind, self.collection.fingerprint)
        if key not in self.context.shared and self.context.engine is not None:
            self.encode_remotely()
        index = self.context.memo(key, self.build_index)
        self._index_seconds = time.perf_counter() - started
        self._encoded = self.encoder.vector_cache.encoded - encoded_before
        started = time.perf_counter()
        run = index.search(topics, k=self.k)
        self._search_seconds = time.perf_counter() - started
        return run

    def encode_remotely(self) -> None:
        """Encode the passages missing from the vector cache on the context's engine, in the
        groups the local encoding would use, and store them: building the index then reads them
        all from the cache (the same vectors, bit for bit)."""
        cache = self.encoder.vector_cache
        groups = cache.plan([list(self.collection.texts.values())])
        if not groups:
            return
        bound = self.context.engine.bind(self.encoder_spec, self.context.dataset, self.context.device, self.model)
        for index, vectors in bound.encode_groups(groups):
            cache.store(groups[index], vectors)

    def details(self) -> dict[str, Any]:
        details = {"model_ids": self.model.config(), "wall_time_s": round(self._search_seconds, 3),
                   "index_time_s": round(self._index_seconds, 3),
                   "passages_encoded": self._encoded, **self.model.numerics()}
        # an encoder fine-tuned here (finetuned:<name>) says what its numbers compare with, as it
        # does when it reranks
        if getattr(self.model, "comparability", ""):
            details["comparability"] = self.model.comparability
        return details


def learned_stage_factory(stage_class: type[LearnedFirstStage]) -> Callable[..., LearnedFirstStage]:
    """A registry factory building ``stage_class`` from its declared options."""

    def make(context: StageContext, *, encoder: str, index: str, k: int, precision: str | None = None,
             backend: str | None = None) -> LearnedFirstStage:
        return stage_class(context, with_options(encoder, {"precision": precision, "backend": backend}), index, k)

    make.__name__ = f"make_{stage_class.kind.replace('-', '_')}"
    return make
