"""Declarative training configurations (TOML or YAML files under ``configs/``).

    name = "minilm-hybrid"
    backbone = "minilm"            # a hub id, a local path, or "minilm" (the packaged all-MiniLM-L6-v2 body)
    loss = "hybrid"
    [loss_options]
    weight = 0.5
    cap = 5.0

A bi-encoder (``architecture = "bi-encoder"``) trains with every list loss too, through the same loop:
its score is ``scale`` x the cosine (``similarity = "dot"``: dot product) of the query's and the
passage's vectors; ``loss = "infonce"`` (bi-encoder only) adds every other list's candidates of the
batch as in-batch negatives::

    architecture = "bi-encoder"
    loss = "listwise"
    scale = 20.0          # 1 / temperature

Every field has a default (:class:`TrainConfig`); an unknown field is an error naming it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError, first_line
from .losses import LOSSES

#: the in-batch contrastive loss, only for architectures that encode queries and passages apart
INFONCE = "infonce"
ARCHITECTURES = ("encoder", "encoder-decoder", "bi-encoder")
#: options that only a bi-encoder reads; left out of other architectures' keys (which predate them)
BI_ENCODER_FIELDS = ("similarity", "scale")
#: fields added after runs were trained, with their defaults: left out of the key at the default, so
#: existing checkpoints keep their keys
LATER_FIELDS = {"gradient_accumulation": 1, "gradient_checkpointing": False}
#: the training data a configuration names (:mod:`.sources`; later fields too): with ``train`` there are no
#: cross-year folds, one model (fold ``train``)
SOURCE_FIELDS = {"train": None, "negatives": None, "negatives_depth": 30, "validation_source": None,
                 "validation_queries": 500, "evaluate_on": []}
LATER_FIELDS.update(SOURCE_FIELDS)


@dataclass
class TrainConfig:
    """Everything that determines a training run."""

    name: str = "minilm-hybrid"
    backbone: str = "minilm"
    architecture: str = "encoder"          # encoder (RankT5-Enc) | encoder-decoder (monoT5 / RankT5-EncDec)
                                           # | bi-encoder (vectors encoded apart, scale x cosine)
    pooling: str = "masked_mean"           # masked_mean | cls (encoder)
    dropout: float = 0.1
    true_token: str = "true"               # encoder-decoder: the token whose first-step logit is the score
    loss: str = "hybrid"
    similarity: str = "cosine"             # bi-encoder: cosine | dot
    scale: float = 20.0                    # bi-encoder: score = scale x similarity (1 / temperature)
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
    gradient_accumulation: int = 1         # micro-batches per optimizer step (each loss weighted by its share of
                                           # the step's lists: one step over lists_per_batch lists, in less memory)
    gradient_checkpointing: bool = False   # recompute the backbone's activations in backward (less memory)
    train: list[str] | None = None         # training datasets with qrels (built-in, declared, irds:<id>): one model
    negatives: str | None = None           # irds:<id> docpairs' negatives | a first stage spec (bm25:index=...)
                                           # searched over the training queries; default: the dataset's candidate run
    negatives_depth: int = 30              # negatives per training query (validation: candidates per query)
    validation_source: str | None = None   # a dataset sampled for validation; default: held-out training queries
    validation_queries: int = 500          # validation queries sampled (held out: at most this many per source)
    evaluate_on: list[str] = field(default_factory=list)  # datasets the model is for: no training query may be theirs

    def __post_init__(self) -> None:
        if self.loss not in LOSSES and self.loss != INFONCE:
            raise WorkbenchError(f"unknown loss {self.loss!r}; losses: {', '.join(LOSSES)}, {INFONCE} (bi-encoder)")
        if self.architecture not in ARCHITECTURES:
            raise WorkbenchError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}")
        # in-batch negatives need passages scored apart from the query: a cross-encoder would have to read
        # every (query, other query's passage) pair of the batch
        if self.loss == INFONCE and self.architecture != "bi-encoder":
            raise WorkbenchError(f"loss = \"{INFONCE}\" needs architecture = \"bi-encoder\" (in-batch negatives are "
                                 f"scored from vectors encoded apart), not {self.architecture!r}")
        if self.loss == INFONCE and self.loss_options:
            raise WorkbenchError(f"loss = \"{INFONCE}\" takes no [loss_options] (got {', '.join(self.loss_options)}); "
                                 "the batch is lists_per_batch lists of list_size candidates, the scale is scale")
        if self.similarity not in ("cosine", "dot"):
            raise WorkbenchError(f"similarity must be cosine or dot, not {self.similarity!r}")
        if float(self.scale) <= 0:
            raise WorkbenchError("scale must be positive")
        if self.pooling not in ("masked_mean", "cls"):
            raise WorkbenchError(f"pooling must be masked_mean or cls, not {self.pooling!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise WorkbenchError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        for name in ("epochs", "lists_per_batch", "pairs_per_forward", "max_length", "gradient_accumulation"):
            if int(getattr(self, name)) < 1:
                raise WorkbenchError(f"{name} must be at least 1")
        if self.train is not None:
            if isinstance(self.train, str):
                self.train = [self.train]
            if not self.train or not all(isinstance(name, str) and name for name in self.train):
                raise WorkbenchError("train must name one or more datasets, e.g. "
                                     "train = [\"irds:msmarco-passage/train/judged\"]")
        elif any(getattr(self, name) != SOURCE_FIELDS[name]
                 for name in ("negatives", "validation_source", "evaluate_on")):
            raise WorkbenchError("negatives, validation_source and evaluate_on go with train = [...] (the datasets "
                                 "trained on); the cross-year folds choose their own")
        for name in ("negatives_depth", "validation_queries"):
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
            raise WorkbenchError(f"cannot parse the configuration: {first_line(error)}", path) from None
        if not isinstance(values, dict):
            raise WorkbenchError("the configuration must be a table of options", path)
        return cls.from_dict(values, path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """What a resumed run must agree with (everything but bookkeeping)."""
        values = {k: v for k, v in self.to_dict().items()
                  if k not in ("name", "checkpoint_every", "threads", "folds")
                  and not (k in BI_ENCODER_FIELDS and self.architecture != "bi-encoder")
                  and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
        return json.dumps(values, sort_keys=True, default=str)
