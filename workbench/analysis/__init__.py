"""Analysis: query types (rules with reasons, label files) and per-query comparison of two
systems (where B wins and loses against A, with the passages each put on top)."""
from .compare import Comparison, compare_runs, format_comparison, per_query_deltas, top_passages
from .query_types import EXPLORATORY, LABELS, QA, SLICES, classify, load_query_types

__all__ = ["Comparison", "EXPLORATORY", "LABELS", "QA", "SLICES", "classify", "compare_runs", "format_comparison",
           "load_query_types", "per_query_deltas", "top_passages"]
