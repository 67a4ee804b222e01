"""Evaluation: ranx metrics with per-query values (:mod:`.metrics`), statistics (confidence
intervals, paired tests, Holm correction: :mod:`.stats`) and sliced tables with significance
against baselines (:mod:`.slices`).

The names below are imported from their module when first used, so evaluating a run
(``workbench evaluate``) does not import the statistics (statsmodels, scipy).
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_HOMES = {
    "DEFAULT_METRICS": "metrics", "HEADLINE_METRICS": "metrics", "Evaluation": "metrics",
    "evaluate_run": "metrics", "ranx_metric": "metrics",
    "sliced_table": "slices",
    "georisk": "risk", "trisk": "risk", "urisk": "risk",
    "confidence_interval": "stats", "holm_bonferroni": "stats", "paired_t_test": "stats",
    "randomization_test": "stats", "wins_ties_losses": "stats",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value
