"""The two ways a neural reranker scores (query, passage) pairs.

* :class:`PairReranker` (cross-encoder, monoT5): each pair is one token sequence; pairs are
  tokenized once, scored in length-sorted, dynamically padded batches, put back in order.
* :class:`VectorReranker` (dense, SPLADE): query and passage are encoded apart by a
  :class:`~workbench.models.encoder.TextEncoder` and compared; a text shared by several pairs
  is encoded once. Its ``encoder`` is what a learned first stage indexes a collection with.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..models.batching import length_sorted_batches, pad_batch, scatter
from ..models.encoder import TextEncoder
from ..models.identity import scores_fingerprint
from .protocol import Reranker


class PairReranker(Reranker):
    """A model that reads each (query, passage) pair as one token sequence (cross-encoder, monoT5).

    Pairs are tokenized once (``_features``), scored in length-sorted, dynamically padded batches
    (``_score_batch``: padded arrays -> float64 scores) and put back in input order. Subclasses
    set ``tokenizer``, ``device``, ``batch_size``, ``pad_values`` and ``checkpoint_pairs``.
    """

    checkpoint_pairs: Mapping[str, int] = {"cpu": 256}

    def _features(self, queries: list[str], passages: list[str]) -> dict[str, list[list[int]]]:
        raise NotImplementedError

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_pairs([query] * len(passages), passages)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        if len(queries) != len(passages):
            raise ValueError("queries and passages must have the same length")
        if not passages:
            return np.zeros(0)
        features = self._features(list(queries), list(passages))
        batches = length_sorted_batches([len(ids) for ids in features["input_ids"]], self.batch_size)
        results = [self._score_batch(pad_batch(features, indices, self.pad_values, self.tokenizer.padding_side))
                   for indices in batches]
        return scatter(len(passages), batches, results)

    @property
    def fingerprint(self) -> str:
        return scores_fingerprint(self.config())

    @property
    def pairs_batch_size(self) -> int:
        return max(self.batch_size, self.checkpoint_pairs.get(self.device.type, 256))


class VectorReranker(Reranker):
    """Scores a pair by comparing the query's vector with the passage's, each encoded apart by
    ``self.encoder`` (a :class:`TextEncoder`); a text shared by several pairs is encoded once."""

    encoder: TextEncoder
    #: passages go through the encoder's vector cache (shared with the learned first stages);
    #: benchmarks turn it off to time the encoding itself
    cache_passages: bool = True

    @property
    def passage_vector_cache(self) -> Any:
        """The vector cache this reranker reads its passages through (None when it is turned off):
        the rerank loop encodes passages into it remotely before scoring."""
        return self.encoder.vector_cache if self.cache_passages else None

    def _similarities(self, query_vectors: Any, passage_vectors: Any) -> np.ndarray:
        """float64 score of each row pair."""
        raise NotImplementedError

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_pairs([query] * len(passages), passages)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        unique_queries = list(dict.fromkeys(queries))
        unique_passages = list(dict.fromkeys(passages))
        query_row = {q: i for i, q in enumerate(unique_queries)}
        passage_row = {p: i for i, p in enumerate(unique_passages)}
        query_vectors = self.encoder.encode_queries(unique_queries)
        passage_vectors = self.encoder.encode_passages(unique_passages, cache=self.cache_passages)
        return self._similarities(query_vectors[[query_row[q] for q in queries]],
                                  passage_vectors[[passage_row[p] for p in passages]])

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.encoder.config()}

    @property
    def fingerprint(self) -> str:
        # the files' hashes identify the model; neither its install path nor its hub id changes scores
        return scores_fingerprint(self.config(), hub_id=False)

    @property
    def pairs_batch_size(self) -> int:
        # pairs scored (and committed to the score cache) per step: on a CPU 1024 pairs take about
        # ten seconds, so an interrupt loses little, while the texts of a step, sorted by length,
        # batch with little padding (256-pair steps ran at 67 pairs/s in make eval); a GPU takes bigger ones
        device = getattr(getattr(self.encoder, "device", None), "type", "cpu")
        return 4096 if device == "cuda" else 1024
