"""Embeddings and their diagnostics: :func:`embed` (any pooling, one implementation shared with the
dense reranker), :func:`diagnose` (range, anisotropy, relevance separation, group separation,
nearest neighbours, plots) and :func:`check_pairs` (sentence-pair cosines against expected values).
"""
from .diagnostics import Embedded, JudgedSet, judged_set, measure
from .embed import Embedder, embed, embedder
from .pairs import SentencePair, check_pairs, read_pairs
from .report import DiagnosticsReport, diagnose, write_diagnostics_report

__all__ = ["DiagnosticsReport", "Embedded", "Embedder", "JudgedSet", "SentencePair", "check_pairs", "diagnose",
           "embed", "embedder", "judged_set", "measure", "read_pairs", "write_diagnostics_report"]
