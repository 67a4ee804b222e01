"""The options of model-backed components, each declared once, importable without torch.

The neural rerankers (``cross-encoder``, ``monot5``, ``dense``, ``splade``, ``finetuned``,
``rerankers``), the learned first stages and the encoders (:mod:`.encoder`, :mod:`.dense`,
:mod:`.splade`) share these declarations. A component whose default or help differs derives its
own with :meth:`~workbench.core.options.Option.but`, so the name, type, bounds and accepted
spellings stay in one place::

    BATCH_SIZE.but(default=32, help="texts per batch")

Nothing here imports a model library: the catalogues of built-in components
(``workbench.rerankers.catalogue``, ``workbench.first_stage.catalogue``) declare every
component from this module, so ``workbench rerankers`` and parsing a spec never load torch.
"""
from __future__ import annotations

from ..core.options import Option

#: the inference backends of a model: torch, or ONNX Runtime on the CPU
BACKENDS = ("torch", "onnx")
#: accepted spellings -> canonical precision (``dtype`` spellings of torch included)
PRECISION_SPELLINGS = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16",
                       "fp16": "fp16", "float16": "fp16", "int8": "int8", "qint8": "int8", "auto": "auto"}
#: ``cls``: the first token; ``last``: the last non-padding token; ``masked_mean``: the mean of the
#: real tokens (sentence-transformers' ``pooling_mode_mean_tokens``); ``mean``: the mean over every
#: position, padding included -- a known pitfall, offered to show it (its vectors depend on how the
#: batch was padded, unless ``pad_to`` fixes the length)
#: accepted spellings -> canonical pooling
POOLING_ALIASES = {"cls": "cls", "first": "cls", "masked_mean": "masked_mean", "mean": "mean",
                   "last": "last", "lasttoken": "last", "last_token": "last"}
#: post-processing of dense vectors fitted on a collection (:mod:`.whitening`)
WHITENINGS = ("none", "center", "whiten")

MODEL = Option("model", str, None, positional=True, help="Hugging Face id or local path")
BATCH_SIZE = Option("batch_size", int, None, minimum=1, help="texts per batch")
DEVICE = Option("device", str, None, help="auto, cpu, cuda, cuda:N, mps (default: the experiment's)")
THREADS = Option("threads", int, None, minimum=1, help="CPU threads (default: torch's)")
MAX_LENGTH = Option("max_length", int, None, minimum=1, help="tokens per text (default: the model's)")
MAX_TOKENS = Option("max_tokens", int, None, minimum=1, help="padded tokens per batch (0/auto: no limit)")
PRECISION = Option("precision", str, None, choices=PRECISION_SPELLINGS, aliases=("dtype",),
                   help="fp32 (exact; default), bf16/fp16 (autocast), int8 (backend=onnx)")
BACKEND = Option("backend", str, "torch", choices=BACKENDS, help="torch, or onnx (ONNX Runtime on the CPU)")
#: ``auto`` is ONNX Runtime fp32 on the CPU (the same vectors within 1e-6, about 1.15x torch fp32
#: here), torch on a GPU or for any other precision
AUTO_BACKEND = BACKEND.but(default="auto", choices=("auto", *BACKENDS),
                           help="auto (ONNX Runtime fp32 on the CPU when installed, else torch), torch, or onnx")
POOLING = Option("pooling", str, None, choices=POOLING_ALIASES,
                 help="cls, last, masked_mean, or mean (padding included: a pitfall, for contrast) "
                      "(default: the model's sentence-transformers pooling)")
PAD_TO = Option("pad_to", int, None, minimum=1,
                help="pad every text to this many tokens (texts longer are cut), as some re-implementations do")
NORMALIZE = Option("normalize", bool, None, help="L2-normalise vectors (default: as the model declares)")
#: the SPLADE encoder's length (256 tokens unless given)
SPLADE_MAX_LENGTH = MAX_LENGTH.but(default=256, help="tokens per text")


def precision_option(default: str | None = None, help: str = "") -> Option:
    """The ``precision`` option (alias ``dtype``) with a component's own default and help."""
    return PRECISION.but(default=default, help=help or PRECISION.help)
