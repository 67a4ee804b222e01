"""Rankers that read a (query, passage) pair and output one score: the models fine-tuned here.

* :class:`EncoderRanker` (RankT5-Enc style): a Hugging Face encoder (BERT-style, or the encoder
  of a T5 checkpoint) -> pooling -> dropout -> linear head -> one score. ``masked_mean`` pooling
  (the default: T5 has no [CLS] token) or ``cls``. With ``cls`` on a BERT-style body the model
  *is* an ``AutoModelForSequenceClassification`` (one label; its pooler, dropout and classifier
  are the pooling and head), saved as such so it loads unchanged in sentence-transformers'
  ``CrossEncoder`` and in the ``cross-encoder:<path>`` reranker.
* :class:`EncoderDecoderRanker` (monoT5 / RankT5-EncDec): score = the logit of a chosen token
  (``true``) at the first decoder step; saved as a T5 checkpoint that ``monot5:<path>`` loads.

A saved ranker directory holds the transformer files, the tokenizer and ``ranker.json`` (kind,
pooling, template, head); ``masked_mean`` rankers also ``ranker_head.safetensors``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..core.errors import WorkbenchError
from .dense import pool

MODELS_ENV = "WORKBENCH_MODELS"
RANKER_FILE = "ranker.json"
HEAD_FILE = "ranker_head.safetensors"
MONOT5_TEMPLATE = "Query: {query} Document: {passage} Relevant:"
POOLINGS = ("masked_mean", "cls")


def models_root() -> Path:
    """Where trained models live: ``$WORKBENCH_MODELS`` or ``./models``."""
    import os

    return Path(os.environ.get(MODELS_ENV) or "models")


def _is_t5(config: Any) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


class EncoderRanker(nn.Module):
    """Encoder -> pooling -> dropout -> linear head; ``forward`` returns ``[N]`` scores."""

    kind = "encoder"

    def __init__(self, directory: str | Path, pooling: str = "masked_mean", dropout: float = 0.1,
                 head_state: dict[str, torch.Tensor] | None = None):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, T5EncoderModel

        if pooling not in POOLINGS:
            raise WorkbenchError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
        self.pooling = pooling
        self.t5 = _is_t5(config)
        self.classifier_model = None
        if pooling == "cls" and not self.t5:
            self.classifier_model = AutoModelForSequenceClassification.from_pretrained(
                str(directory), num_labels=1, local_files_only=True, dtype=torch.float32)
            self.body = self.classifier_model.base_model
            return
        model_class = T5EncoderModel if self.t5 else AutoModel
        self.body = model_class.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
        hidden = int(getattr(config, "hidden_size", None) or config.d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)
        if head_state is not None:
            self.head.load_state_dict(head_state)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and not self.t5:
            inputs["token_type_ids"] = token_type_ids
        if self.classifier_model is not None:
            return self.classifier_model(**inputs).logits[:, 0]
        hidden = self.body(**inputs).last_hidden_state
        pooled = pool(hidden.float(), attention_mask, "cls" if self.pooling == "cls" else "masked_mean")
        return self.head(self.dropout(pooled))[:, 0]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by group: ``embeddings``, ``encoder`` (the body's layers) and ``head``."""
        groups: dict[str, list[nn.Parameter]] = {"embeddings": [], "encoder": [], "head": []}
        body_ids = set()
        for name, parameter in self.body.named_parameters():
            body_ids.add(id(parameter))
            groups["embeddings" if "embed" in name or "shared" in name else "encoder"].append(parameter)
        for parameter in self.parameters():
            if id(parameter) not in body_ids:
                groups["head"].append(parameter)
        return groups

    def save(self, directory: str | Path, tokenizer: Any, meta: dict[str, Any]) -> None:
        """Write a checkpoint that :func:`load_ranker` (and, for ``cls``, ``CrossEncoder``) loads."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.classifier_model is not None:
            self.classifier_model.save_pretrained(str(directory))
        else:
            from safetensors.torch import save_file

            self.body.save_pretrained(str(directory))
            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(directory / HEAD_FILE))
        tokenizer.save_pretrained(str(directory))
        kind = "cross-encoder" if self.classifier_model is not None else "encoder"
        (directory / RANKER_FILE).write_text(json.dumps({**meta, "kind": kind, "pooling": self.pooling}, indent=1,
                                                        sort_keys=True, default=str), encoding="utf-8")


class EncoderDecoderRanker(nn.Module):
    """T5 asked whether a passage is relevant: score = logit of ``true`` at the first decoder step."""

    kind = "encoder-decoder"

    def __init__(self, directory: str | Path, true_id: int):
        super().__init__()
        from transformers import T5ForConditionalGeneration

        self.model = T5ForConditionalGeneration.from_pretrained(str(directory), local_files_only=True,
                                                                dtype=torch.float32)
        self.true_id = int(true_id)
        start = self.model.config.decoder_start_token_id
        self.decoder_start_id = int(start if start is not None else self.model.config.pad_token_id)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        decoder = torch.full((input_ids.shape[0], 1), self.decoder_start_id, dtype=torch.long, device=input_ids.device)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder,
                            use_cache=False).logits
        return logits[:, 0, self.true_id]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups: dict[str, list[nn.Parameter]] = {"embeddings": [], "encoder": [], "head": []}
        seen = set()
        for name, parameter in self.model.named_parameters():
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            group = "embeddings" if "shared" in name or "embed" in name else "head" if "lm_head" in name else "encoder"
            groups[group].append(parameter)
        return groups

    def save(self, directory: str | Path, tokenizer: Any, meta: dict[str, Any]) -> None:
        directory = Path(directory)
        self.model.save_pretrained(str(directory))
        tokenizer.save_pretrained(str(directory))
        (directory / RANKER_FILE).write_text(json.dumps({**meta, "kind": "monot5", "true_id": self.true_id,
                                                        "template": MONOT5_TEMPLATE}, indent=1, sort_keys=True,
                                                       default=str), encoding="utf-8")


def pair_features(tokenizer: Any, queries: Sequence[str], passages: Sequence[str], max_length: int,
                  encoder_decoder: bool) -> dict[str, list[list[int]]]:
    """Token ids of (query, passage) pairs: a pair encoding for encoders, the monoT5 template for T5."""
    if encoder_decoder:
        texts = [MONOT5_TEMPLATE.format(query=q, passage=p) for q, p in zip(queries, passages)]
        encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=False,
                            return_attention_mask=False)
        return {"input_ids": encoded["input_ids"]}
    names = getattr(tokenizer, "model_input_names", [])
    encoded = tokenizer(list(queries), list(passages), truncation="longest_first", max_length=max_length,
                        padding=False, return_attention_mask=False,
                        return_token_type_ids="token_type_ids" in names)
    return {name: encoded[name] for name in ("input_ids", "token_type_ids") if name in encoded}


def read_ranker_meta(directory: str | Path) -> dict[str, Any] | None:
    """``ranker.json`` of a saved ranker, or None when the directory holds none."""
    path = Path(directory) / RANKER_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise WorkbenchError("unreadable ranker.json", path) from None


def load_encoder_ranker(directory: str | Path) -> EncoderRanker:
    """An :class:`EncoderRanker` saved with ``masked_mean`` (or ``cls`` on T5) pooling, with its head."""
    from safetensors.torch import load_file

    meta = read_ranker_meta(directory) or {}
    head = load_file(str(Path(directory) / HEAD_FILE))
    return EncoderRanker(directory, pooling=meta.get("pooling", "masked_mean"), head_state=head).eval()
