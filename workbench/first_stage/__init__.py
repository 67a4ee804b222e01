"""First stages: where candidates come from. One protocol (:class:`FirstStage`: ``config()``,
``search(topics)``), one registry that plugins extend (entry point group
``workbench.first_stages``), one module per stage:

* ``bm25-mini`` (:mod:`.bm25`) — Pyserini BM25 over the Lucene index of the collection (:mod:`.lucene`)
* ``official-<name>``, ``run:<path>`` (:mod:`.run_files`) — official full-collection runs, user run files
* ``dense-mini`` (:mod:`.dense`) — faiss over cached dense embeddings of the collection
* ``splade-mini`` (:mod:`.splade`) — sparse dot product over cached SPLADE vectors
"""
from .protocol import FirstStage, StageContext
from .registry import FIRST_STAGES, get_first_stage, register

__all__ = ["FIRST_STAGES", "FirstStage", "StageContext", "get_first_stage", "register"]
