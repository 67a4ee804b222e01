"""The system-name grammar, in one place. A system is a value parsed once from its name::

    system    := reranked | fusion | first
    reranked  := system "+" reranker            split at the last "+" outside brackets
    fusion    := method [":" options] "[" system ("|" system)+ "]"      every ranx fusion method
    first     := a first-stage spec: bm25-mini[:k1=..,b=..,k=..] | official-<name> | run:<path>
                 | dense-mini[:encoder=..,index=..,k=..] | splade-mini[:..] | a plugin's name
                 | a first-stage spec with a grid and tune=... (k1=0.6;0.9,tune=other-year)

``run:<path>`` naming an existing file is taken whole, so a path may contain ``+``. Chains
such as ``a+b+c`` rerank ``a+b`` by ``c``. Fusion (:mod:`.fusion`) is ranx ``fuse`` by any of its
methods and normalisations: ``rrf`` is reciprocal-rank fusion (k=60), ``combsum``/``combmnz`` fuse
min-max normalised scores, ``wsum:norm=min-max,tune=other-year[a|b]`` interpolates with weights
tuned on the other year's queries (:mod:`.tuning`).

Every system knows what determines its run (:meth:`System.config`: the settings and the key
a stored run must carry to be reused) and how to compute it (:meth:`System.compute`);
:func:`workbench.experiment.produce.produce` is the one path that reuses or computes, saves
and writes the manifest.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.cache import fingerprint
from ..core.errors import WorkbenchError
from ..core.options import split_top_level
from ..data.datasets import Dataset
from .fusion import FusedSystem, parse_fusion_head, split_fusion
from .system_base import Computed, RunConfig, System, SystemContext, combine
from .tuning import TunedFirstStageSystem, tuning_requested


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
        head, parts = fusion
        spec = parse_fusion_head(head, len(parts), name)
        components = tuple(parse_system(part) for part in parts)
        if spec.tuning is not None:
            for tuned in (inner for part in components for inner in _tuned_within(part)):
                raise WorkbenchError(f"{name!r}: its component {tuned.name!r} is tuned too; nested tuning is refused "
                                     "(the outer choice would read runs tuned on the queries it evaluates): "
                                     "fix the component's parameters")
        return FusedSystem(name, head, components, spec)
    if tuning_requested(name):
        return TunedFirstStageSystem.parse(name)
    return FirstStageSystem(name, name)


def _tuned_within(system: System):
    """The tuned systems ``system`` is or is built from."""
    if isinstance(system, TunedFirstStageSystem) or (isinstance(system, FusedSystem) and system.spec.tuning):
        yield system
    for part in system.parts:
        yield from _tuned_within(part)


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
