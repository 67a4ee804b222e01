"""Every built-in first stage, declared without importing it: its name, help, options, and its
factory as ``"module:function"``, imported when the stage is first built.

``FIRST_STAGES.load_builtins()`` imports this module and nothing else, so listing the first
stages (``workbench first-stages``) or parsing a spec (``bm25:k1=0.8``, ``dense-mini``) imports
neither Pyserini nor faiss nor torch. This module imports only ``core`` and
:mod:`workbench.models.options`.

Adding a built-in first stage: its module, with a factory ``make_x(context, **options)``, and
its declaration here.
"""
from __future__ import annotations

from ..core.options import Option
from ..models.options import AUTO_BACKEND, PRECISION
from .registry import FIRST_STAGES

# -- lexical retrieval with Pyserini/Anserini (first_stage.bm25)
LEXICAL_OPTIONS = (
    Option("k1", float, 0.9, minimum=0, help="BM25 term saturation (Anserini 0.9; MS MARCO-tuned 0.82)"),
    Option("b", float, 0.4, minimum=0, help="BM25 length normalisation (Anserini 0.4; tuned 0.68)"),
    Option("k", int, 1000, minimum=1, help="documents retrieved per query"),
    Option("rm3", bool, False, help="RM3 pseudo-relevance feedback (Pyserini's set_rm3)"),
    Option("fb_terms", int, 10, minimum=1, help="RM3 expansion terms"),
    Option("fb_docs", int, 10, minimum=1, help="RM3 feedback documents"),
    Option("original_query_weight", float, 0.5, minimum=0, help="RM3 weight of the original query"),
    Option("ql", bool, False, help="query likelihood with Dirichlet smoothing instead of BM25 (set_qld)"),
    Option("mu", float, 1000.0, minimum=0, help="QL Dirichlet smoothing"),
    Option("index", str, None, help="a Pyserini prebuilt index by name (msmarco-v1-passage, "
           "beir-v1.0.0-scifact.flat, ...) or a Lucene index directory, instead of the dataset's collection; "
           "rerankers read its stored raw documents"),
)

# -- learned first stages (first_stage.learned, .dense, .splade)
#: options a learned first stage passes on to its encoder, so that a faster, inexact encoding
#: of the collection shows in the system's own name: ``dense-mini:precision=bf16``
NUMERICS_OPTIONS = (
    PRECISION.but(help="the encoder's precision (default: the encoder spec's, fp32): fp32, bf16; "
                       "backend=onnx: int8 or fp32"),
    AUTO_BACKEND.but(default=None, help="the encoder's backend (default: the encoder spec's)"),
)
#: faiss index kinds of ``dense-mini``
DENSE_INDEX_KINDS = ("flat", "ivf", "hnsw")
RETRIEVED = Option("k", int, 1000, minimum=1, help="passages retrieved per query")
DENSE_MINI_OPTIONS = (
    Option("encoder", str, "dense-minilm", help="reranker spec of the bi-encoder"),
    *NUMERICS_OPTIONS,
    Option("index", str, "flat", choices=DENSE_INDEX_KINDS, help="flat (exact), ivf or hnsw (approximate)"),
    RETRIEVED,
)
SPLADE_MINI_OPTIONS = (
    Option("encoder", str, "splade-tiny", help="reranker spec of the SPLADE model"),
    *NUMERICS_OPTIONS,
    Option("index", str, "flat", choices=("flat",), help="exact sparse dot product"),
    RETRIEVED,
)

FIRST_STAGES.declare("bm25", "workbench.first_stage.bm25:make_bm25", options=LEXICAL_OPTIONS,
                     help="Pyserini BM25 over the Lucene index of the dataset's collection (rm3=true: RM3; ql=true: "
                          "query likelihood, Dirichlet; index=<name>: a Pyserini prebuilt index)")
FIRST_STAGES.declare("bm25-mini", "workbench.first_stage.bm25:make_bm25", options=LEXICAL_OPTIONS,
                     help="bm25 under its earlier name (same runs, same fingerprints)")
FIRST_STAGES.declare("official-", "workbench.first_stage.run_files:make_official",
                     options=(Option("run", str, None, positional=True, help="the run's name in the data directory"),),
                     help="an official full-collection run shipped with the dataset (official-bm25, "
                          "official-tasb, ...; comparable with published reranking results)")
FIRST_STAGES.declare("run", "workbench.first_stage.run_files:make_run_file",
                     options=(Option("path", str, None, positional=True, raw=True, help="path of the TREC run file"),),
                     help="any TREC run file as candidates (run:<path>)")
FIRST_STAGES.declare("dense-mini", "workbench.first_stage.dense:make_dense_mini", options=DENSE_MINI_OPTIONS,
                     help="dense retrieval over the mini collection with faiss (passage vectors cached per encoder "
                          "and shared with the dense reranker; not comparable with full-collection figures)")
FIRST_STAGES.declare("splade-mini", "workbench.first_stage.splade:make_splade_mini", options=SPLADE_MINI_OPTIONS,
                     help="SPLADE retrieval over the mini collection (sparse dot product; vectors cached on disk; "
                          "not comparable with full-collection figures)")

# a plugin's entry point naming a PyTerrier transformer: a first stage as it is
FIRST_STAGES.declare_adapter("workbench.first_stage.pyterrier_stage:adapt_first_stage")
