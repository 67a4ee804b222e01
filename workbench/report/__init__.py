"""Reporting: the leaderboard CSV (one row per dataset, system and slice), the report
(sliced CSV, Markdown summary, slice plot) and its plots."""
from .leaderboard import DEFAULT_LEADERBOARD, format_table, read_leaderboard, upsert_rows
from .plots import plot_slices
from .summary import summary_markdown, write_report

__all__ = ["DEFAULT_LEADERBOARD", "format_table", "plot_slices", "read_leaderboard", "summary_markdown",
           "upsert_rows", "write_report"]
