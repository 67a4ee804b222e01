"""First-stage lexical retrieval with Pyserini over the Lucene index of a dataset's collection:
``bm25`` (``bm25-mini`` is the same stage under its old name, with the same fingerprint), with
RM3 pseudo-relevance feedback (``rm3=true``) or query likelihood with Dirichlet smoothing
(``ql=true``), as Pyserini's ``LuceneSearcher`` exposes them, with Anserini's defaults (k1=0.9,
b=0.4; fb_terms=10, fb_docs=10, original_query_weight=0.5; mu=1000). The index is Anserini's
default analysis (Porter stemming, stopwords removed), built once per collection checksum.
``index=<name>`` searches one of Pyserini's prebuilt indexes instead (downloaded by Pyserini
with internet; offline it must already be in Pyserini's cache).

Over the MS MARCO mini collection these numbers are NOT comparable with published full-collection
figures (different term statistics); the runs say so in the leaderboard's candidates column.
Over a complete collection (a declared one such as CACM, an ir_datasets one) they are: CACM's
BM25, BM25+RM3 and QL reproduce Anserini's regression figures (a test checks them).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError, first_line
from ..data.collection import Collection, LazyTexts
from ..data.trec import sort_run
from .anserini import AnseriniSearcher
from .java import ensure_java
from .lucene import LuceneIndex, index_fingerprint, shared_index
from .protocol import FirstStage, StageContext

BM25_PRESETS = {"anserini": (0.9, 0.4), "msmarco-tuned": (0.82, 0.68)}


@dataclass(frozen=True)
class BM25Config:
    """Lexical retrieval parameters; defaults are Anserini's (BM25 k1=0.9, b=0.4; RM3 10/10/0.5;
    QL mu=1000)."""

    k1: float = 0.9
    b: float = 0.4
    k: int = 1000
    threads: int = 0  # 0: all cores
    rm3: bool = False
    fb_terms: int = 10
    fb_docs: int = 10
    original_query_weight: float = 0.5
    ql: bool = False
    mu: float = 1000.0

    def settings(self) -> dict[str, Any]:
        """What decides the ranking beyond the index (BM25's k1/b, or QL's mu; RM3's parameters)."""
        model: dict[str, Any] = {"type": "ql", "mu": self.mu} if self.ql else {"type": "bm25", "k1": self.k1, "b": self.b}
        if self.rm3:
            model.update(rm3={"fb_terms": self.fb_terms, "fb_docs": self.fb_docs,
                              "original_query_weight": self.original_query_weight})
        return {**model, "k": self.k}

    def apply(self, searcher: Any) -> None:
        """Set Pyserini's searcher to this model."""
        if self.ql:
            searcher.set_qld(self.mu)
        else:
            searcher.set_bm25(self.k1, self.b)
        if self.rm3:
            searcher.set_rm3(self.fb_terms, self.fb_docs, self.original_query_weight)

    def resolved_threads(self) -> int:
        return self.threads or max(1, os.cpu_count() or 1)


class BM25Retriever:
    """Anserini's searcher (what Pyserini's ``LuceneSearcher`` wraps) with BM25, RM3 or QL,
    searching many queries at once with threads."""

    def __init__(self, index_path: str | Path, config: BM25Config = BM25Config(),
                 prebuilt_index_name: str | None = None):
        if not Path(index_path, "segments_1").exists() and not any(Path(index_path).glob("segments_*")):
            raise WorkbenchError("not a Lucene index", index_path)
        self.config = config
        try:
            self.searcher = AnseriniSearcher(str(index_path), prebuilt_index_name)
        except Exception as error:  # a jnius.JavaException from a damaged index (CorruptIndexException)
            raise WorkbenchError(f"cannot open the Lucene index ({first_line(error, 200)}); rebuild it with `workbench index "
                                 "--force`", index_path) from None
        config.apply(self.searcher)

    def search(self, topics: pd.DataFrame, k: int | None = None, batch_size: int = 1000) -> pd.DataFrame:
        """Top-``k`` BM25 results for every topic, as a run DataFrame (``qid, docno, score, rank``)."""
        return run_from_hits(*self.hits(topics["qid"].tolist(), topics["query"].tolist(), k, batch_size))

    def hits(self, qids: list[str], queries: list[str], k: int | None = None,
             batch_size: int = 1000) -> tuple[list[str], list[str], list[float]]:
        """(qids, docnos, scores) of the top-``k`` of each query, ``batch_size`` queries per batch search."""
        k = k or self.config.k
        found_qids, docnos, scores = [], [], []
        threads = self.config.resolved_threads()
        pairs = list(zip(qids, queries))
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            hits = self.searcher.batch_search([q for _, q in chunk], [qid for qid, _ in chunk], k=k,
                                              threads=threads)
            for qid, _ in chunk:
                for hit in hits.get(qid, []):
                    found_qids.append(qid)
                    docnos.append(hit.docid)
                    scores.append(hit.score)
        return found_qids, docnos, scores


def run_from_hits(qids: list[str], docnos: list[str], scores: list[float]) -> pd.DataFrame:
    """The run of BM25 hits (as :meth:`BM25Retriever.hits` returns them, from one searcher or many
    shards), ordered as trec_eval ranks it; an error when nothing was retrieved."""
    if not qids:
        raise WorkbenchError("BM25 retrieved nothing for any query")
    return sort_run(pd.DataFrame({"qid": qids, "docno": docnos, "score": scores}))


MINI_CANDIDATES = "mini-collection BM25 (not comparable with full-collection figures)"


class BM25Mini(FirstStage):
    """BM25 (or QL, with or without RM3) over the Lucene index of the context's collection (built
    once and cached on disk)."""

    kind = "bm25"

    def __init__(self, collection: Collection, config: BM25Config, shared: dict | None = None, engine: Any = None,
                 complete_collection: bool = False):
        self.collection = collection
        self.bm25 = config
        self.shared = shared if shared is not None else {}
        self.engine = engine  # None: search here; else topics are searched by the engine's workers
        self.index: LuceneIndex | None = None
        name = "QL" if config.ql else "BM25"
        name += "+RM3" if config.rm3 else ""
        self.candidates = (f"{name} over the dataset's collection" if complete_collection else
                           MINI_CANDIDATES.replace("BM25", name))

    def config(self) -> dict[str, Any]:
        # a default BM25 configuration keeps exactly the keys it always had (stored runs stay valid)
        settings = self.bm25.settings()
        # a converted collection (cache file) is named by its source, so its runs survive a new cache directory
        path = getattr(self.collection, "source", None) or self.collection.path
        return {**settings, "collection": str(path), "collection_sha256": self.collection.fingerprint}

    def run_key(self, topics_sha256: str) -> str:
        # the index (collection bytes, index options, Anserini version) is part of the key
        return fingerprint(self.run_config(topics_sha256), index_fingerprint(self.collection))

    def lucene_index(self) -> LuceneIndex:
        """The collection's Lucene index, built (or found in the cache) once per process."""
        return shared_index(self.collection, self.shared, threads=self.bm25.threads or None)

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        self.index = self.lucene_index()
        if self.engine is not None:
            return self.engine.bm25_search(self.index.path, self.bm25, topics)
        key = ("bm25-searcher", str(self.index.path), self.bm25)
        if key not in self.shared:
            self.shared[key] = BM25Retriever(self.index.path, self.bm25)
        return self.shared[key].search(topics, k=self.bm25.k)

    def details(self) -> dict[str, Any]:
        return {"threads": self.bm25.resolved_threads(), "index": str(self.index.path) if self.index else None}


def prebuilt_index_path(name: str) -> str:
    """The local directory of a Pyserini prebuilt index (downloaded by Pyserini if it can)."""
    ensure_java()
    from pyserini import util
    from pyserini.prebuilt_index_info import TF_INDEX_INFO

    if name not in TF_INDEX_INFO:
        close = [known for known in TF_INDEX_INFO if name.split(".")[0] in known][:5]
        raise WorkbenchError(f"unknown Pyserini prebuilt index {name!r}"
                             + (f" (similar: {', '.join(close)})" if close else "; see pyserini.prebuilt_index_info"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return util.download_prebuilt_index(name, verbose=False)
    except Exception as error:  # noqa: BLE001 - urllib/HTTP/tar failures: one line
        cache = util.get_cache_home() if hasattr(util, "get_cache_home") else "~/.cache/pyserini"
        raise WorkbenchError(
            f"Pyserini prebuilt index {name!r} is not in its cache ({cache}/indexes) and cannot be downloaded here "
            f"({type(error).__name__}); with internet run once: python -c \"from pyserini.search.lucene import "
            f"LuceneSearcher; LuceneSearcher.from_prebuilt_index('{name}')\"") from None


class LuceneDocuments(LazyTexts):
    """The texts of the documents of a Lucene index, read from its stored raw documents (the
    ``contents`` of Pyserini's JSON documents, else the raw text), only those asked for."""

    def __init__(self, searcher: Any, path: str | Path, identity: str):
        self.searcher = searcher
        self.path = Path(path)
        self.fingerprint = fingerprint("lucene-documents/v1", identity)
        self._texts: dict[str, str] = {}

    def text(self, pid: str) -> str:
        if pid not in self._texts:
            raw = self.searcher.raw_text(pid)
            if raw is None:
                raise WorkbenchError(f"document {pid!r} is not in the index", self.path)
            try:
                parsed = json.loads(raw)
                raw = parsed.get("contents", raw) if isinstance(parsed, dict) else raw
            except ValueError:
                pass
            if not raw.strip():
                raise WorkbenchError(f"document {pid!r} has no stored text (index built without -storeRaw?)",
                                     self.path)
            self._texts[pid] = " ".join(str(raw).split())
        return self._texts[pid]

    def __len__(self) -> int:
        return int(self.searcher.num_docs)

    @property
    def texts(self) -> dict[str, str]:
        raise WorkbenchError("a reranker that fits on the whole collection (TF-IDF, whitening) cannot read a "
                             "prebuilt index's texts: rerank with a model that reads only the candidates", self.path)


class PrebuiltLexical(FirstStage):
    """Lexical retrieval over a Pyserini prebuilt index by name, or an existing Lucene index by path
    (full collections: comparable figures). Rerankers over its candidates read the texts from the
    index's stored raw documents."""

    kind = "bm25"

    def __init__(self, index: str, config: BM25Config, shared: dict | None = None):
        self.index_name = index
        self.local = Path(index).expanduser().is_dir()
        self.bm25 = config
        self.shared = shared if shared is not None else {}
        name = ("QL" if config.ql else "BM25") + ("+RM3" if config.rm3 else "")
        where = "the Lucene index" if self.local else "Pyserini's prebuilt index"
        self.candidates = f"{name} over {where} {index}"

    def _identity(self) -> dict[str, Any]:
        if self.local:
            path = Path(self.index_name).expanduser().resolve()
            files = {p.name: p.stat().st_size for p in sorted(path.iterdir()) if p.is_file()}
            return {"lucene_index": str(path), "index_files": fingerprint(files)}
        from pyserini.prebuilt_index_info import TF_INDEX_INFO

        ensure_java()
        return {"prebuilt_index": self.index_name,
                "index_md5": TF_INDEX_INFO.get(self.index_name, {}).get("md5", "")}

    def config(self) -> dict[str, Any]:
        return {**self.bm25.settings(), **self._identity()}

    def _retriever(self) -> BM25Retriever:
        key = ("prebuilt-searcher", self.index_name, self.bm25)
        if key not in self.shared:
            path = str(Path(self.index_name).expanduser()) if self.local else prebuilt_index_path(self.index_name)
            self.shared[key] = BM25Retriever(path, self.bm25, None if self.local else self.index_name)
        return self.shared[key]

    def search(self, topics: pd.DataFrame) -> pd.DataFrame:
        return self._retriever().search(topics, k=self.bm25.k)

    def documents(self) -> LuceneDocuments:
        retriever = self._retriever()
        return LuceneDocuments(retriever.searcher, self.index_name, json.dumps(self._identity(), sort_keys=True))

    def details(self) -> dict[str, Any]:
        return {"threads": self.bm25.resolved_threads(), "index": self.index_name,
                "texts": "the index's stored raw documents"}


def make_bm25(context: StageContext, *, index: str | None, **settings: Any) -> FirstStage:
    """``bm25`` and ``bm25-mini`` (options: :data:`~workbench.first_stage.catalogue.LEXICAL_OPTIONS`): over
    a Pyserini prebuilt index or a Lucene index directory when ``index`` is given, else over the
    dataset's collection."""
    config = BM25Config(threads=context.threads, **settings)
    if index:
        return PrebuiltLexical(index, config, context.shared)
    complete = bool(getattr(getattr(context.dataset, "spec", None), "complete_collection", False))
    return BM25Mini(context.collection, config, context.shared, context.engine, complete_collection=complete)


make_bm25_mini = make_bm25  # bm25 under its earlier name: the same stage
