"""The risk-sensitive measures as the terminal table and the HTML report show them: URisk at one
alpha with TRisk's verdict as a mark in the terminal; per dataset in the report, URisk and TRisk at
every alpha against the baseline and GeoRisk against every system on the board (slice ``all``).
The numbers come from the leaderboard's columns (:mod:`workbench.evaluation.risk`)."""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from ..evaluation.risk import GAIN, RISK_ALPHAS, RISKIER, TRISK_LEVEL

#: TRisk's verdict as a mark: significantly riskier than the baseline / a significant gain even so
RISK_MARKS = {RISKIER: "▼", GAIN: "▲"}
#: the alpha the terminal table shows (a loss weighs three times a gain)
TERMINAL_RISK_ALPHA = 2


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if pd.isna(number) else number


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def terminal_risk_columns(board: pd.DataFrame, headline: Iterable[str],
                          alpha: float = TERMINAL_RISK_ALPHA) -> dict[str, list[str]]:
    """``{"urisk2_<m>": cells}`` for each headline metric the board has URisk of: URisk at
    ``alpha`` with :data:`RISK_MARKS` where TRisk is significant."""
    columns = {}
    for metric in headline:
        tag = f"a{alpha:g}_{metric}"
        if f"urisk_{tag}" not in board.columns:
            continue
        marks = board.get(f"trisk_sig_{tag}", pd.Series("", index=board.index))
        columns[f"urisk{alpha:g}_{metric}"] = [
            "" if _number(value) is None else f"{_number(value):+.4f}{RISK_MARKS.get(_text(mark), '')}"
            for value, mark in zip(board[f"urisk_{tag}"], marks)]
    return columns


def risk_tables(board: pd.DataFrame, headline: Iterable[str],
                alphas: Iterable[float] = RISK_ALPHAS) -> dict[str, Any]:
    """What the report's risk section of a dataset shows (its rows of slice ``all``): ``alphas``;
    ``baseline`` rows (system, baseline, metric, one cell per alpha: URisk, TRisk, p, verdict,
    mark) and ``georisk`` rows (system, one value per metric and alpha, with ``georisk_columns``
    naming them). Empty when the board has no risk column."""
    alphas = list(alphas)
    rows = board[board["slice"] == "all"] if "slice" in board.columns else board
    metrics = [m for m in headline if any(f"{kind}_a{a:g}_{m}" in board.columns
                                          for kind in ("urisk", "georisk") for a in alphas)]
    against, geo = [], []
    for record in rows.to_dict("records"):
        if _text(record.get("baseline")):
            for metric in metrics:
                cells = [_risk_cell(record, alpha, metric) for alpha in alphas]
                if any(cell["urisk"] is not None for cell in cells):
                    against.append({"system": record["system"], "baseline": record["baseline"], "metric": metric,
                                    "cells": cells})
        values = [_number(record.get(f"georisk_a{alpha:g}_{metric}")) for metric in metrics for alpha in alphas]
        if any(value is not None for value in values):
            geo.append({"system": record["system"], "values": values})
    if not against and not geo:
        return {}
    return {"alphas": alphas, "metrics": metrics, "baseline": against, "georisk": geo,
            "georisk_columns": [(metric, alpha) for metric in metrics for alpha in alphas],
            "level": TRISK_LEVEL, "marks": RISK_MARKS}


def _risk_cell(record: dict[str, Any], alpha: float, metric: str) -> dict[str, Any]:
    tag = f"a{alpha:g}_{metric}"
    verdict = _text(record.get(f"trisk_sig_{tag}"))
    return {"urisk": _number(record.get(f"urisk_{tag}")), "trisk": _number(record.get(f"trisk_{tag}")),
            "p": _number(record.get(f"trisk_p_{tag}")), "verdict": verdict, "mark": RISK_MARKS.get(verdict, "")}
