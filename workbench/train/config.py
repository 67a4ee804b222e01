"""Declarative training configurations (TOML or YAML files under ``configs/``).

    name = "minilm-hybrid"
    backbone = "minilm"            # a hub id, a local path, or "minilm" (the packaged all-MiniLM-L6-v2 body)
    loss = "hybrid"
    [loss_options]
    weight = 0.5
    cap = 5.0

A bi-encoder is trained contrastively (``architecture = "bi-encoder"`` with ``loss = "infonce"``,
only together); its options live in ``[loss_options]`` (declared in :data:`INFONCE_OPTIONS`)::

    architecture = "bi-encoder"
    loss = "infonce"
    [loss_options]
    scale = 20.0          # 1 / temperature
    hard_negatives = 1    # BM25 grade-0 candidates per (query, positive) example
    max_positives = 4     # examples per query at most
    batch_size = 32       # examples per step: the in-batch negatives

Every field has a default (:class:`TrainConfig`); an unknown field is an error naming it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..core.options import Option, parse_options
from .losses import LOSSES

#: the contrastive loss of the bi-encoder (sentence-transformers' MultipleNegativesRankingLoss); not a
#: list loss, so not in LOSSES
INFONCE = "infonce"
ARCHITECTURES = ("encoder", "encoder-decoder", "bi-encoder")

#: ``[loss_options]`` of ``loss = "infonce"``, declared once: parsed (typed, defaults filled in) when
#: the configuration is built, so a resumed run compares the same normalised values
INFONCE_OPTIONS = (
    Option("scale", float, 20.0, minimum=1e-3, help="cosine similarities are multiplied by this (1 / temperature)"),
    Option("temperature", float, None, minimum=1e-4, help="alternative to scale: scale = 1 / temperature"),
    Option("hard_negatives", int, 1, minimum=0, help="BM25 grade-0 candidates added to each (query, positive)"),
    Option("negative_depth", int, 30, minimum=1,
           help="hard negatives are drawn from the first this many grade-0 BM25 candidates"),
    Option("max_positives", int, 4, minimum=1, help="(query, positive) examples per query at most"),
    Option("batch_size", int, 32, minimum=2, help="examples per step; the others' passages are the in-batch negatives"),
)


def infonce_options(given: dict[str, Any]) -> dict[str, Any]:
    """The typed ``[loss_options]`` of the InfoNCE loss; ``temperature`` is folded into ``scale``."""
    values = parse_options(INFONCE_OPTIONS, given, "infonce loss")
    temperature = values.pop("temperature")
    if temperature is not None:
        if "scale" in given:
            raise WorkbenchError("give scale or temperature in [loss_options], not both (scale = 1 / temperature)")
        values["scale"] = 1.0 / temperature
    return values


@dataclass
class TrainConfig:
    """Everything that determines a training run."""

    name: str = "minilm-hybrid"
    backbone: str = "minilm"
    architecture: str = "encoder"          # encoder (RankT5-Enc) | encoder-decoder (monoT5 / RankT5-EncDec)
                                           # | bi-encoder (contrastive, with loss = "infonce")
    pooling: str = "masked_mean"           # masked_mean | cls (encoder)
    dropout: float = 0.1
    true_token: str = "true"               # encoder-decoder: the token whose first-step logit is the score
    loss: str = "hybrid"
    loss_options: dict[str, Any] = field(default_factory=dict)
    folds: list[str] = field(default_factory=lambda: ["dl19", "dl20"])
    sources: list[str] | None = None       # default: the fold's (the other DL year + dev600)
    limit_queries: int | None = None       # per source (smoke tests)
    validation: float = 0.1                # share of training queries held out per source
    epochs: int = 3
    patience: int = 2                      # epochs without validation NDCG@10 gain before stopping
    lists_per_batch: int = 4
    list_size: int = 16                    # candidates sampled per list and step (0: the whole list)
    pairs_per_forward: int = 32            # length-sorted chunks of one step's pairs
    max_length: int = 192
    lr_embeddings: float = 5e-6
    lr_encoder: float = 5e-5
    lr_head: float = 2e-4
    beta2: float = 0.97
    weight_decay: float = 0.01
    warmup: float = 0.1                    # share of the steps
    clip: float = 1.0
    precision: str = "auto"                # auto: bf16 autocast where the device computes it natively; fp32
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 25             # steps between resumable checkpoints (and at each epoch end)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES and self.loss != INFONCE:
            raise WorkbenchError(f"unknown loss {self.loss!r}; losses: {', '.join(LOSSES)}, {INFONCE} (bi-encoder)")
        if self.architecture not in ARCHITECTURES:
            raise WorkbenchError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}")
        # a bi-encoder scores queries and passages apart: the list losses over pair scores do not apply to
        # it, and InfoNCE's in-batch negatives need vectors encoded apart
        if (self.architecture == "bi-encoder") != (self.loss == INFONCE):
            raise WorkbenchError(f"architecture = \"bi-encoder\" goes with loss = \"{INFONCE}\" and only with it "
                                 f"(got architecture {self.architecture!r}, loss {self.loss!r})")
        if self.loss == INFONCE:
            self.loss_options = infonce_options(dict(self.loss_options or {}))
        if self.pooling not in ("masked_mean", "cls"):
            raise WorkbenchError(f"pooling must be masked_mean or cls, not {self.pooling!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise WorkbenchError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        for name in ("epochs", "lists_per_batch", "pairs_per_forward", "max_length"):
            if int(getattr(self, name)) < 1:
                raise WorkbenchError(f"{name} must be at least 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str | Path = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise WorkbenchError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                                 where)
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) configuration."""
        path = Path(path)
        if not path.is_file():
            raise WorkbenchError("training configuration not found", path)
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                import tomllib

                values = tomllib.loads(text)
        except Exception as error:  # noqa: BLE001 - a syntax error is one line
            raise WorkbenchError(f"cannot parse the configuration: {str(error).splitlines()[0]}", path) from None
        if not isinstance(values, dict):
            raise WorkbenchError("the configuration must be a table of options", path)
        return cls.from_dict(values, path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """What a resumed run must agree with (everything but bookkeeping)."""
        values = {k: v for k, v in self.to_dict().items()
                  if k not in ("name", "checkpoint_every", "threads", "folds")}
        return json.dumps(values, sort_keys=True, default=str)
