"""Rankers fine-tuned here, by name: ``finetuned:<name>`` picks, per dataset, the fold model that
never saw that dataset's queries (``<models>/<name>/<dataset>/model``, trained by
``workbench train``; a configuration with ``train = [...]`` has one, ``<models>/<name>/train/model``),
checks the leakage record, and scores with the matching reranker:
a ``cls`` checkpoint through ``cross-encoder``, a ``masked_mean`` one through its own head, a T5
one through ``monot5``, a bi-encoder (kind ``bi-encoder``) through ``dense`` (cosine of vectors
encoded apart, with the pooling, normalisation and max length its ``ranker.json`` records), which
is also an encoder for the ``dense-mini`` first stage: ``dense-mini:encoder=finetuned:<name>``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import WorkbenchError
from ..data.leakage import check_no_leakage
from ..models.batching import to_device
from ..models.devices import resolve_device
from ..models.identity import model_identity
from ..models.precision import autocast, check_allowed, check_precision_supported
from ..models.ranker import load_encoder_ranker, models_root, pair_features, read_ranker_meta
from .neural import PairReranker
from .protocol import RerankContext, Reranker

CROSS_YEAR = ("fine-tuned on TREC DL judgments of the other year + dev600 (cross-year fold): not comparable "
              "with models trained on MS MARCO train")


class EncoderRankerReranker(PairReranker):
    """Scores pairs with a saved :class:`~workbench.models.ranker.EncoderRanker` (masked-mean head)."""

    kind = "finetuned-encoder"

    def __init__(self, directory: str | Path, device: str | None = None, batch_size: int = 32,
                 precision: str = "fp32"):
        from transformers import AutoTokenizer

        self.directory = Path(directory)
        self.meta = read_ranker_meta(self.directory) or {}
        self.device = resolve_device(device)
        self.precision = check_allowed(precision, ("fp32", "bf16"), "finetuned reranker")
        self.backend = "torch"
        check_precision_supported(self.precision, self.device)
        self.model = load_encoder_ranker(self.directory).to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory), local_files_only=True)
        self.max_length = int(self.meta.get("max_length", 256))
        self.batch_size = batch_size
        self.pad_values = {"input_ids": self.tokenizer.pad_token_id or 0, "token_type_ids": 0}
        # the head's safetensors file is among the hashed model files
        self.identity = model_identity(str(self.directory), self.directory)

    def _features(self, queries: list[str], passages: list[str]) -> dict[str, list[list[int]]]:
        return pair_features(self.tokenizer, queries, passages, self.max_length, encoder_decoder=False)

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.model(**to_device(arrays, self.device)).float().double().cpu().numpy()

    def config(self) -> dict[str, Any]:
        config = {"kind": self.kind, **self.identity, "pooling": self.meta.get("pooling"), "max_length": self.max_length}
        if self.precision != "fp32":  # fp32 keeps the key it had before the option existed
            config["precision"] = self.precision
        return config


def load_finetuned(directory: Path, device: str | None, batch_size: int | None, precision: str = "fp32") -> Reranker:
    """The reranker for a saved fold model, by the kind its ``ranker.json`` records."""
    meta = read_ranker_meta(directory)
    if meta is None:
        raise WorkbenchError("not a model trained by workbench (no ranker.json)", directory)
    if meta["kind"] == "bi-encoder":
        from ..models.dense import DenseEncoder
        from .dense import DenseReranker

        # the settings it was trained with, stated rather than read back from the sentence-transformers
        # files (whose pooling and length fields differ between sentence-transformers versions);
        # torch, as the other fold models: exact, and no ONNX export per fold
        encoder = DenseEncoder(str(directory), pooling=meta.get("pooling"), normalize=meta.get("normalize"),
                               max_length=meta.get("max_length"), batch_size=batch_size or 32, device=device,
                               precision=precision, backend="torch")
        reranker = DenseReranker(encoder, similarity=meta.get("similarity", "cosine"))
        reranker.directory = directory  # the session's leakage check reads it, as for the other kinds
        return reranker
    if meta["kind"] == "cross-encoder":
        from .cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(str(directory), batch_size=batch_size, device=device, backend="torch",
                                    max_length=meta.get("max_length"), precision=precision)
    if meta["kind"] == "monot5":
        from .monot5 import MonoT5Reranker

        return MonoT5Reranker(str(directory), batch_size=batch_size, device=device, true_id=meta["true_id"],
                              max_length=meta.get("max_length"), precision=precision)
    return EncoderRankerReranker(directory, device=device, batch_size=batch_size or 32, precision=precision)


def make_finetuned(context: RerankContext, *, name: str | None, root: str | None, device: str | None,
                   batch_size: int | None, precision: str | None) -> Reranker:
    """The ``finetuned`` reranker (options: :data:`~workbench.rerankers.catalogue.FINETUNED_OPTIONS`)."""
    if not name:
        raise WorkbenchError("finetuned:<name> needs the name of a trained configuration (see `workbench train`)")
    if context.dataset is None:
        raise WorkbenchError("finetuned:<name> picks the fold model of the dataset it reranks: it needs a dataset")
    directory = Path(root or models_root()) / name / context.dataset.name / "model"
    single = Path(root or models_root()) / name / "train" / "model"  # a configuration with train = [...]: one model
    if not directory.is_dir() and single.is_dir():
        directory = single
    if not directory.is_dir():
        raise WorkbenchError(f"no fold model of {name!r} for {context.dataset.name} (train it: workbench train "
                             f"--config configs/<file>)", directory)
    check_no_leakage(directory, context.dataset)
    reranker = load_finetuned(directory, device or context.device, batch_size, precision or "fp32")
    reranker.per_dataset = True
    reranker.comparability = CROSS_YEAR if directory != single else \
        f"fine-tuned on {', '.join((read_ranker_meta(directory) or {}).get('sources') or ['named training data'])}"
    reranker.leakage_checked_for = context.dataset.name  # the session need not read the record again
    return reranker
