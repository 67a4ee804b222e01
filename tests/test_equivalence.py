"""Equivalence, not absence of evidence: the paired TOST against statsmodels' ``ttost_paired``, its
confidence-interval form, its degenerate cases, the ``--equivalence`` spec, and check-precision's
TOST section."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

from helpers_data import PASSAGES, make_tiny_data
from helpers_models import offline, write_tiny_bert  # noqa: F401 - offline: autouse fixture
from workbench.core.errors import WorkbenchError
from workbench.evaluation.equivalence import EquivalenceSpec, paired_tost, parse_equivalence

HAS_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _samples():
    """(baseline, treatment, margin) triples: equivalent, not, borderline, skewed, small n."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0, 1, 97)
    yield base, base + rng.normal(0.001, 0.01, 97), 0.01       # close: equivalent
    yield base, base + rng.normal(0.02, 0.05, 97), 0.01        # shifted past the margin
    yield base, base + rng.normal(-0.008, 0.03, 97), 0.01      # near the lower bound
    yield base[:43], np.clip(base[:43] + rng.normal(0, 0.2, 43), 0, 1), 0.05
    small = rng.uniform(0, 1, 5)
    yield small, small + np.array([0.01, -0.02, 0.0, 0.005, 0.003]), 0.02
    yield [0.5, 0.6], [0.52, 0.57], 0.1                            # n = 2: one degree of freedom


@pytest.mark.parametrize("baseline,treatment,margin", list(_samples()))
def test_paired_tost_agrees_with_statsmodels(baseline, treatment, margin):
    result = paired_tost(baseline, treatment, margin)
    p, (_, p_lower, df_lower), (_, p_upper, _) = ttost_paired(np.asarray(treatment), np.asarray(baseline),
                                                               -margin, margin)
    assert result.p_lower == pytest.approx(p_lower, abs=1e-10)
    assert result.p_upper == pytest.approx(p_upper, abs=1e-10)
    assert result.p_value == pytest.approx(p, abs=1e-10)
    assert result.n == len(baseline) == df_lower + 1
    differences = DescrStatsW(np.asarray(treatment) - np.asarray(baseline))
    low, high = differences.tconfint_mean(alpha=0.10)  # the (1 - 2 alpha) interval at alpha 0.05
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert result.mean_difference == pytest.approx(differences.mean, abs=1e-15)
    assert result.equivalent == (p <= 0.05)


def test_the_samples_cover_both_verdicts():
    verdicts = {paired_tost(b, t, m).equivalent for b, t, m in _samples()}
    assert verdicts == {True, False}


@given(st.lists(st.floats(-0.3, 0.3), min_size=2, max_size=60), st.floats(0.001, 0.2),
       st.sampled_from([0.01, 0.05, 0.1]))
def test_equivalent_iff_the_confidence_interval_lies_inside_the_margin(differences, margin, alpha):
    baseline = np.full(len(differences), 0.5)
    result = paired_tost(baseline, baseline + np.asarray(differences), margin, alpha)
    inside = -margin < result.ci_low and result.ci_high < margin
    edge = min(abs(result.ci_low + margin), abs(result.ci_high - margin))
    if edge > 1e-9 and not result.zero_variance:  # exactly on a bound, rounding decides either way
        assert result.equivalent == inside == (result.p_value <= alpha)
    assert result.ci_low <= result.mean_difference <= result.ci_high
    assert result.p_value == max(result.p_lower, result.p_upper)


def test_no_variance_is_decided_by_the_mean_and_says_so():
    same = paired_tost([0.3, 0.5, 0.7], [0.3, 0.5, 0.7], 0.01)
    assert same.equivalent and same.zero_variance and same.p_value == 0.0 and same.ci_low == same.ci_high == 0.0
    assert "no variance" in same.verdict and same.verdict.startswith("equivalent within ±0.01")
    shifted = paired_tost([0.3, 0.5, 0.7], [0.32, 0.52, 0.72], 0.01)  # every query +0.02: outside
    assert not shifted.equivalent and shifted.p_upper == 1.0 and shifted.p_lower == 0.0
    assert shifted.verdict.startswith("not equivalent")
    inside = paired_tost([0.3, 0.5], [0.305, 0.505], 0.01)
    assert inside.equivalent and inside.mean_difference == pytest.approx(0.005)


