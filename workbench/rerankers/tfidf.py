"""TF-IDF reranker: cosine similarity of TF-IDF vectors, IDF fitted on the whole collection."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from ..core.errors import WorkbenchError
from .protocol import RerankContext, Reranker


class TfidfReranker(Reranker):
    """Scores a passage by the cosine of its TF-IDF vector with the query's (scikit-learn)."""

    kind = "tfidf"

    def __init__(self, corpus_texts: Sequence[str], corpus_fingerprint: str, sublinear_tf: bool = True):
        self.corpus_fingerprint = corpus_fingerprint
        self.sublinear_tf = sublinear_tf
        self._corpus_texts = corpus_texts
        self._vectorizer: TfidfVectorizer | None = None

    @property
    def vectorizer(self) -> TfidfVectorizer:
        """Fitted on first use: a run whose scores are all cached never pays for the fit."""
        if self._vectorizer is None:
            # l2-normalised rows make the dot product the cosine.
            vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=self.sublinear_tf, norm="l2",
                                         dtype=np.float32)
            self._vectorizer = vectorizer.fit(self._corpus_texts)
        return self._vectorizer

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        query_vector = self.vectorizer.transform([query])
        passage_vectors = self.vectorizer.transform(list(passages))
        return np.asarray((passage_vectors @ query_vector.T).todense()).ravel().astype(np.float64)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        query_vectors = self.vectorizer.transform(list(queries))
        passage_vectors = self.vectorizer.transform(list(passages))
        return np.asarray(query_vectors.multiply(passage_vectors).sum(axis=1)).ravel().astype(np.float64)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "idf": f"collection:{self.corpus_fingerprint}",
                "sublinear_tf": self.sublinear_tf, "sklearn_norm": "l2"}

    @property
    def pairs_batch_size(self) -> int:
        return 20000


def make_tfidf(context: RerankContext, sublinear_tf: bool) -> TfidfReranker:
    """The ``tfidf`` reranker (declared in :mod:`.catalogue`)."""
    if context.collection is None:
        raise WorkbenchError("the tfidf reranker needs a collection to fit IDF on")
    texts = list(context.collection.texts.values())
    return TfidfReranker(texts, context.collection.fingerprint, sublinear_tf=sublinear_tf)
