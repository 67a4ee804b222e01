"""Judged-only (condensed-list) metrics as the terminal table, the HTML report and the Markdown
summary show them beside the standard ones: a judged-only column only where it says something the
standard one does not, and a mark (:data:`JUDGED_DISAGREE_MARK`) on rows whose judged-only delta
against the baseline disagrees with the standard delta in sign or in significance
(:func:`~workbench.evaluation.condensed.judged_disagreement`).
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from ..evaluation.condensed import judged_disagreements, judged_pairs

#: marks a row (or a judged-only value) whose judged-only delta disagrees with the standard one
JUDGED_DISAGREE_MARK = "≠"
JUDGED_DISAGREE_HELP = (f"{JUDGED_DISAGREE_MARK} = the judged-only (condensed-list, trec_eval -J) delta against the "
                        "baseline disagrees with the standard one in sign or in significance: the standard "
                        "difference is partly made of unjudged documents")


def uninformative_judged(board: pd.DataFrame, metrics: Iterable[str]) -> list[str]:
    """The judged-only columns of ``metrics`` equal to their standard column on every row of
    ``board`` (to the 4 decimals shown): every document these rows rank in the cut-off was judged,
    so the column repeats its neighbour."""
    same = []
    for standard, judged in judged_pairs(metrics):
        if standard in board.columns and judged in board.columns and \
                (board[standard].round(4).fillna(-1) == board[judged].round(4).fillna(-1)).all():
            same.append(judged)
    return same


def disagreement_notes(board: pd.DataFrame, metrics: Iterable[str]) -> list[dict[str, str]]:
    """Per row of ``board`` (in order): standard metric -> why its judged-only delta disagrees
    (empty where they agree)."""
    metrics = [m for m in metrics if m in board.columns]
    return [judged_disagreements(record, metrics) for record in board.to_dict("records")]


def terminal_judged_cells(board: pd.DataFrame, metrics: list[str], shown: pd.DataFrame) -> pd.DataFrame:
    """``shown`` (the terminal table's formatted cells) without the uninformative judged-only
    columns and with :data:`JUDGED_DISAGREE_MARK` after a judged-only value whose delta disagrees."""
    shown = shown.drop(columns=uninformative_judged(board, metrics))
    notes = disagreement_notes(board, metrics)
    for standard, judged in judged_pairs(metrics):
        if judged in shown.columns:
            shown[judged] = [cell + (JUDGED_DISAGREE_MARK if standard in note else "")
                             for cell, note in zip(shown[judged], notes)]
    return shown
