"""Rerankers behind one protocol (:class:`Reranker`: score a query against passages), chosen
by name from a registry that plugins extend (entry point group ``workbench.rerankers``).

One module per reranker (``tfidf``, ``cross_encoder``, ``monot5``, ``dense``, ``splade``), each
declared with its options in :mod:`.catalogue`; :func:`rerank_run` reranks a candidate run
through the persistent :class:`ScoreCache`. Heavy libraries (torch, transformers) load only
when a reranker is built: listing the rerankers or parsing a spec never imports them.
"""
from .protocol import RerankContext, Reranker
from .registry import REGISTRY, get_reranker, parse_reranker_spec, register
from .rerank import RerankStats, rerank_run
from .score_cache import ScoreCache

__all__ = ["REGISTRY", "RerankContext", "RerankStats", "Reranker", "ScoreCache", "get_reranker",
           "parse_reranker_spec", "register", "rerank_run"]
