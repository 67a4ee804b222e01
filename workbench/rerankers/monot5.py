"""monoT5 reranker (Nogueira et al., 2020): a T5 model asked whether a passage is relevant.

The input is ``Query: {q} Document: {d} Relevant:`` (truncated to ``max_length`` tokens, 512
by default, as in pygaggle); the score is the log-probability of ``true`` from a log-softmax
over the ``false``/``true`` logits of the first decoding step (decoder input = the decoder start
token). For ``castorini/monot5-*`` with the T5 tokenizer those tokens are ``▁true`` (1176) and
``▁false`` (6136). Other tokenizers: ``true_token=``/``false_token=`` (text resolving to one
token) or ``true_id=``/``false_id=``.

Spec examples: ``monot5`` (castorini/monot5-base-msmarco), ``monot5:/path/to/model``,
``monot5:castorini/monot5-3b-msmarco-10k,precision=bf16,device=cuda``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import WorkbenchError
from ..models.batching import to_device
from ..models.devices import configure_threads, resolve_device
from ..models.hub import load_config, load_tokenizer, load_weights, resolve_model_dir
from ..models.identity import model_identity
from ..models.options import PRECISION
from ..models.precision import autocast, check_allowed, check_precision_supported
from ..models.ranker import MONOT5_TEMPLATE, pair_features
from .catalogue import MONOT5_MODEL as DEFAULT_MODEL
from .neural import PairReranker
from .protocol import RerankContext

TEMPLATE = MONOT5_TEMPLATE  # the trained encoder-decoder rankers use the same input
DEFAULT_MAX_LENGTH = 512
DEFAULT_BATCH_SIZE = {"cpu": 16, "cuda": 64}
CHECKPOINT_PAIRS = {"cpu": 256, "cuda": 1024}


def resolve_token_id(tokenizer: Any, text: str, option: str, model: str) -> int:
    """The single token id that ``text`` stands for (``true`` -> ``▁true`` for T5)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1:
        return int(ids[0])
    for candidate in (text, "\u2581" + text):
        token_id = tokenizer.convert_tokens_to_ids(candidate)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            return token_id
    raise WorkbenchError(f"{text!r} is not a single token for the tokenizer of {model} (it encodes to "
                         f"{len(ids)} tokens); pass {option}_token=<text of one token> or {option}_id=<token id>")


class MonoT5Reranker(PairReranker):
    """Scores (query, passage) pairs by T5's log-probability of answering ``true``."""

    kind = "monot5"
    checkpoint_pairs = CHECKPOINT_PAIRS

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int | None = None,
                 max_length: int | None = None, device: str | None = None, precision: str | None = None,
                 threads: int | None = None, true_token: str = "true", false_token: str = "false",
                 true_id: int | None = None, false_id: int | None = None, context_device: str | None = None):
        from transformers import T5ForConditionalGeneration

        canonical = PRECISION.parse(precision, "monot5 reranker") if precision is not None else "fp32"
        self.precision = check_allowed(canonical, ("fp32", "bf16"), "monot5 reranker")
        self.device = resolve_device(device or context_device)
        check_precision_supported(self.precision, self.device)
        self.threads = configure_threads(threads)
        self.model_name = str(model)
        self.directory = resolve_model_dir(self.model_name, self.kind)
        self.identity = model_identity(self.model_name, self.directory)
        hf_config = load_config(self.directory, self.kind)
        self.tokenizer = load_tokenizer(self.directory, self.kind)
        if not getattr(hf_config, "is_encoder_decoder", False):
            raise WorkbenchError(f"{self.model_name} is a {hf_config.model_type!r} model, not an "
                                 "encoder-decoder (T5) model as monot5 needs")
        self.model = load_weights(T5ForConditionalGeneration, self.directory, self.kind).to(self.device)
        limit = getattr(self.tokenizer, "model_max_length", None)
        self.max_length = max_length or min(DEFAULT_MAX_LENGTH, limit if isinstance(limit, int) and limit > 0
                                            else DEFAULT_MAX_LENGTH)
        self.true_id = true_id if true_id is not None else resolve_token_id(
            self.tokenizer, true_token, "true", self.model_name)
        self.false_id = false_id if false_id is not None else resolve_token_id(
            self.tokenizer, false_token, "false", self.model_name)
        vocab = self.model.config.vocab_size
        for name, token_id in (("true", self.true_id), ("false", self.false_id)):
            if not 0 <= token_id < vocab:
                raise WorkbenchError(f"{name}_id={token_id} is outside the vocabulary of {self.model_name} "
                                     f"(size {vocab})")
        if self.true_id == self.false_id:
            raise WorkbenchError("the true and false tokens must differ")
        start = self.model.config.decoder_start_token_id
        self.decoder_start_id = int(start if start is not None else self.model.config.pad_token_id)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 16)
        self.pad_values = {"input_ids": self.tokenizer.pad_token_id or 0}

    def _features(self, queries: list[str], passages: list[str]) -> dict[str, list[list[int]]]:
        return pair_features(self.tokenizer, queries, passages, self.max_length, encoder_decoder=True)

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """log P(true) from a log-softmax over the false/true logits of the first decoding step."""
        tensors = to_device(arrays, self.device)
        input_ids, attention_mask = tensors["input_ids"], tensors["attention_mask"]
        decoder_input_ids = torch.full((input_ids.shape[0], 1), self.decoder_start_id, dtype=torch.long,
                                       device=self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                decoder_input_ids=decoder_input_ids, use_cache=False).logits
        pair = logits[:, 0, [self.false_id, self.true_id]].float()
        return torch.log_softmax(pair, dim=-1)[:, 1].double().cpu().numpy()

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.identity, "template": TEMPLATE, "max_length": self.max_length,
                "true_id": self.true_id, "false_id": self.false_id, "precision": self.precision}


def make_monot5(context: RerankContext, *, model: str, **options: Any) -> MonoT5Reranker:
    """The ``monot5`` reranker (options: :data:`~workbench.rerankers.catalogue.MONOT5_OPTIONS`)."""
    return MonoT5Reranker(model, context_device=context.device, **options)
