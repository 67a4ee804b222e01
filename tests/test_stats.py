"""Confidence intervals, paired tests, Holm correction, sliced tables."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from workbench.evaluation.slices import sliced_table
from workbench.experiment.systems import default_baseline
from workbench.evaluation.stats import (adjust_p_values, confidence_interval, holm_bonferroni, paired_t_test,
                                        randomization_result, randomization_test, significance_marker,
                                        wins_ties_losses)


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
    assert randomization_test([0, 0, 0], [1, 1, 1]) == 0.25
    assert randomization_test([0.2, 0.4], [0.2, 0.4]) == 1.0


def _brute_force_p(differences) -> float:
    differences = np.asarray([d for d in differences if d != 0], dtype=float)
    observed = abs(differences.sum())
    reaching = sum(abs(np.dot(signs, differences)) >= observed - 1e-9
                   for signs in itertools.product([-1, 1], repeat=len(differences)))
    return reaching / 2 ** len(differences)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11, 14])
def test_exact_randomization_equals_brute_force_enumeration(n):
    rng = np.random.default_rng(n)
    for _ in range(4):
        # rounded values make ties between patterns' sums, the hard case for counting
        differences = np.round(rng.normal(0.02, 0.2, n), 1)
        result = randomization_result(np.zeros(n), differences)
        assert result.method == "exact" and result.standard_error == 0.0
        assert result.p_value == pytest.approx(_brute_force_p(differences), abs=1e-12)


def test_randomization_is_exact_to_forty_then_monte_carlo_with_its_error():
    rng = np.random.default_rng(0)
    exact = randomization_result(np.zeros(30), rng.normal(0.05, 0.2, 30))
    assert exact.method == "exact" and exact.patterns == 2 ** 30
    estimated = randomization_result(np.zeros(54), rng.normal(0.05, 0.2, 54))
    assert estimated.method == "monte-carlo" and estimated.patterns >= 100_000
    assert 0 < estimated.standard_error < 0.002


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    for m in (1, 2, 5, 13):
        p = rng.random(m) ** 3
        assert holm_bonferroni(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_corrections_match_statsmodels_and_skip_untested():
    p = [0.01, 0.04, np.nan, 0.03]
    assert list(adjust_p_values(p, "holm")[[0, 1, 3]]) == pytest.approx([0.03, 0.06, 0.06])
    assert list(adjust_p_values(p, "bonferroni")[[0, 1, 3]]) == pytest.approx([0.03, 0.12, 0.09])
    assert list(adjust_p_values(p, "bh")[[0, 1, 3]]) == pytest.approx([0.03, 0.04, 0.04])
    assert np.isnan(adjust_p_values(p, "holm")[2]) and adjust_p_values(p, "none")[1] == 0.04


def test_family_is_the_leaderboard_not_the_invocation(tmp_path):
    from workbench.report.leaderboard import upsert_rows

    def row(system, p):
        return {"dataset": "dl19", "system": system, "slice": "qa", "baseline": "bm25", "mrr@10": 0.5,
                "delta_mrr@10": 0.1, "p_mrr@10": p}

    path = tmp_path / "board.csv"
    upsert_rows([row("a", 0.02)], path)
    board = upsert_rows([row("b", 0.03)], path)  # a later invocation joins a's family
    together = upsert_rows([row("a", 0.02), row("b", 0.03)], tmp_path / "together.csv")
    for frame in (board, together):
        adjusted = dict(zip(frame["system"], frame["p_adj_mrr@10"]))
        assert adjusted == pytest.approx({"a": 0.04, "b": 0.04})
        assert set(frame["family_size"]) == {2}


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
    assert rows.loc[("B", "all"), "p_adj_ndcg@5"] == pytest.approx(min(1, 2 * rows.loc[("B", "all"), "p_ndcg@5"]))
    # six differences of +0.3: exact p = 2 / 2^6
    assert rows.loc[("B", "all"), "p_ndcg@5"] == 2 / 64 and rows.loc[("B", "all"), "p_se_ndcg@5"] == 0.0
    assert rows.loc[("B", "all"), "family_size"] == 2 and rows.loc[("B", "all"), "correction"] == "holm"
    assert rows.loc[("B", "all"), "ndcg@5_ci_low"] < rows.loc[("B", "all"), "ndcg@5"]


def test_paired_effect_size_and_minimal_detectable_effect():
    from statsmodels.stats.power import TTestPower

    from workbench.evaluation.stats import paired_effect

    baseline = np.zeros(10)
    treatment = np.array([0.1, 0.3, 0.2, 0.0, 0.4, 0.1, 0.2, 0.3, 0.2, 0.2])
    effect = paired_effect(baseline, treatment)
    sd = treatment.std(ddof=1)
    assert effect.d_z == pytest.approx(treatment.mean() / sd)
    assert effect.d_z_ci_low < effect.d_z < effect.d_z_ci_high
    # at the minimal detectable effect a paired t-test has 80% power
    assert TTestPower().power(effect.minimal_detectable_effect / sd, 10, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert np.isnan(paired_effect([0.5], [0.7]).minimal_detectable_effect)


def test_minimal_detectable_effect_is_positive_for_every_slice_size():
    """statsmodels' solver lands on the negative root for some n (73 did): the MDE is its size."""
    from workbench.evaluation.stats import minimal_detectable_d

    values = [minimal_detectable_d(n) for n in range(2, 200)]
    assert all(value > 0 for value in values)
    assert all(a > b for a, b in zip(values, values[1:]))  # more queries, smaller detectable effects