def test_fewer_than_two_queries_cannot_be_tested():
    one = paired_tost([0.4], [0.4], 0.01)
    assert not one.equivalent and one.n == 1 and one.p_value == 1.0 and math.isnan(one.ci_low)
    assert one.verdict == "not testable within ±0.01: 1 paired query (a paired t-test needs at least 2)"
    none = paired_tost([], [], 0.01)
    assert none.n == 0 and not none.equivalent and "0 paired queries" in str(none)


def test_verdict_is_one_quotable_line():
    rng = np.random.default_rng(1)
    base = rng.uniform(size=80)
    result = paired_tost(base, base + rng.normal(0.0, 0.004, 80), 0.01)
    assert result.equivalent
    low, high = f"{result.ci_low:+.4f}", f"{result.ci_high:+.4f}"
    assert str(result).startswith("equivalent within ±0.01 (TOST p = ")
    assert f"90% CI of the difference [{low}, {high}]; n = 80)" in str(result) and "\n" not in str(result)
    assert result.as_dict()["verdict"] == result.verdict


@pytest.mark.parametrize("margin", [0, 0.0, -0.01, float("nan"), float("inf"), "0.01", None, True])
def test_a_margin_that_is_not_positive_is_one_line(margin):
    with pytest.raises(WorkbenchError, match="equivalence margin must be a positive number") as caught:
        paired_tost([0.1, 0.2], [0.1, 0.2], margin)
    assert "\n" not in str(caught.value)


