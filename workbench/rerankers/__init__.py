"""Rerankers behind one protocol, chosen by name from a registry."""
from __future__ import annotations

import importlib

from .base import REGISTRY, RerankContext, Reranker, get_reranker, parse_reranker_spec, register

# Modules that register built-in rerankers; imported lazily so heavy libraries
# (torch, transformers) load only when a neural reranker is used.
BUILTIN_MODULES = [
    "workbench.rerankers.tfidf",
    "workbench.rerankers.crossencoder",
    "workbench.rerankers.monot5",
    "workbench.rerankers.dense",
    "workbench.rerankers.splade",
]

_loaded = False


def load_builtin() -> None:
    """Import the modules that register the built-in rerankers (idempotent)."""
    global _loaded
    if not _loaded:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


__all__ = ["REGISTRY", "RerankContext", "Reranker", "get_reranker", "load_builtin",
           "parse_reranker_spec", "register"]
