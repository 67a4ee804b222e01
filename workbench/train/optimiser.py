"""How the weights move: the three parameter groups (embeddings, encoder, head) every ranker
declares, AdamW over them with a learning rate each and the configured beta2 and weight decay, the
learning-rate schedule (linear warmup, then linear decay to 0), and each group's relative drift from
its initial weights, which the trainer logs after every epoch.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .config import TrainConfig

#: the parameter groups, each with its learning rate
GROUPS = ("embeddings", "encoder", "head")


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the three parameter groups, each with its learning rate (``name`` kept per group)."""
    rates = {"embeddings": config.lr_embeddings, "encoder": config.lr_encoder, "head": config.lr_head}
    groups = [{"params": params, "lr": rates[name], "name": name}
              for name, params in model.parameter_groups().items() if params]
    return torch.optim.AdamW(groups, betas=(0.9, config.beta2), weight_decay=config.weight_decay)


def warmup_linear(total_steps: int, warmup: float) -> Callable[[int], float]:
    """Learning-rate factor: linear from 0 to 1 over the warmup steps, then linearly down to 0."""
    warm = max(1, int(round(warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def parameter_drift(model: torch.nn.Module, initial: dict[str, torch.Tensor]) -> dict[str, float]:
    """Relative parameter drift from the ``initial`` weights (by parameter name) per group:
    ``||w - w0|| / ||w0||`` (a parameter in no group counts as the encoder's)."""
    by_id = {id(p): group for group, params in model.parameter_groups().items() for p in params}
    moved = {g: 0.0 for g in GROUPS}
    size = {g: 0.0 for g in GROUPS}
    for name, parameter in model.named_parameters():
        group = by_id.get(id(parameter), "encoder")
        start = initial[name]
        moved[group] += float((parameter.detach() - start).pow(2).sum())
        size[group] += float(start.pow(2).sum())
    return {g: math.sqrt(moved[g]) / math.sqrt(size[g]) if size[g] else 0.0 for g in GROUPS}