def test_other_bad_input_is_one_line():
    for call, message in [
        (lambda: paired_tost([0.1, 0.2], [0.1], 0.01), "differ in length"),
        (lambda: paired_tost([0.1, float("nan")], [0.1, 0.2], 0.01), "finite"),
        (lambda: paired_tost([0.1, 0.2], [0.1, 0.2], 0.01, alpha=0.5), "alpha"),
        (lambda: paired_tost([0.1, 0.2], [0.1, 0.2], 0.01, alpha=0), "alpha"),
    ]:
        with pytest.raises(WorkbenchError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_the_equivalence_spec_parses_a_margin_and_a_named_metric():
    assert parse_equivalence("0.01") == EquivalenceSpec(0.01, None)
    assert parse_equivalence(" ndcg@10=0.01 ") == EquivalenceSpec(0.01, "ndcg@10")
    assert parse_equivalence("RR(rel=2)@10=0.005") == EquivalenceSpec(0.005, "RR(rel=2)@10")  # '=' inside
    assert parse_equivalence("1e-2").margin == 0.01
    assert parse_equivalence("0.02").metric_or("ndcg@10") == "ndcg@10"
    for bad, message in [("0", "margin must be a positive number, got 0"), ("ndcg@10=-0.01", "got -0.01"),
                         ("nan", "positive number"), ("ndcg@10=0", "positive number"), ("x", "'x' is not a number"),
                         ("ndcg@10=", "'' is not a number"), ("=0.01", "a metric is missing"),
                         ("", "not a number"), ("ndcg@10=0.01=0.02", "does not parse")]:
        with pytest.raises(WorkbenchError, match=message) as caught:
            parse_equivalence(bad)
        assert "\n" not in str(caught.value) and str(caught.value).startswith("--equivalence")


def test_check_precision_cli_rejects_a_margin_that_is_not_positive_in_one_line(capsys):
    from workbench.cli import main

    assert main(["check-precision", "dense-minilm", "--equivalence", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "workbench: error: --equivalence '0': the margin must be a positive number, got 0\n"


class _Evaluation:
    """What check-precision hands the collector: per-query values indexed by qid."""

    def __init__(self, values: dict[str, list[float]], qids: list[str]):
        self.per_query = pd.DataFrame(values, index=pd.Index(qids, name="qid"))


def test_precision_report_holds_a_tost_per_dataset_and_the_pool():
    from workbench.experiment.precision import PrecisionReport, write_precision_report
    from workbench.experiment.precision_equivalence import precision_equivalence

    rng = np.random.default_rng(3)
    collector = precision_equivalence(["0.01", "mrr@10=0.05"])
    exact, fast = {}, {}
    for dataset, n in (("dl19", 43), ("dl20", 54)):
        qids = [f"{dataset}-{i}" for i in range(n)]
        exact[dataset] = {"ndcg@10": rng.uniform(size=n), "mrr@10": rng.uniform(size=n)}
        fast[dataset] = {m: v + rng.normal(0, 0.01, n) for m, v in exact[dataset].items()}
        collector.record(dataset, "torch fp32 (exact)", None, None, _Evaluation(exact[dataset], qids))
        # the fast path's queries in another order: paired by qid, not by position
        order = rng.permutation(n)
        collector.record(dataset, "torch bf16", None, None,
                         _Evaluation({m: v[order] for m, v in fast[dataset].items()}, [qids[i] for i in order]))
    checks = {(c.dataset, c.metric): c for c in collector.results()}
    assert set(checks) == {(d, m) for d in ("dl19", "dl20", "dl19+dl20") for m in ("ndcg@10", "mrr@10")}
    for (dataset, metric), check in checks.items():
        members = ("dl19", "dl20") if dataset == "dl19+dl20" else (dataset,)
        base = np.concatenate([exact[d][metric] for d in members])
        treat = np.concatenate([fast[d][metric] for d in members])
        p, (_, p_lower, _), (_, p_upper, _) = ttost_paired(treat, base, -check.result.margin, check.result.margin)
        assert check.path == "torch bf16" and check.result.n == len(base)
        assert (check.result.p_value, check.result.p_lower, check.result.p_upper) == pytest.approx(
            (p, p_lower, p_upper), abs=1e-10)
        assert check.result.margin == (0.01 if metric == "ndcg@10" else 0.05)
    report = PrecisionReport("dense-minilm", "official-bm25", 100, equivalence=collector)
    markdown = report.markdown()
    pooled = checks[("dl19+dl20", "ndcg@10")].result
    assert "## Equivalence to the exact path (TOST)" in markdown
    assert f"- **torch bf16**, ndcg@10 on dl19+dl20: {pooled.verdict}" in markdown
    assert f"| dl19+dl20 | torch bf16 | ndcg@10 | ±0.01 | 97 | {pooled.mean_difference:+.4f} |" in markdown
    assert "| dl19 | torch bf16 | mrr@10 | ±0.05 | 43 |" in markdown
    saved = report.to_json()["equivalence"]
    assert saved["alpha"] == 0.05 and saved["margins"] == {"ndcg@10": 0.01, "mrr@10": 0.05}
    row = next(r for r in saved["results"] if r["dataset"] == "dl19+dl20" and r["metric"] == "ndcg@10")
    assert row["pooled"] == ["dl19", "dl20"] and row["p_value"] == pooled.p_value and row["verdict"] == pooled.verdict


def test_verdict_lines_are_the_pools_and_every_dataset_outside_a_pool():
    """DL19 + DL20 pooled does not hide dev600's or CACM's verdict: one line per pool and per
    dataset no pool covers, each with the TOST statsmodels computes on that dataset alone."""
    from workbench.evaluation.equivalence import format_p_value
    from workbench.experiment.precision_equivalence import precision_equivalence

    rng = np.random.default_rng(11)
    sizes = {"dl19": 43, "dl20": 54, "dev600": 60, "cacm": 52}
    collector, exact, fast = precision_equivalence(["0.01"]), {}, {}
    for dataset, n in sizes.items():
        qids = [f"{dataset}-{i}" for i in range(n)]
        exact[dataset] = rng.uniform(size=n)
        fast[dataset] = exact[dataset] + rng.normal(0, 0.01, n)
        collector.record(dataset, "exact", None, None, _Evaluation({"ndcg@10": exact[dataset]}, qids))
        collector.record(dataset, "bf16", None, None, _Evaluation({"ndcg@10": fast[dataset]}, qids))
    bullets = [line for line in collector.markdown_lines() if line.startswith("- **")]
    assert [line.split(" on ")[1].split(":")[0] for line in bullets] == ["dev600", "cacm", "dl19+dl20"]
    for line, dataset in zip(bullets, ("dev600", "cacm")):
        p, _, _ = ttost_paired(fast[dataset], exact[dataset], -0.01, 0.01)
        assert line.startswith(f"- **bf16**, ndcg@10 on {dataset}: ")
        assert f"(TOST p = {format_p_value(p)};" in line and line.endswith(f"n = {sizes[dataset]})")
    # without the pool (DL20 not measured), every dataset has its own line
    alone = precision_equivalence(["0.01"])
    for dataset in ("dl19", "dev600"):
        qids = [f"{dataset}-{i}" for i in range(sizes[dataset])]
        alone.record(dataset, "exact", None, None, _Evaluation({"ndcg@10": exact[dataset]}, qids))
        alone.record(dataset, "bf16", None, None, _Evaluation({"ndcg@10": fast[dataset]}, qids))
    lines = [line for line in alone.markdown_lines() if line.startswith("- **")]
    assert [line.split(" on ")[1].split(":")[0] for line in lines] == ["dl19", "dev600"]


def test_a_report_without_equivalence_is_unchanged(tmp_path):
    from workbench.experiment.precision import PrecisionReport, write_precision_report

    report = PrecisionReport("dense-minilm", "official-bm25", 100)
    assert "TOST" not in report.markdown() and "equivalence" not in report.to_json()
    _, data = write_precision_report(report, tmp_path / "plain")
    assert "equivalence" not in json.loads(data.read_text())


def _add_dl20(root):
    """The tiny data directory with a DL20 of two queries over the same passages."""
    (root / "topics" / "dl20.tsv").write_text("3\tfrance capital city\n4\tboil eggs long\n", encoding="utf-8")
    (root / "qrels" / "dl20-passage.txt").write_text("3 0 p1 2\n3 0 p3 1\n4 0 p4 2\n4 0 p2 0\n", encoding="utf-8")
    (root / "runs" / "bm25.dl20.trec").write_text(
        "".join(f"{q} Q0 {p} {r} {s} bm25\n" for q, p, r, s in
                [("3", "p2", 1, 9.0), ("3", "p1", 2, 8.0), ("3", "p3", 3, 7.0),
                 ("4", "p3", 1, 9.0), ("4", "p4", 2, 8.0), ("4", "p2", 3, 7.0)]), encoding="utf-8")


def test_check_precision_tests_bf16_against_the_exact_path_per_year_and_pooled(tmp_path):
    from workbench.evaluation.metrics import evaluate_run
    from workbench.experiment import Workbench
    from workbench.experiment.precision import check_precision

    data = make_tiny_data(tmp_path / "data")
    _add_dl20(data)
    words = sorted({w for text in PASSAGES.values() for w in text.split()} |
                   set("capital of france how long to boil eggs city".split()))
    model = write_tiny_bert(tmp_path / "bert", words, head="base", model_max_length=64)
    bench = Workbench(data_dir=data, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv", progress=False)
    report = check_precision(bench.session, f"dense:{model}", datasets=["dl19", "dl20"], paths=["torch bf16"],
                             equivalence=["ndcg@10=0.05"])
    checks = {c.dataset: c for c in report.equivalence.results()}
    assert list(checks) == ["dl19", "dl20", "dl19+dl20"] and all(c.path == "torch bf16" for c in checks.values())
    # the pooled test, recomputed from the stored runs' own evaluation
    values = {}
    for dataset_name in ("dl19", "dl20"):
        dataset = bench.session.dataset(dataset_name)
        for result in (r for r in report.results if r.dataset == dataset_name):
            per_query = evaluate_run(bench.session.produce(f"official-bm25+{result.spec}", dataset_name).run,
                                     dataset.qrels, dataset.relevance_level, ["ndcg@10"]).per_query["ndcg@10"]
            values.setdefault(result.path, []).append(per_query.sort_index().to_numpy())
    base, treat = (np.concatenate(values[p]) for p in ("torch fp32 (exact)", "torch bf16"))
    pooled = checks["dl19+dl20"].result
    assert pooled.n == 4 and pooled.mean_difference == pytest.approx(float(np.mean(treat - base)), abs=1e-12)
    if not pooled.zero_variance:
        assert pooled.p_value == pytest.approx(ttost_paired(treat, base, -0.05, 0.05)[0], abs=1e-10)
    assert f"- **torch bf16**, ndcg@10 on dl19+dl20: {pooled.verdict}" in report.markdown()
