"""Depth against cost (`workbench depth`): each depth a stored run whose scores are the deepest's,
no pair scored twice, metrics as evaluating each stored run, the smallest sufficient depth, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.evaluation.depth_stats import depth_statistics, smallest_sufficient_depth
from workbench.evaluation.stats import holm_bonferroni
from workbench.experiment.depth import check_depths

SYSTEM = "official-bm25+tfidf"
DEPTHS = (5, 10, 100)


# --- the statistics, on synthetic per-query values ---

def _per_query(values: dict[int, np.ndarray]) -> dict[int, pd.DataFrame]:
    qids = pd.Index([f"q{i}" for i in range(len(next(iter(values.values()))))], name="qid")
    return {depth: pd.DataFrame({"m": v}, index=qids) for depth, v in values.items()}


def _synthetic(rng: np.random.Generator, shifts: dict[int, float], n: int = 30, noise: float = 0.01):
    deepest = rng.uniform(0.3, 0.7, n)
    values = {100: deepest}
    for depth, shift in shifts.items():
        values[depth] = deepest + shift + rng.normal(0, noise, n)
    return _per_query(values)


def test_smallest_sufficient_depth_stops_at_the_first_significantly_worse_depth():
    rng = np.random.default_rng(1)
    table = depth_statistics(_synthetic(rng, {50: 0.0, 20: 0.0, 10: -0.2, 5: -0.3}), ["m"])
    assert list(table["depth"]) == [100, 50, 20, 10, 5]
    assert list(table["worse_m"]) == [False, False, False, True, True]
    choice = smallest_sufficient_depth(table, "m")
    assert (choice.deepest, choice.not_worse, choice.equivalent) == (100, 20, None)
    assert "k = 20 is the smallest depth not significantly worse than k = 100" == choice.verdict


def test_a_shallow_depth_not_worse_by_chance_below_a_worse_one_does_not_count():
    rng = np.random.default_rng(2)
    # k = 10 is clearly worse; k = 5 is not (its differences are centred on 0)
    table = depth_statistics(_synthetic(rng, {50: 0.0, 10: -0.2, 5: 0.0}), ["m"])
    assert list(table["worse_m"]) == [False, False, True, False]
    assert smallest_sufficient_depth(table, "m").not_worse == 50


def test_every_depth_worse_names_the_deepest():
    rng = np.random.default_rng(3)
    table = depth_statistics(_synthetic(rng, {50: -0.1, 10: -0.2}), ["m"])
    choice = smallest_sufficient_depth(table, "m")
    assert choice.not_worse == 100
    assert choice.verdict.startswith("every depth below k = 100 is significantly worse")


def test_p_values_are_holm_corrected_over_the_shallower_depths_and_better_is_not_worse():
    rng = np.random.default_rng(4)
    table = depth_statistics(_synthetic(rng, {50: 0.05, 20: 0.0, 10: -0.002, 5: 0.3}), ["m"])
    shallower = table["depth"] != 100
    assert np.isnan(table.loc[~shallower, "p_m"]).all()
    assert np.allclose(table.loc[shallower, "p_adj_m"], holm_bonferroni(table.loc[shallower, "p_m"]))
    better = table.set_index("depth").loc[5]
    assert better["delta_m"] > 0.2 and better["sig_m"] == "**" and not better["worse_m"]


def test_equivalence_within_a_margin():
    rng = np.random.default_rng(5)
    # 50: the same values (no variance: equivalent); 20: a tiny noisy shift (equivalent within 0.05);
    # 10: shifted by the margin itself (not shown equivalent)
    per_query = _synthetic(rng, {20: 0.0, 10: -0.05}, n=60, noise=0.01)
    per_query[50] = per_query[100].copy()
    table = depth_statistics(per_query, ["m"], margins={"m": 0.05})
    flags = dict(zip(table["depth"], table["equivalent_m"]))
    assert [bool(flags[depth]) for depth in (50, 20, 10)] == [True, True, False]
    low, high = table.set_index("depth").loc[20, ["tost_ci_low_m", "tost_ci_high_m"]]
    assert -0.05 < low < high < 0.05
    choice = smallest_sufficient_depth(table, "m")
    assert choice.smallest_equivalent == 20 and choice.margin == 0.05
    assert "every depth from k = 20 on is shown equivalent" in choice.verdict


def test_statistics_refuse_unpaired_depths_and_margins_on_other_metrics():
    per_query = _per_query({100: np.array([0.1, 0.2, 0.3]), 5: np.array([0.1, 0.2, 0.3])})
    with pytest.raises(WorkbenchError, match="not among the metrics"):
        depth_statistics(per_query, ["m"], margins={"ndcg@10": 0.01})
    per_query[5].index = pd.Index(["a", "b", "c"], name="qid")
    with pytest.raises(WorkbenchError, match="other queries"):
        depth_statistics(per_query, ["m"])


@pytest.mark.parametrize("depths, message", [
    ([], "no depth given"), (["0"], "not a positive integer"), (["-5"], "not a positive integer"),
    (["x"], "not a positive integer"), ([2.5], "not a positive integer"), ([True], "not a positive integer")])
def test_bad_depths_are_one_line(depths, message):
    with pytest.raises(WorkbenchError, match=message) as raised:
        check_depths(depths)
    assert "\n" not in str(raised.value)


def test_depths_are_distinct_and_deepest_first():
    assert check_depths(["10", 5, "100", 10]) == (100, 10, 5)


def test_the_cli_refuses_bad_input_in_one_line(capsys, tmp_path):
    from workbench.cli import main

    for argv, message in [
            (["--system", "official-bm25"], "reranks nothing"),
            (["--system", SYSTEM, "--depths", "5,0"], "not a positive integer"),
            (["--system", SYSTEM, "--depths", ","], "no depth given"),
            (["--system", SYSTEM, "--equivalence", "ndcg@10=-1"], "positive number")]:
        assert main(["depth", "--runs-dir", str(tmp_path), "--quiet", *argv]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("workbench: error:") and message in error and "\n" not in error


def test_the_report_files_and_the_html_section(tmp_path):
    from workbench.report.depth_report import depth_sections, write_depth_report

    rng = np.random.default_rng(6)
    table = depth_statistics(_synthetic(rng, {10: -0.2, 5: -0.3}), ["m"], margins={"m": 0.05})
    costs = pd.DataFrame({"depth": [100, 10, 5], "pairs_per_query": [100.0, 10.0, 5.0], "pairs_scored": [3000, 0, 0],
                          "cache_hits": [0, 300, 150], "ms_per_query": [50.0, 5.0, 2.5],
                          "time_basis": ["measured", "derived from k=100", "derived from k=100"]})
    table = table.merge(costs, on="depth")
    table.insert(0, "dataset", "toy")
    summary = pd.DataFrame([{"dataset": "toy", "metric": "m", "smallest_not_worse": 100,
                             "verdict": smallest_sufficient_depth(table, "m").verdict}])
    paths = write_depth_report(table, summary, tmp_path / "toy+system", "toy+system", "toy", ["m"], {"m": 0.05},
                               0.05, "holm", cpu="a CPU")
    assert all(path.is_file() and path.stat().st_size for path in paths.values())
    markdown = paths["depth.md"].read_text(encoding="utf-8")
    assert "| 10 | " in markdown and "derived from k=100" in markdown and "CPU: a CPU" in markdown
    assert pd.read_csv(paths["depth.csv"])["depth"].tolist() == [100, 10, 5]
    [section] = depth_sections(tmp_path)
    assert section["title"] == "Depth against cost: toy+system"
    assert section["plot"].startswith("data:image/png;base64,") and "<table>" in section["html"]
    assert depth_sections(tmp_path / "absent") == []


# --- on the shared data, with a cheap reranker ---

@pytest.fixture(scope="module")
def depth_bench(data_dir, session_cache, tmp_path_factory):
    """A Workbench of its own: its own runs directory and an empty score cache, so the deepest run
    scores every pair itself (other tests may have cached TF-IDF scores in the session's cache)."""
    from workbench.experiment import Workbench
    from workbench.rerankers.score_cache import ScoreCache

    runs = tmp_path_factory.mktemp("depth-runs")
    bench = Workbench(data_dir=data_dir, runs_dir=runs, leaderboard=runs / "leaderboard.csv", progress=False)
    bench.session._score_cache = ScoreCache(runs / "scores.sqlite")
    return bench


@pytest.fixture(scope="module")
def first_report(depth_bench):
    from workbench.experiment.depth import depth_analysis

    return depth_analysis(depth_bench.session, SYSTEM, ["dl19"], depths=DEPTHS,
                          pools={"dl19+dl20": ["dl19", "dl20"]}, equivalence_margin=0.01)


def test_shallower_depths_score_no_pair(first_report):
    runs = {(run.dataset, run.depth): run for run in first_report.runs}
    assert set(runs) == {(d, k) for d in ("dl19", "dl20") for k in DEPTHS}
    for (dataset, depth), run in runs.items():
        assert run.pairs == depth * run.queries  # official-bm25 has 1000 candidates per query
        if depth < max(DEPTHS):
            assert run.pairs_scored == 0 and run.cache_hits == run.pairs and not run.stored.reused
            assert run.stored.manifest["pairs_scored"] == 0
            assert f"depth/k{depth}/{dataset}/" in run.stored.path.as_posix()
        else:  # the deepest scored every pair (the cache was empty) and is in the session's own store
            assert run.pairs_scored == run.pairs and run.cache_hits == 0
            assert run.stored.path.parent.name == dataset and "depth" not in run.stored.path.parts
    table = first_report.table.set_index(["dataset", "depth"])
    assert (table.loc[[(d, k) for d in ("dl19", "dl20", "dl19+dl20") for k in (5, 10)], "pairs_scored"] == 0).all()
    assert table.loc[("dl19+dl20", 100), "n_queries"] == table.loc[("dl19", 100), "n_queries"] + \
        table.loc[("dl20", 100), "n_queries"]


def test_a_second_invocation_scores_nothing_and_reports_the_same(depth_bench, first_report):
    from workbench.experiment.depth import depth_analysis

    again = depth_analysis(depth_bench.session, SYSTEM, ["dl19"], depths=DEPTHS,
                           pools={"dl19+dl20": ["dl19", "dl20"]}, equivalence_margin=0.01)
    assert all(run.stored.reused and run.pairs_scored == 0 and run.cache_hits == 0 for run in again.runs)
    assert (again.table["pairs_scored"] == 0).all()
    columns = [c for c in first_report.table.columns if c not in ("pairs_scored", "cache_hits", "reused")]
    pd.testing.assert_frame_equal(again.table[columns], first_report.table[columns])


def test_the_depth_k_run_is_the_top_k_in_the_deepest_runs_order_then_the_rest_in_candidate_order(
        depth_bench, first_report):
    """Independently: a depth-k run is the candidates' top k ordered by the deepest run's scores
    (score descending, docno descending on ties, as trec_eval), then the candidates ranked
    k+1..deepest in the candidates' order, scored strictly below: every depth ranks the same documents."""
    deepest_k = max(DEPTHS)
    candidates = depth_bench.produce("official-bm25", "dl19").run
    runs = {run.depth: run.stored for run in first_report.runs if run.dataset == "dl19"}
    deepest = runs[deepest_k].run
    score_of = dict(zip(zip(deepest["qid"], deepest["docno"]), deepest["score"]))
    for depth in (5, 10):
        got = runs[depth].run
        assert runs[depth].manifest["config"]["fill_to"] == deepest_k
        assert runs[depth].manifest["pairs"] == depth * got["qid"].nunique()
        for qid, mine in got.groupby("qid", sort=False):
            ranked = candidates[candidates["qid"] == qid].sort_values("rank")
            top = ranked[ranked["rank"] <= depth]["docno"].tolist()
            reordered = sorted(sorted(top, reverse=True), key=lambda docno: -score_of[(qid, docno)])  # stable
            rest = ranked[(ranked["rank"] > depth) & (ranked["rank"] <= deepest_k)]["docno"].tolist()
            assert mine["docno"].tolist() == reordered + rest
            assert set(mine["docno"]) == set(deepest[deepest["qid"] == qid]["docno"])  # the same documents
            scores = mine["score"].to_numpy()
            assert np.array_equal(scores[:len(top)], [score_of[(qid, docno)] for docno in reordered])
            assert (np.diff(scores) < 0)[len(top) - 1:].all()  # strictly below the block, strictly decreasing
            assert mine["rank"].tolist() == list(range(1, len(mine) + 1))


def test_a_truncated_depth_run_is_not_reused(depth_bench, first_report):
    """A depth-k run stored without the candidates below k (its key is the plain rerank key at k)
    is another configuration than the filled one: it is not reused."""
    from workbench.experiment.depth import DepthFilledSystem, _AtDepth
    from workbench.experiment.systems import parse_system

    session, dataset = depth_bench.session, depth_bench.dataset("dl19")
    plain = parse_system(SYSTEM)
    filled = DepthFilledSystem(plain.name, plain.candidates, plain.reranker, fill_to=max(DEPTHS))
    at = _AtDepth(session, 5, max(DEPTHS))
    stored = next(run.stored for run in first_report.runs if (run.dataset, run.depth) == ("dl19", 5))
    assert stored.manifest["config_fingerprint"] == filled.config(at, dataset).key
    assert plain.config(at, dataset).key != filled.config(at, dataset).key
    assert at.store.load_reusable("dl19", SYSTEM, plain.config(at, dataset).key) is None


def test_metrics_equal_evaluating_each_stored_run(depth_bench, first_report):
    from workbench.data.trec import read_run
    from workbench.evaluation.metrics import evaluate_run

    table = first_report.table.set_index(["dataset", "depth"])
    for run in first_report.runs:
        dataset = depth_bench.dataset(run.dataset)
        means = evaluate_run(read_run(run.stored.path), dataset.qrels, dataset.relevance_level,
                             first_report.metrics).means
        for metric, value in means.items():
            assert table.loc[(run.dataset, run.depth), metric] == pytest.approx(value, abs=1e-12)
    assert first_report.metrics == ["mrr@10", "ndcg@5", "ndcg@10"]


def test_time_per_query_says_where_it_comes_from(first_report):
    table = first_report.table
    assert (table.loc[table["depth"] == max(DEPTHS), "time_basis"] == "measured").all()
    shallow = table[table["depth"] < max(DEPTHS)]
    assert (shallow["time_basis"] == "derived from k=100").all()
    for row in shallow[shallow["pooled"] == ""].to_dict("records"):
        # pairs per query x the deepest's measured seconds per pair
        deepest = table[(table["dataset"] == row["dataset"]) & (table["depth"] == max(DEPTHS))].iloc[0]
        assert row["rerank_ms_per_query"] == pytest.approx(
            deepest["rerank_ms_per_query"] * row["pairs_per_query"] / deepest["pairs_per_query"], rel=1e-9)
        assert row["ms_per_query"] == pytest.approx(row["rerank_ms_per_query"] + row["candidates_ms_per_query"])


def test_bad_input_on_the_data_is_one_line(depth_bench):
    from workbench.experiment.depth import depth_analysis

    session = depth_bench.session
    with pytest.raises(WorkbenchError, match="above the candidate run's depth") as raised:
        depth_analysis(session, SYSTEM, ["dl19"], depths=[5, 5000])
    assert "\n" not in str(raised.value)
    with pytest.raises(WorkbenchError, match="above the candidate run's depth: official-bm25\\+tfidf has at most 100"):
        depth_analysis(session, SYSTEM + "+tfidf", ["dl19"], depths=[200])
    with pytest.raises(WorkbenchError, match="does not evaluate"):
        depth_analysis(session, SYSTEM, ["dl19"], depths=[5, 100], metrics=["mrr@10"], equivalence_margin=0.01)


def test_the_html_report_shows_the_depth_analyses(tmp_path):
    from workbench.report.depth_report import depth_sections, write_depth_report
    from workbench.report.html import render_html

    rng = np.random.default_rng(7)
    table = depth_statistics(_synthetic(rng, {10: -0.2}), ["m"]).assign(
        pairs_per_query=[100.0, 10.0], pairs_scored=[3000, 0], cache_hits=[0, 300], ms_per_query=[50.0, 5.0],
        time_basis=["measured", "derived from k=100"])
    table.insert(0, "dataset", "toy")
    summary = pd.DataFrame([{"dataset": "toy", "metric": "m", "smallest_not_worse": 100,
                             "verdict": smallest_sufficient_depth(table, "m").verdict}])
    write_depth_report(table, summary, tmp_path / "toy+system", "toy+system", "toy", ["m"], {}, 0.05, "holm")
    meta = {"generated": "now", "source": "test", "workbench": "0", "ranx": "0", "metric": "m", "top": 1,
            "passages": 1, "data_dir": ""}
    page = render_html([], [], {}, meta, depth=depth_sections(tmp_path))
    assert '<a href="#depth">depth against cost</a>' in page and '<section id="depth">' in page
    assert "Depth against cost: toy+system" in page and 'src="data:image/png;base64,' in page
    assert "every depth below k = 100 is significantly worse" in page
    assert '<section id="depth">' not in render_html([], [], {}, meta)


def test_a_deepest_run_stored_with_another_score_cache_is_said(data_dir, depth_bench, first_report, tmp_path):
    """The deepest run is reused from the store, but this process's score cache lacks its scores
    (another WORKBENCH_CACHE): the shallower depth scores its pairs, and the report says why."""
    from workbench.experiment import Workbench
    from workbench.experiment.depth import depth_analysis
    from workbench.rerankers.score_cache import ScoreCache

    other = Workbench(data_dir=data_dir, runs_dir=depth_bench.runs_dir, progress=False)
    other.session._score_cache = ScoreCache(tmp_path / "scores.sqlite")
    report = depth_analysis(other.session, SYSTEM, ["dl19"], depths=[7, 100])
    runs = {run.depth: run for run in report.runs}
    assert runs[100].stored.reused and runs[100].pairs_scored == 0
    assert runs[7].pairs_scored == runs[7].pairs == 7 * runs[7].queries
    assert len(report.notes) == 1 and "k=7 scored" in report.notes[0] and "not in this score cache" in report.notes[0]
    assert report.table.set_index("depth").loc[7, "time_basis"] == "measured"


def test_the_equivalence_metric_joins_the_default_metrics(depth_bench, first_report):
    from workbench.experiment.depth import depth_analysis

    report = depth_analysis(depth_bench.session, SYSTEM, ["dl19"], depths=[5, 100], equivalence_margin=0.05,
                            equivalence_metric="map")
    assert report.metrics == ["mrr@10", "ndcg@5", "ndcg@10", "map"] and report.margins == {"map": 0.05}
    assert all(run.stored.reused for run in report.runs)  # the first report stored both depths
    row = report.table.set_index("depth").loc[5]
    assert 0 <= row["tost_p_map"] <= 1 and row["margin_map"] == 0.05
    [choice] = [c for c in report.choices["dl19"] if c.metric == "map"]
    assert choice.margin == 0.05 and choice.deepest == 100
