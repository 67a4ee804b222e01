"""What every system is: the :class:`System` interface (config, then compute), the run
configuration and computed run it passes to the one produce path, and what a system needs from
the session (:class:`SystemContext`). The grammar and the kinds of system build on it
(:mod:`.systems`, :mod:`.fusion`, :mod:`.tuning`)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from ..data.collection import Collection
from ..data.datasets import Dataset


class SystemContext(Protocol):
    """What a system needs from the experiment's session (:class:`~.produce.Session` provides it)."""

    rerank_depth: int
    progress: bool

    def produce(self, system: "System | str", dataset_name: str) -> Any: ...

    def dataset(self, name: str) -> Dataset: ...

    def collection(self, dataset: Dataset) -> Collection: ...

    def topics_sha256(self, dataset: Dataset) -> str: ...

    def first_stage(self, spec: str, dataset: Dataset) -> Any: ...

    def reranker(self, spec: str, dataset: Dataset) -> Any: ...

    def score_cache(self) -> Any: ...

    def remote(self, spec: str, dataset: Dataset, model: Any) -> Any: ...

    def start_engine_account(self) -> None: ...

    def engine_fields(self) -> dict[str, Any]: ...


@dataclass
class RunConfig:
    """What determines a system's run on a dataset: ``config`` (recorded in the manifest) and
    ``key`` (a stored run with this key is reused). ``inputs`` carries what computing the key
    already produced (candidate runs, models) to :meth:`System.compute`; it is not part of the key."""

    config: dict[str, Any]
    key: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Computed:
    """A computed run, what its leaderboard ``candidates`` column says, and manifest details."""

    run: pd.DataFrame
    candidates: str
    details: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # added to the manifest's config


class System(ABC):
    """A system by name: a first stage, a reranked system, or a fusion of systems."""

    name: str

    @property
    def parts(self) -> tuple["System", ...]:
        """The systems this one is built from."""
        return ()

    @property
    def default_baseline(self) -> str | None:
        """What significance is tested against by default: a reranked system's candidates, a
        fusion's first component; a first stage has none."""
        return None

    @abstractmethod
    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        """The settings and key of this system's run on ``dataset`` (cheap: no retrieval or scoring)."""

    @abstractmethod
    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        """Compute the run (called only when no stored run has ``config.key``)."""


def combine(*values: str | None) -> str:
    """One leaderboard value from the parts of a system (candidates, reranker, fused runs): the
    distinct non-empty values in order, joined by ``+`` (``fp32``, ``bf16+fp32``); "" if none."""
    seen: list[str] = []
    for value in values:
        for part in str(value or "").split("+"):
            if part and part not in seen:
                seen.append(part)
    return "+".join(seen)
