"""The system-name grammar, in one place. A system is a value parsed once from its name::

    system    := reranked | fusion | first
    reranked  := system "+" reranker            split at the last "+" outside brackets
    fusion    := ("rrf" | "combsum" | "combmnz") "[" system ("|" system)+ "]"
    first     := a first-stage spec: bm25-mini[:k1=..,b=..,k=..] | official-<name> | run:<path>
                 | dense-mini[:encoder=..,index=..,k=..] | splade-mini[:..] | a plugin's name

``run:<path>`` naming an existing file is taken whole, so a path may contain ``+``. Chains
such as ``a+b+c`` rerank ``a+b`` by ``c``. ``rrf`` is reciprocal-rank fusion (k=60) with ranx
``fuse``; ``combsum``/``combmnz`` fuse min-max normalised scores.

Every system knows what determines its run (:meth:`System.config`: the settings and the key
a stored run must carry to be reused) and how to compute it (:meth:`System.compute`);
:func:`workbench.experiment.produce.produce` is the one path that reuses or computes, saves
and writes the manifest.
"""
from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..core.options import split_top_level
from ..data.collection import Collection
from ..data.datasets import Dataset

FUSION_METHODS = {  # system prefix -> (ranx fuse method, ranx normalisation)
    "rrf": ("rrf", None),
    "combsum": ("sum", "min-max"),
    "combmnz": ("mnz", "min-max"),
}
RRF_K = 60


class SystemContext(Protocol):
    """What a system needs from the experiment's session (:class:`~.produce.Session` provides it)."""

    rerank_depth: int
    progress: bool

    def produce(self, system: "System | str", dataset_name: str) -> Any: ...

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


@dataclass(frozen=True)
class FirstStageSystem(System):
    """Candidates from a registered first stage (``bm25-mini``, ``official-bm25``, ``run:<path>``, ...)."""

    name: str
    spec: str

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        stage = session.first_stage(self.spec, dataset)
        topics_sha256 = session.topics_sha256(dataset)
        return RunConfig(stage.run_config(topics_sha256), stage.run_key(topics_sha256), {"stage": stage})

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        stage = config.inputs["stage"]
        session.start_engine_account()
        run = stage.search(dataset.judged_topics)
        return Computed(run, stage.candidates, {**stage.details(), **session.engine_fields()})


@dataclass(frozen=True)
class RerankedSystem(System):
    """The top ``depth`` of ``candidates`` reranked by a registered reranker."""

    name: str
    candidates: System
    reranker: str

    @property
    def parts(self) -> tuple[System, ...]:
        return (self.candidates,)

    @property
    def default_baseline(self) -> str | None:
        return self.candidates.name

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        candidates = session.produce(self.candidates, dataset.name)
        collection = candidate_texts(session, self.candidates, dataset)
        started = time.perf_counter()
        reranker = session.reranker(self.reranker, dataset)
        model_seconds = time.perf_counter() - started
        # The reranker's fingerprint (model files, precision, options) is part of the key, so a
        # changed model or preset never reuses a stale run.
        settings = {"type": "rerank", "reranker": self.reranker, "reranker_fingerprint": reranker.fingerprint,
                    "depth": session.rerank_depth, "candidates": self.candidates_text,
                    "candidates_sha256": candidates.manifest["sha256"],
                    "collection_sha256": collection.fingerprint, "topics_sha256": session.topics_sha256(dataset)}
        return RunConfig(settings, fingerprint(settings),
                         {"candidates": candidates, "reranker": reranker, "model_load_s": model_seconds})

    @property
    def candidates_text(self) -> str:
        """The candidates' part of the name as written (before the last '+')."""
        return self.name[:len(self.name) - len(self.reranker) - 1]

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        from ..rerankers.rerank import rerank_run

        candidates, reranker = config.inputs["candidates"], config.inputs["reranker"]
        encoder = getattr(reranker, "encoder", None)
        encoded_before = encoder.vector_cache.encoded if encoder is not None else 0
        session.start_engine_account()  # the candidates' work is in their own manifest
        texts = candidate_texts(session, self.candidates, dataset)
        run, stats = rerank_run(candidates.run, dataset.judged_topics, texts, reranker, depth=session.rerank_depth,
                                cache=session.score_cache(), progress=session.progress, desc=f"{dataset.name} {self.name}",
                                remote=session.remote(self.reranker, dataset, reranker))
        details = {"candidate_run": str(candidates.path), "model_ids": reranker.config(),
                   "reranker_fingerprint": reranker.fingerprint, "wall_time_s": round(stats.seconds, 3),
                   "model_load_s": round(config.inputs["model_load_s"], 3), "pairs": stats.pairs,
                   "pairs_scored": stats.scored, "cache_hits": stats.cache_hits, "cache_misses": stats.scored,
                   "rerank_s": round(stats.seconds, 3)}
        if getattr(reranker, "choice", None) is not None:  # backend=auto's measured choice of an exact path
            from ..models.calibration import describe_choice

            details.update(describe_choice(reranker.choice))
        numerics = reranker.numerics()
        details["precision"] = combine(candidates.manifest.get("precision"), numerics["precision"])
        details["backend"] = combine(candidates.manifest.get("backend"), numerics["backend"])
        if encoder is not None:  # passages this run encoded (the rest came from the vector cache)
            details["passages_encoded"] = encoder.vector_cache.encoded - encoded_before
        if reranker.comparability:
            details["comparability"] = reranker.comparability
        if dataset.texts_note:  # e.g. title and body joined, first max_length tokens read (FirstP)
            details["texts"] = dataset.texts_note
        details.update(session.engine_fields())
        return Computed(run, candidates.manifest.get("candidates", self.candidates.name), details,
                        {"reranker_config": reranker.config()})


