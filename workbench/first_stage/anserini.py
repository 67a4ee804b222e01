"""Anserini's ``SimpleSearcher``, the Java searcher that Pyserini's ``LuceneSearcher`` wraps,
reached through Pyserini's own JVM set-up (``pyserini.pyclass``) and nothing else.

Why not ``pyserini.search.lucene.LuceneSearcher``: importing that package imports Pyserini's
dense and impact searchers, which import ``pyserini.encode`` (transformers, torch, onnxruntime,
openai) — seconds of every BM25 run spent on modules BM25 never calls. The calls made here are
the ones ``LuceneSearcher`` makes (``set_bm25``, ``set_qld``, ``set_rm3`` with the same choice of
collection class, ``batch_search``, ``doc``), so the hits are the same, score for score.
"""
from __future__ import annotations

from typing import Any

from .java import ensure_java

#: Pyserini's rule (LuceneSearcher.set_rm3): an index without stored document vectors can still
#: take RM3 when it is one of these prebuilt indexes, whose raw documents are parsed as this class
_RM3_COLLECTION_CLASS = {
    "msmarco-v1-passage": "JsonCollection", "msmarco-v1-doc": "JsonCollection",
    "msmarco-v1-doc-segmented": "JsonCollection",
    "msmarco-v2-passage": "MsMarcoV2PassageCollection", "msmarco-v2-passage-augmented": "MsMarcoV2PassageCollection",
    "msmarco-v2-doc": "MsMarcoV2DocCollection", "msmarco-v2-doc-segmented": "MsMarcoV2DocCollection",
}


def _java_classes() -> dict[str, Any]:
    ensure_java()
    from pyserini.pyclass import autoclass  # configures the classpath with Pyserini's Anserini jar

    return {"SimpleSearcher": autoclass("io.anserini.search.SimpleSearcher"),
            "ArrayList": autoclass("java.util.ArrayList")}


class AnseriniSearcher:
    """A Lucene index searched by Anserini, as Pyserini's ``LuceneSearcher`` searches it.

    ``prebuilt_index_name`` is the Pyserini prebuilt index the directory holds, if any (RM3 on an
    index without document vectors needs it, as in Pyserini).
    """

    def __init__(self, index_dir: str, prebuilt_index_name: str | None = None):
        self._java = _java_classes()
        self.index_dir = index_dir
        self.prebuilt_index_name = prebuilt_index_name
        self.object = self._java["SimpleSearcher"](index_dir)
        self.num_docs = self.object.get_total_num_docs()

    def set_bm25(self, k1: float = 0.9, b: float = 0.4) -> None:
        self.object.set_bm25(float(k1), float(b))

    def set_qld(self, mu: float = 1000.0) -> None:
        self.object.set_qld(float(mu))

    def set_rm3(self, fb_terms: int = 10, fb_docs: int = 10, original_query_weight: float = 0.5,
                debug: bool = False, filter_terms: bool = True) -> None:
        if self.object.reader.getTermVectors(0):
            collection_class = None
        elif self.prebuilt_index_name in _RM3_COLLECTION_CLASS:
            collection_class = _RM3_COLLECTION_CLASS[self.prebuilt_index_name]
        else:
            raise TypeError("RM3 is not supported for indexes without document vectors.")
        self.object.set_rm3(collection_class, fb_terms, fb_docs, original_query_weight, debug, filter_terms)

    def batch_search(self, queries: list[str], qids: list[str], k: int = 10, threads: int = 1) -> dict[str, Any]:
        """qid -> Anserini's ranked hits (``.docid``, ``.score``) of each query."""
        query_strings, qid_strings = self._java["ArrayList"](), self._java["ArrayList"]()
        for query in queries:
            query_strings.add(query)
        for qid in qids:
            qid_strings.add(qid)
        results = self.object.batch_search(query_strings, qid_strings, int(k), int(threads))
        return {entry.getKey(): entry.getValue() for entry in results.entrySet().toArray()}

    def raw_text(self, docid: str) -> str | None:
        """The document's stored raw text (else its stored contents); None when it is not in the index."""
        document = self.object.doc(docid)
        if document is None:
            return None
        return document.get("raw") or document.get("contents") or ""

    def close(self) -> None:
        self.object.close()
