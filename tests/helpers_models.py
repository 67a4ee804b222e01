"""Tiny random models and offline tokenizers saved to temporary directories, for the neural
reranker tests (cross-encoder, monoT5, dense, SPLADE); plus their shared ``offline`` fixture.

A test module uses the fixture by importing it: ``from helpers_models import offline``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: single characters and their WordPiece continuations: any lower-case text tokenizes without [UNK]
CHARACTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,?'-")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No Hugging Face hub, and a cache of the test's own."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))


def write_bert_tokenizer(directory: Path, words: Sequence[str], characters: bool = False,
                         model_max_length: int | None = None) -> Any:
    """A WordPiece tokenizer over ``words`` (and, with ``characters``, single characters and their
    ``##`` pieces) saved to ``directory``; returns it.

    The vocabulary is passed as a dict: transformers 5 ignores a ``vocab_file=`` argument and
    would build a tokenizer of the special tokens alone (every word ``[UNK]``).
    """
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = [*SPECIAL_TOKENS, *words]
    if characters:
        vocab += [*CHARACTERS, *("##" + ch for ch in CHARACTERS)]
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(dict.fromkeys(vocab))}, **extra)
    assert len(tokenizer) == len(dict.fromkeys(vocab))
    tokenizer.save_pretrained(directory)
    return tokenizer


def write_tiny_bert(directory: Path, words: Sequence[str], head: str = "classification", seed: int = 0,
                    characters: bool = False, model_max_length: int | None = None,
                    st_config: dict[str, Any] | None = None, **config: Any) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and its tokenizer (see
    ``write_bert_tokenizer``) saved to ``directory``.

    ``head``: ``classification`` (BertForSequenceClassification, ``num_labels`` in ``config``)
    or ``base`` (BertModel); ``config`` overrides BertConfig fields; ``st_config`` is stored as
    ``config.sentence_transformers``.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    tokenizer = write_bert_tokenizer(directory, words, characters, model_max_length)
    torch.manual_seed(seed)
    settings = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=48, max_position_embeddings=64)
    bert_config = BertConfig(**{**settings, **config})
    if st_config is not None:
        bert_config.sentence_transformers = st_config
    model_class = {"classification": BertForSequenceClassification, "base": BertModel}[head]
    model_class(bert_config).eval().save_pretrained(directory)
    return directory


def write_tiny_t5(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised 2+2-layer T5 (d_model 32) with the file-free ByT5 tokenizer."""
    import torch
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = ByT5Tokenizer()
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
                      num_heads=4, decoder_start_token_id=tokenizer.pad_token_id,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    T5ForConditionalGeneration(config).eval().save_pretrained(directory)
    return directory
