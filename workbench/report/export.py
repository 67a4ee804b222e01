"""The leaderboard as a paper's table: LaTeX (booktabs) or Markdown, from the leaderboard CSV alone.

One row per system, one column group per dataset, one column per metric in it. Every value is
the CSV's, rounded per metric; the best value of each column (after rounding, ties included) is
bold; every significance mark is the row's own ``sig_<m>`` against its own ``baseline``: the
CSV's multiple-testing family (dataset, slice, baseline), never recomputed. A table with several
baselines gives each its own symbol (dagger, double dagger, section sign, ...), doubled where the
CSV says ``**``; the legend names them. :mod:`.export_model` builds the table,
:mod:`.export_render` draws it.

    board = read_leaderboard("runs/leaderboard.csv")
    print(export_table(board, "latex", datasets=["dl19", "dl20"], metrics=["ndcg@10", "mrr@10"],
                       digits={"ndcg@10": 3}, ci=True))
"""
from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd

from ..core.errors import WorkbenchError
from .export_model import build_table, parse_digits
from .export_render import render_latex, render_markdown

EXPORT_FORMATS = ("latex", "markdown")

__all__ = ["EXPORT_FORMATS", "export_table", "parse_digits"]


def export_table(board: pd.DataFrame, format: str = "latex", datasets: Iterable[str] | None = None,
                 metrics: Iterable[str] | None = None, slice: str = "all",
                 digits: int | Mapping[str, int] | None = None, ci: bool = False, n: bool = False,
                 systems: Iterable[str] | None = None, caption: str | None = None, label: str | None = None,
                 standalone: bool = False) -> str:
    """The leaderboard ``board`` (as :func:`~.leaderboard.read_leaderboard` reads it) as a LaTeX
    or Markdown table.

    ``datasets`` and ``systems`` choose and order the column groups and rows (default: the
    board's, in its order); ``metrics`` the columns of each dataset (default: each dataset's
    headline metrics, as the terminal table shows them; a dataset shows those of ``metrics`` it
    has values for); ``slice`` the query-type slice. ``digits``: decimals for every metric (an
    int) or per metric (a mapping, ``"*"`` for the rest; default 4, the CSV's). ``ci`` adds each
    value's 95% interval, ``n`` each dataset's number of queries. ``caption`` opens the LaTeX
    caption (written as given) or the Markdown legend; ``label`` is the LaTeX ``\\label``. LaTeX
    needs ``booktabs``; ``standalone=True`` wraps the table in a minimal document that pdflatex
    compiles as is. Bad input (a metric, dataset, system or slice the board lacks, an unknown
    format, an empty board, bad digits) raises a one-line :class:`WorkbenchError`.
    """
    if format not in EXPORT_FORMATS:
        raise WorkbenchError(f"unknown export format {format!r}; known: {', '.join(EXPORT_FORMATS)}")
    table = build_table(board, datasets=datasets, metrics=metrics, slice=slice, digits=digits, ci=ci, n=n,
                        systems=systems)
    if format == "latex":
        return render_latex(table, caption=caption, label=label, standalone=standalone)
    return render_markdown(table, caption=caption)
