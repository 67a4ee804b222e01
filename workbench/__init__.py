"""workbench: an IR evaluation workbench for MS MARCO passage ranking.

The package reads as the pipeline (the CLI in :mod:`workbench.cli` is a thin layer over it):

* :mod:`workbench.data` — TREC runs/qrels/topics as DataFrames, the collection, named datasets
* :mod:`workbench.first_stage` — candidates: BM25 over Lucene, official runs, run files, dense, SPLADE
* :mod:`workbench.rerankers` — the rerank protocol, one module per reranker, the score cache
* :mod:`workbench.evaluation` — ranx metrics, statistics, sliced tables with significance
* :mod:`workbench.analysis` — query types (qa / exploratory), per-query comparison
* :mod:`workbench.report` — the leaderboard CSV, the report and its plots
* :mod:`workbench.experiment` — systems by name, the run store, the :class:`Workbench` facade

beside :mod:`workbench.core` (errors, files, cache, declared options, registries with
entry-point plugins) and :mod:`workbench.models` (torch plumbing and text encoders).
Components are added by registering them, in this repository or from another package through
the entry point groups ``workbench.rerankers`` and ``workbench.first_stages``.
"""
from .core.errors import WorkbenchError

__version__ = "0.1.0"
__all__ = ["WorkbenchError", "__version__"]