def candidate_texts(session: SystemContext, system: System, dataset: Dataset) -> Any:
    """Where the texts of ``system``'s candidates come from: the first stage's own documents (a
    prebuilt index's stored raw texts), else the dataset's collection."""
    while isinstance(system, RerankedSystem):
        system = system.candidates
    if isinstance(system, FirstStageSystem):
        documents = session.first_stage(system.spec, dataset).documents()
        if documents is not None:
            return documents
    return session.collection(dataset)


@dataclass(frozen=True)
class FusedSystem(System):
    """Systems fused with ranx ``fuse``: ``rrf[a|b]`` (k=60), ``combsum[...]``, ``combmnz[...]``."""

    name: str
    method: str
    components: tuple[System, ...]

    @property
    def parts(self) -> tuple[System, ...]:
        return self.components

    @property
    def default_baseline(self) -> str | None:
        return self.components[0].name

    def config(self, session: SystemContext, dataset: Dataset) -> RunConfig:
        stored = [session.produce(part, dataset.name) for part in self.components]
        fuse_method, norm = FUSION_METHODS[self.method]
        settings = {"type": "fusion", "method": fuse_method, "norm": norm,
                    "rrf_k": RRF_K if self.method == "rrf" else None,
                    "components": [part.name for part in self.components],
                    "components_sha256": [c.manifest["sha256"] for c in stored]}
        return RunConfig(settings, fingerprint(settings), {"stored": stored})

    def compute(self, session: SystemContext, dataset: Dataset, config: RunConfig) -> Computed:
        from ranx import fuse

        from ..data.trec import sort_run
        from ..evaluation.metrics import to_ranx_run

        stored = config.inputs["stored"]
        fuse_method, norm = FUSION_METHODS[self.method]
        common = set.intersection(*(set(c.run["qid"]) for c in stored))
        # RRF reads ranks: ties ranked as trec_eval ranks them; CombSUM/CombMNZ read scores
        runs = [to_ranx_run(c.run[c.run["qid"].isin(common)], name=part.name, trec_eval_order=norm is None)
                for c, part in zip(stored, self.components)]
        fused = fuse(runs, norm=norm, method=fuse_method).to_dataframe()
        run = sort_run(fused.rename(columns={"q_id": "qid", "doc_id": "docno"}))
        details = {"precision": combine(*(c.manifest.get("precision") for c in stored)),
                   "backend": combine(*(c.manifest.get("backend") for c in stored))}
        return Computed(run, f"fusion of {', '.join(part.name for part in self.components)}", details)


