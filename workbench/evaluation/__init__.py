"""Evaluation: ranx metrics with per-query values (:mod:`.metrics`), statistics (confidence
intervals, paired tests, Holm correction: :mod:`.stats`) and sliced tables with significance
against baselines (:mod:`.slices`)."""
from .metrics import DEFAULT_METRICS, HEADLINE_METRICS, Evaluation, evaluate_run, ranx_metric
from .slices import sliced_table
from .stats import confidence_interval, holm_bonferroni, paired_t_test, randomization_test, wins_ties_losses

__all__ = ["DEFAULT_METRICS", "HEADLINE_METRICS", "Evaluation", "confidence_interval", "evaluate_run",
           "holm_bonferroni", "paired_t_test", "randomization_test", "ranx_metric", "sliced_table",
           "wins_ties_losses"]
