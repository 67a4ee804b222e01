"""Deprecated aliases for the module paths of workbench 0.1 (before the package read as the
pipeline): ``import workbench.trec`` still works, warns once, and gives ``workbench.data.trec``.

Implemented as an import hook, so the old names cost no files and no imports until used.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module -> new module
MOVED = {
    "workbench.errors": "workbench.core.errors",
    "workbench.atomic": "workbench.core.files",
    "workbench.cache": "workbench.core.cache",
    "workbench.trec": "workbench.data.trec",
    "workbench.collection": "workbench.data.collection",
    "workbench.datasets": "workbench.data.datasets",
    "workbench.download": "workbench.data.materialise",
    "workbench.java": "workbench.first_stage.java",
    "workbench.index": "workbench.first_stage.lucene",
    "workbench.retrieve": "workbench.first_stage.bm25",
    "workbench.dense_index": "workbench.first_stage.dense",
    "workbench.rerank": "workbench.rerankers.rerank",
    "workbench.scorecache": "workbench.rerankers.score_cache",
    "workbench.rerankers.base": "workbench.rerankers.protocol",
    "workbench.rerankers.crossencoder": "workbench.rerankers.cross_encoder",
    "workbench.evaluate": "workbench.evaluation.metrics",
    "workbench.stats": "workbench.evaluation.stats",
    "workbench.slices": "workbench.evaluation.slices",
    "workbench.querytypes": "workbench.analysis.query_types",
    "workbench.compare": "workbench.analysis.compare",
    "workbench.leaderboard": "workbench.report.leaderboard",
    "workbench.runstore": "workbench.experiment.store",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        pass  # already executed under its new name


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves an old module path to the module at its new path, with a DeprecationWarning."""

    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        warnings.warn(f"{fullname} moved to {new}; the old path will be removed", DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
