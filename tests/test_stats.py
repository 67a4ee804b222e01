"""Confidence intervals, paired tests, Holm correction, sliced tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from workbench.evaluation.slices import sliced_table
from workbench.experiment.systems import default_baseline
from workbench.evaluation.stats import (confidence_interval, holm_bonferroni, paired_t_test, randomization_test,
                             significance_marker, wins_ties_losses)


def test_t_interval_matches_scipy():
    values = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    low, high = confidence_interval(values)
    expected = scipy_stats.t.interval(0.95, 4, loc=values.mean(), scale=scipy_stats.sem(values))
    assert (low, high) == pytest.approx(expected)


def test_bootstrap_interval_is_reproducible_and_contains_mean():
    values = np.random.default_rng(1).random(40)
    first = confidence_interval(values, method="bootstrap", seed=3)
    assert first == confidence_interval(values, method="bootstrap", seed=3)
    assert first[0] < values.mean() < first[1]


def test_randomization_test_exact_small_case():
    # differences (1, 1, 1): of the 8 sign patterns only the two all-equal ones reach |mean| = 1.
    p = randomization_test([0, 0, 0], [1, 1, 1], permutations=20000, seed=0)
    assert p == pytest.approx(0.25, abs=0.02)
    assert randomization_test([0.2, 0.4], [0.2, 0.4]) == 1.0


def test_randomization_agrees_with_t_test_on_clear_effects():
    rng = np.random.default_rng(0)
    base = rng.random(50)
    strong = base + 0.2 + rng.normal(0, 0.05, 50)
    assert randomization_test(base, strong) < 0.001 and paired_t_test(base, strong) < 0.001
    noise = base + rng.normal(0, 0.05, 50)
    assert randomization_test(base, noise, seed=1) > 0.05


def test_holm_bonferroni():
    np.testing.assert_allclose(holm_bonferroni([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm_bonferroni([0.5, 0.9]), [1.0, 1.0])


def test_markers_and_wins():
    assert significance_marker(0.004) == "**" and significance_marker(0.03) == "*" and significance_marker(0.2) == ""
    assert str(wins_ties_losses([0.1, 0.5, 0.3], [0.2, 0.5, 0.0])) == "1/1/1"


def test_default_baseline_is_the_candidate_run():
    assert default_baseline("official-bm25+tfidf") == "official-bm25"
    assert default_baseline("a+b+c") == "a+b"
    assert default_baseline("bm25-mini") is None


def test_sliced_table():
    qids = pd.Index([f"q{i}" for i in range(6)], name="qid")
    base = pd.DataFrame({"ndcg@5": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}, index=qids)
    better = base + 0.3
    labels = pd.DataFrame({"qid": list(qids), "label": ["qa"] * 4 + ["exploratory"] * 2})
    table = sliced_table({"A": base, "B": better, "C": base.copy()}, labels, {"B": "A", "C": "A"}, ["ndcg@5"],
                         permutations=2000)
    rows = table.set_index(["system", "slice"])
    assert rows.loc[("B", "all"), "n_queries"] == 6 and rows.loc[("B", "exploratory"), "n_queries"] == 2
    assert rows.loc[("B", "qa"), "ndcg@5"] == pytest.approx(0.55)
    assert rows.loc[("B", "all"), "delta_ndcg@5"] == pytest.approx(0.3)
    assert rows.loc[("B", "all"), "wtl_ndcg@5"] == "6/0/0"
    assert rows.loc[("C", "all"), "p_ndcg@5"] == 1.0 and rows.loc[("C", "all"), "sig_ndcg@5"] == ""
    # Holm across the two systems compared: B's p doubles (C's is 1).
    assert rows.loc[("B", "all"), "p_holm_ndcg@5"] == pytest.approx(min(1, 2 * rows.loc[("B", "all"), "p_ndcg@5"]))
    assert rows.loc[("B", "all"), "ndcg@5_ci_low"] < rows.loc[("B", "all"), "ndcg@5"]
