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

from ..errors import WorkbenchError
from . import _torchutil as tu
from .base import RerankContext, register

DEFAULT_MODEL = "castorini/monot5-base-msmarco"
TEMPLATE = "Query: {query} Document: {passage} Relevant:"
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


class MonoT5Reranker(tu.PairReranker):
    """Scores (query, passage) pairs by T5's log-probability of answering ``true``."""

    kind = "monot5"
    checkpoint_pairs = CHECKPOINT_PAIRS

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int | None = None,
                 max_length: int | None = None, device: str | None = None, precision: str | None = None,
                 threads: int | None = None, true_token: str = "true", false_token: str = "false",
                 true_id: int | None = None, false_id: int | None = None, context_device: str | None = None):
        from transformers import T5ForConditionalGeneration

        self.precision = tu.parse_choice("precision", precision or "fp32", tu.PRECISIONS)
        self.device = tu.resolve_device(device or context_device)
        tu.check_precision(self.precision, self.device)
        self.threads = tu.configure_threads(threads)
        self.model_name = str(model)
        self.directory = tu.resolve_model_dir(self.model_name, self.kind)
        self.identity = tu.model_identity(self.model_name, self.directory)
        hf_config = tu.load_config(self.directory, self.kind)
        self.tokenizer = tu.load_tokenizer(self.directory, self.kind)
        if not getattr(hf_config, "is_encoder_decoder", False):
            raise WorkbenchError(f"{self.model_name} is a {hf_config.model_type!r} model, not an "
                                 "encoder-decoder (T5) model as monot5 needs")
        self.model = tu.load_weights(T5ForConditionalGeneration, self.directory, self.kind).to(self.device)
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
        texts = [TEMPLATE.format(query=q, passage=p) for q, p in zip(queries, passages)]
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False,
                                 return_attention_mask=False)
        return {"input_ids": encoded["input_ids"]}

    def _score_batch(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """log P(true) from a log-softmax over the false/true logits of the first decoding step."""
        tensors = tu.to_device(arrays, self.device)
        input_ids, attention_mask = tensors["input_ids"], tensors["attention_mask"]
        decoder_input_ids = torch.full((input_ids.shape[0], 1), self.decoder_start_id, dtype=torch.long,
                                       device=self.device)
        with torch.inference_mode(), tu.autocast(self.device, self.precision):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                decoder_input_ids=decoder_input_ids, use_cache=False).logits
        pair = logits[:, 0, [self.false_id, self.true_id]].float()
        return torch.log_softmax(pair, dim=-1)[:, 1].double().cpu().numpy()

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.identity, "template": TEMPLATE, "max_length": self.max_length,
                "true_id": self.true_id, "false_id": self.false_id, "precision": self.precision}


@register("monot5", help="monoT5 log-probability of 'true' (castorini/monot5-base-msmarco or a local path; "
          "options: batch_size, max_length, device, precision=fp32|bf16, threads, true_token, false_token)",
          model=DEFAULT_MODEL)
def make_monot5(context: RerankContext, model: str = DEFAULT_MODEL, batch_size: Any = None,
                max_length: Any = None, device: str | None = None, precision: str | None = None,
                threads: Any = None, true_token: str = "true", false_token: str = "false",
                true_id: Any = None, false_id: Any = None, **unknown: Any) -> MonoT5Reranker:
    tu.reject_unknown("monot5", unknown)
    return MonoT5Reranker(
        model, batch_size=tu.parse_int("batch_size", batch_size), max_length=tu.parse_int("max_length", max_length),
        device=device, precision=precision, threads=tu.parse_int("threads", threads),
        true_token=true_token, false_token=false_token, true_id=tu.parse_int("true_id", true_id, minimum=0),
        false_id=tu.parse_int("false_id", false_id, minimum=0), context_device=context.device)