def combine(*values: str | None) -> str:
    """One leaderboard value from the parts of a system (candidates, reranker, fused runs): the
    distinct non-empty values in order, joined by ``+`` (``fp32``, ``bf16+fp32``); "" if none."""
    seen: list[str] = []
    for value in values:
        for part in str(value or "").split("+"):
            if part and part not in seen:
                seen.append(part)
    return "+".join(seen)


def split_reranker(system: str) -> tuple[str, str] | None:
    """Split ``<candidates>+<reranker>`` at the last '+' outside brackets; None if not reranked."""
    depth = 0
    for position in range(len(system) - 1, -1, -1):
        char = system[position]
        if char == "]":
            depth += 1
        elif char == "[":
            depth -= 1
        elif char == "+" and depth == 0:
            return system[:position], system[position + 1:]
    return None


def split_fusion(system: str) -> tuple[str, list[str]] | None:
    """``rrf[a|b]`` -> ("rrf", ["a", "b"]); None if ``system`` is not a fusion."""
    name, bracket, rest = system.partition("[")
    if not bracket or not rest.endswith("]") or name not in FUSION_METHODS:
        return None
    parts, depth, current = [], 0, ""
    for char in rest[:-1]:
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "[") - (char == "]")
        current += char
    parts.append(current)
    parts = [part.strip() for part in parts]
    if len(parts) < 2 or not all(parts):
        raise WorkbenchError(f"fusion {system!r} needs at least two systems separated by '|'")
    return name, parts


def parse_system(name: str | System) -> System:
    """The :class:`System` a name stands for (a System is returned as it is)."""
    if isinstance(name, System):
        return name
    name = name.strip()
    if not name:
        raise WorkbenchError("empty system name")
    if name.startswith("run:") and Path(name[len("run:"):]).is_file():
        return FirstStageSystem(name, name)
    reranked = split_reranker(name)
    if reranked:
        candidates, reranker = reranked
        if not reranker.strip():
            raise WorkbenchError(f"system {name!r} ends with '+': name a reranker after it")
        return RerankedSystem(name, parse_system(candidates), reranker)
    fusion = split_fusion(name)
    if fusion:
        method, parts = fusion
        return FusedSystem(name, method, tuple(parse_system(part) for part in parts))
    return FirstStageSystem(name, name)


def default_baseline(system: str) -> str | None:
    """The default baseline of a system name (see :attr:`System.default_baseline`)."""
    return parse_system(system).default_baseline


def is_reranked(system: str) -> bool:
    """Whether a system name is a reranker over candidates (``<candidates>+<reranker>``)."""
    return isinstance(parse_system(system), RerankedSystem)


_OPTION_CONTINUATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")


def split_systems(text: str) -> list[str]:
    """A list of systems as written on a command line (``--systems``, ``SYSTEMS=``).

    Systems are separated by commas or whitespace, but a system's option list keeps its commas:
    ``bm25-mini:k1=0.82,b=0.68,official-bm25`` is two systems, because ``b=0.68`` (a ``key=value``
    after a system with a ``:`` option list) continues the options. Separators inside brackets
    (``rrf[a|b:x=1,y=2]``) never split, and a whole system may be bracketed to keep it together
    whatever it contains: ``[run:/tmp/my,run.trec]``.
    """
    tokens, depth = split_top_level(text, "[", "]")
    if depth:
        raise WorkbenchError(f"unbalanced '[' in the system list {text!r}")
    systems: list[str] = []
    for token in tokens:
        if token.startswith("[") and token.endswith("]") and split_fusion(token) is None:
            systems.append(token[1:-1].strip())
            continue
        if systems and _OPTION_CONTINUATION.match(token) and _has_open_options(systems[-1]):
            systems[-1] += "," + token
            continue
        systems.append(token)
    return [system for system in systems if system]


def _has_open_options(system: str) -> bool:
    """Whether the last component of ``system`` (after its last top-level '+') has a ':' option list."""
    reranked = split_reranker(system)
    last = reranked[1] if reranked else system
    return ":" in last and not last.startswith("run:")
