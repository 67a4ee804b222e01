"""workbench: an IR evaluation workbench for MS MARCO passage ranking.

Library API (the CLI in :mod:`workbench.cli` is a thin layer over it):

* :mod:`workbench.datasets` — named datasets (dl19, dl20, dev600, dev-small) in a data directory
* :mod:`workbench.trec` — TREC runs/qrels/topics as DataFrames (``qid, docno, score, rank``)
* :mod:`workbench.index`, :mod:`workbench.retrieve` — Pyserini Lucene index and BM25
* :mod:`workbench.rerankers`, :mod:`workbench.rerank` — the rerank protocol and registry
* :mod:`workbench.evaluate` — ranx evaluation with per-query scores
* :mod:`workbench.experiment` — systems by name, stored runs, the leaderboard
"""
__version__ = "0.1.0"
