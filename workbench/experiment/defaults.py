"""The default experiment (``make eval``): which datasets and systems, and why."""
from __future__ import annotations

DEFAULT_DATASETS = ["dl19", "dl20"]
# The foundation: BM25 over the mini collection and the official full-collection BM25 run,
# each reranked by TF-IDF.
FOUNDATION_SYSTEMS = ["bm25-mini", "official-bm25", "bm25-mini+tfidf", "official-bm25+tfidf"]
# Neural systems over the official BM25 top-100 (comparable with published reranking
# results) and fusion of BM25 with the dense reranker: RRF, and the interpolation reviewers ask
# for (a weighted sum of min-max-normalised scores) with its weights tuned on the other TREC DL
# year's queries, never on the evaluated ones.
TUNED_INTERPOLATION = "wsum:norm=min-max,tune=other-year[official-bm25|official-bm25+dense-minilm]"
NEURAL_SYSTEMS = ["official-bm25+dense-minilm", "official-bm25+splade-tiny",
                  "rrf[official-bm25|official-bm25+dense-minilm]", TUNED_INTERPOLATION]
DEFAULT_SYSTEMS = FOUNDATION_SYSTEMS + NEURAL_SYSTEMS
# Not in the default (``make eval-all`` adds it): dense retrieval over the mini collection encodes all
# 53k passages on a cold run (most of a cold ``make eval``'s time, about 6 of 8.5 minutes on 2 cores)
# for rows that are not comparable with published figures anyway.
EXTRA_SYSTEMS = ["dense-mini"]

#: The fast paths ``make eval FAST=1`` (``workbench eval --fast``) may put in place of a default
#: reranker: only a path ``workbench check-precision`` found safe on DL19, DL20 and dev600 (no
#: headline metric moved by more than 0.002, top-10 order changed on at most 2% of queries), as
#: recorded in ``docs/precision/<reranker>.json`` (a test checks every entry against it). The
#: fast system's name says what it computes. Plain ``make eval`` never uses them.
FAST_PATHS: dict[str, tuple[str, str]] = {}  # reranker -> (fast reranker spec, check-precision path label)


def fast_systems(systems: list[str]) -> list[str]:
    """``systems`` with every reranker that has a safe fast path replaced by it (names change)."""
    from .systems import FirstStageSystem, FusedSystem, RerankedSystem, parse_system

    def rebuild(system) -> str:
        if isinstance(system, RerankedSystem):
            fast = FAST_PATHS.get(system.reranker)
            return f"{rebuild(system.candidates)}+{fast[0] if fast else system.reranker}"
        if isinstance(system, FusedSystem):
            return f"{system.method}[{'|'.join(rebuild(part) for part in system.components)}]"
        assert isinstance(system, FirstStageSystem)
        return system.name

    return [rebuild(parse_system(system)) for system in systems]
