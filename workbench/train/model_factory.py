"""The ranker a training configuration names, built on its backbone: the local directory of the
backbone (``minilm``: the packaged all-MiniLM-L6-v2 body, else a model directory the hub resolves
without downloading), one factory per ``architecture`` (encoder, encoder-decoder with its one-token
``true_token``, bi-encoder), and gradient checkpointing switched on in every Hugging Face body of
the ranker. ``transformers`` and the bi-encoder are imported only when they are needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..core.errors import WorkbenchError
from ..models.ranker import EncoderDecoderRanker, EncoderRanker
from .config import TrainConfig


def resolve_backbone(backbone: str) -> Path:
    """A local directory for ``backbone``: ``minilm`` is the packaged all-MiniLM-L6-v2 body."""
    from ..models.dense import minilm_path
    from ..models.hub import resolve_model_dir

    if backbone == "minilm":
        return minilm_path()
    return resolve_model_dir(backbone, "backbone", download=False)


def _encoder_decoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    ids = tokenizer.encode(config.true_token, add_special_tokens=False)
    if len(ids) != 1:
        raise WorkbenchError(f"true_token {config.true_token!r} is not one token for this tokenizer")
    return EncoderDecoderRanker(directory, ids[0])


def _encoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    return EncoderRanker(directory, pooling=config.pooling, dropout=config.dropout)


def _bi_encoder(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    from .biencoder import BiEncoderRanker

    return BiEncoderRanker(directory, pooling=config.pooling, max_length=config.max_length,
                           similarity=config.similarity, scale=config.scale)


#: the rankers a configuration's ``architecture`` can name
ARCHITECTURES: dict[str, Callable[[TrainConfig, Path, Any], torch.nn.Module]] = {
    "encoder": _encoder,
    "encoder-decoder": _encoder_decoder,
    "bi-encoder": _bi_encoder,
}


def build_model(config: TrainConfig, directory: Path, tokenizer: Any) -> torch.nn.Module:
    """The ranker of ``config.architecture`` on the backbone in ``directory``."""
    return ARCHITECTURES[config.architecture](config, directory, tokenizer)


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Gradient checkpointing in every Hugging Face body of ``model`` (non-reentrant: works with
    several forward calls per step and parameters without gradients)."""
    from transformers import PreTrainedModel

    bodies = [m for m in model.modules() if isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing]
    if not bodies:
        raise WorkbenchError("gradient_checkpointing = true, but the backbone does not support it")
    for body in bodies:  # transformers >= 5.x names it activation checkpointing (the old name is deprecated)
        if hasattr(body, "activation_checkpointing_enable"):
            body.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
