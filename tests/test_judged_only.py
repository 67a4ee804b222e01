"""Judged-only (condensed-list) metrics: ``ndcg@10:judged`` and ir_measures' ``nDCG(judged_only=True)@10``
equal the native trec_eval with ``-J`` (and ir_measures' own judged_only) on real DL runs, equal a
condensed list computed by hand on a tiny one, reach the leaderboard with deltas and corrected
significance like any metric, and the reports mark rows whose two deltas disagree."""
from __future__ import annotations

import math
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.measures import is_metric_column, resolve_measure
from workbench.data.trec import read_qrels, read_run, write_run
from workbench.evaluation.condensed import (condensed_run, judged_disagreement, judged_disagreements,
                                            judged_pairs)
from workbench.evaluation.metrics import evaluate_run


def _frame(rows, columns):
    return pd.DataFrame(rows, columns=columns).astype({"qid": str, "docno": str})


# q1 ranks u1 (unjudged), n0 (grade 0), u2 (unjudged), r2 (grade 2), r1 (grade 1); r3 (grade 3) is never
# retrieved. q2 retrieves only unjudged passages; q3 is judged and absent from the run.
QRELS = _frame([("q1", "n0", 0), ("q1", "r2", 2), ("q1", "r1", 1), ("q1", "r3", 3), ("q2", "x", 2), ("q3", "y", 1)],
               ["qid", "docno", "label"])
RUN = _frame([("q1", "u1", 5.0), ("q1", "n0", 4.0), ("q1", "u2", 3.0), ("q1", "r2", 2.0), ("q1", "r1", 1.0),
              ("q2", "u3", 2.0), ("q2", "u4", 1.0)], ["qid", "docno", "score"])


def test_the_condensed_list_computed_by_hand():
    condensed = condensed_run(RUN, QRELS)
    assert list(zip(condensed["qid"], condensed["docno"], condensed["rank"])) == [
        ("q1", "n0", 1), ("q1", "r2", 2), ("q1", "r1", 3)]  # unjudged removed, ranks closed up; q2 empty
    values = evaluate_run(RUN, QRELS, 2, ["ndcg@3", "ndcg@3:judged", "mrr@2", "mrr@2:judged", "map:judged"])
    q1 = values.per_query.loc["q1"]
    # condensed gains 0, 2, 1 against the ideal 3, 2, 1 (trec_eval's linear gains, log2(rank + 1) discount)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert q1["ndcg@3:judged"] == pytest.approx((2 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert q1["ndcg@3"] == 0.0  # the standard top 3 holds u1, n0, u2: no gain
    # relevance level 2: the first relevant passage of the condensed list is r2 at rank 2; the standard
    # list has none in its top 2
    assert (q1["mrr@2:judged"], q1["mrr@2"]) == (0.5, 0.0)
    # AP at level 2 over the condensed list: r2 at rank 2 of the 2 relevant (r2, r3) -> (1/2) / 2
    assert q1["map:judged"] == pytest.approx(0.25)
    # nothing judged retrieved (q2), or nothing retrieved (q3): 0, as in trec_eval
    assert (values.per_query.loc[["q2", "q3"]].to_numpy() == 0).all()


def test_names_in_both_notations():
    judged = resolve_measure("ndcg@10:judged", 2)
    assert (judged.engine, judged.base.name, judged.base.ranx_name, judged.cutoff) == \
        ("condensed", "ndcg@10", "ndcg@10", 10)
    assert resolve_measure("mrr@10:judged", 2).base.ranx_name == "mrr@10-l2"  # the dataset's level, as mrr@10
    ir = resolve_measure("nDCG(judged_only=True)@10")
    assert (ir.name, ir.engine, ir.base.name) == ("nDCG(judged_only=True)@10", "condensed", "nDCG@10")
    rr = resolve_measure("RR(rel=2,judged_only=True)@10")
    assert (rr.name, rr.base.ranx_name) == ("RR(rel=2,judged_only=True)@10", "mrr@10-l2")
    assert resolve_measure("RR(rel=2)@10:judged").base.ranx_name == "mrr@10-l2"
    assert resolve_measure("nDCG(judged_only=False)@10") == resolve_measure("nDCG@10")
    for column in ("ndcg@10:judged", "mrr@10:judged", "nDCG(judged_only=True)@10", "nDCG@10:judged"):
        assert is_metric_column(column), column
    for column in ("delta_ndcg@10:judged", "sig_ndcg@10:judged", "ndcg@10:judged_ci_low", "system:judged",
                   "p_adj_mrr@10:judged"):
        assert not is_metric_column(column), column
    assert judged_pairs(["mrr@10", "ndcg@10", "ndcg@10:judged", "mrr@5:judged", "nDCG@10",
                         "nDCG(judged_only=True)@10"]) == [("ndcg@10", "ndcg@10:judged"),
                                                           ("nDCG@10", "nDCG(judged_only=True)@10")]


@pytest.mark.parametrize("name,message", [("Judged@10:judged", "1 by construction"),
                                          ("ndcg@10:judged:judged", "already judged-only"),
                                          ("nDCG(judged_only=True)@10:judged", "already judged-only"),
                                          ("nDCG(judged_only=maybe)@10", "judged_only is True or False"),
                                          ("ndgc@10:judged", "does not parse")])
def test_bad_names_are_one_line_errors(name, message):
    with pytest.raises(WorkbenchError, match=message) as raised:
        resolve_measure(name, 2)
    assert "\n" not in str(raised.value)


def test_trec_dl_evaluates_the_judged_only_headline_beside_the_standard_one():
    from workbench.data.datasets import DATASETS
    from workbench.report.inspection import view_metrics

    metrics = list(DATASETS["dl19"].metrics)
    assert metrics[:2] == ["mrr@10", "ndcg@5"]  # the headline pair stays first for every reader of it
    assert metrics.index("mrr@10:judged") == 2 and metrics.index("ndcg@5:judged") == 3
    assert metrics.index("ndcg@10:judged") == metrics.index("ndcg@10") + 1
    assert DATASETS["dl20"].metrics == DATASETS["dl19"].metrics
    assert not any(m.endswith(":judged") for m in DATASETS["dev600"].metrics)
    board = pd.DataFrame({"dataset": ["dl19"], "system": ["a"], **{m: [0.5] for m in metrics}})
    assert view_metrics(board, metrics)[1] == ["mrr@10", "ndcg@5"]


def _row(delta, sig, judged_delta, judged_sig, metric="ndcg@10"):
    return {f"delta_{metric}": delta, f"sig_{metric}": sig, f"delta_{metric}:judged": judged_delta,
            f"sig_{metric}:judged": judged_sig}


def test_when_the_two_deltas_disagree():
    assert judged_disagreement(_row(0.05, "*", 0.03, "**"), "ndcg@10", "ndcg@10:judged") == ""
    assert judged_disagreement(_row(0.05, "", -0.01, ""), "ndcg@10", "ndcg@10:judged") == "sign"
    assert judged_disagreement(_row(0.05, "", 0.0, ""), "ndcg@10", "ndcg@10:judged") == "sign"  # a gain vs level
    assert judged_disagreement(_row(1e-17, "", 0.0, ""), "ndcg@10", "ndcg@10:judged") == ""  # both level
    assert judged_disagreement(_row(-0.05, "**", -0.02, np.nan), "ndcg@10", "ndcg@10:judged") == "significance"
    assert judged_disagreement(_row(0.05, "*", -0.02, ""), "ndcg@10", "ndcg@10:judged") == "sign and significance"
    assert judged_disagreement(_row(np.nan, np.nan, np.nan, np.nan), "ndcg@10", "ndcg@10:judged") == ""  # baseline
    assert judged_disagreement({"delta_ndcg@10": 0.1}, "ndcg@10", "ndcg@10:judged") == ""  # no judged column
    notes = judged_disagreements({**_row(0.05, "*", -0.02, ""), **_row(0.1, "*", 0.1, "*", "mrr@10")},
                                 ["ndcg@10", "ndcg@10:judged", "mrr@10", "mrr@10:judged"])
    assert notes == {"ndcg@10": "Δ ndcg@10 +0.0500* but Δ ndcg@10:judged -0.0200: sign and significance differ"}


def _board():
    rows = []
    for system, judged_delta, judged_sig in (("base", np.nan, np.nan), ("same", 0.1, "*"), ("artefact", 0.0, "")):
        delta = np.nan if system == "base" else 0.1
        rows.append({"dataset": "dl19", "system": system, "slice": "all", "n_queries": 43,
                     "mrr@10": 0.5, "ndcg@5": 0.4, "mrr@10:judged": 0.5, "ndcg@5:judged": 0.4 + (judged_delta or 0),
                     "delta_mrr@10": delta, "sig_mrr@10": "" if system == "base" else "*",
                     "delta_ndcg@5": delta, "sig_ndcg@5": np.nan if system == "base" else "*",
                     "delta_mrr@10:judged": delta, "sig_mrr@10:judged": "" if system == "base" else "*",
                     "delta_ndcg@5:judged": judged_delta, "sig_ndcg@5:judged": judged_sig,
                     "baseline": np.nan if system == "base" else "base"})
    return pd.DataFrame(rows)


def test_terminal_table_shows_informative_judged_columns_and_marks_disagreement():
    from workbench.report.leaderboard import format_table

    text = format_table(_board(), ["mrr@10", "ndcg@5", "mrr@10:judged", "ndcg@5:judged"])
    header, *lines = text.splitlines()
    assert "mrr@10:judged" not in header  # equal to mrr@10 on every row: it adds nothing
    assert "ndcg@5:judged" in header
    marked = {line.split()[1]: "≠" in line for line in lines}
    assert marked == {"base": False, "same": False, "artefact": True}


def test_summary_and_html_mark_disagreeing_rows():
    from workbench.report.html import render_html
    from workbench.report.inspection import DatasetView
    from workbench.report.summary import summary_markdown

    board = _board()
    text = summary_markdown(board)
    assert "| artefact ≠ |" in text and "| same |" in text and "| base |" in text
    assert "- ≠ artefact (all): Δ ndcg@5 +0.1000* but Δ ndcg@5:judged +0.0000: sign and significance differ" in text
    metrics = ["mrr@10", "ndcg@5", "mrr@10:judged", "ndcg@5:judged"]
    view = DatasetView("dl19", board, [], 43, 0, 2, {"rules": 43}, "dl19", metrics=metrics,
                       headline=["mrr@10", "ndcg@5"])
    page = render_html([view], [], {}, {"generated": "now", "source": "x", "workbench": "0", "ranx": "0",
                                        "metric": "ndcg@10", "top": 1, "passages": 1, "data_dir": "d"})
    rows = {re.search(r'<td class="system" data-sort="([^"]*)"', row).group(1): row
            for row in re.findall(r'<tr class="slice-.*?</tr>', page, re.S)}
    assert set(rows) == {"base", "same", "artefact"}
    assert [name for name, row in rows.items() if "≠" in row] == ["artefact"]
    assert rows["artefact"].startswith('<tr class="slice-all judged-disagrees"')  # the row, and its ndcg@5:judged
    assert "0.4000 ≠" in rows["artefact"]
    assert "sign and significance differ" in rows["artefact"]  # both deltas, on hover


def test_evaluate_cached_reads_judged_only_values_back(tmp_path, monkeypatch):
    from workbench.evaluation.metrics import evaluate_cached

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    metrics = ["ndcg@3", "ndcg@3:judged", "mrr@2:judged"]
    first = evaluate_cached(RUN, "run-sha", QRELS, "qrels-sha", 2, metrics)
    again = evaluate_cached(RUN, "run-sha", QRELS, "qrels-sha", 2, metrics)
    assert list((tmp_path / "evaluations").iterdir())
    pd.testing.assert_frame_equal(first.per_query, again.per_query)
    assert again.means == evaluate_run(RUN, QRELS, 2, metrics).means


# --- against the native trec_eval -J and ir_measures' judged_only, on real DL runs ---

def _trec_eval_per_query(qrels_path, run_path, options: list[str], measures: list[str]) -> pd.DataFrame:
    """trec_eval's per-query values (``-q``; every judged query, ``-c``): index qid, a column per measure."""
    from helpers_trec_eval import trec_eval_command

    selected = [argument for measure in measures for argument in ("-m", measure)]
    out = subprocess.run([*trec_eval_command(), "-q", "-c", *options, *selected, str(qrels_path), str(run_path)],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    frame = pd.DataFrame([(q, m, float(v)) for m, q, v in rows if q != "all"], columns=["qid", "measure", "value"])
    return frame.pivot(index="qid", columns="measure", values="value")


@pytest.mark.parametrize("dataset,system,kind", [("dl19", "bm25", "scores"), ("dl19", "tasb", "scores"),
                                                 ("dl20", "ada2", "scores"), ("dl19", "tasb", "ties")])
def test_judged_only_equals_trec_eval_J(data_dir, tmp_path, dataset, system, kind):
    from helpers_trec_eval import trec_eval

    from workbench.data.datasets import get_dataset

    spec = get_dataset(dataset, data_dir)
    run = read_run(spec.official_run_path(system))
    if kind == "ties":
        run = run.assign(score=1.0)  # every passage tied: trec_eval's order is docno descending
    run_path = write_run(run, tmp_path / "run.trec", tag=kind)
    ours = evaluate_run(read_run(run_path), spec.qrels, spec.relevance_level,
                        ["ndcg@10", "ndcg@10:judged", "ndcg@5:judged", "mrr@10", "mrr@10:judged"])
    means = trec_eval(spec.qrels_path, run_path, {"ndcg@10:judged": (["-J", "-m", "ndcg_cut.10"], "ndcg_cut_10"),
                                                  "ndcg@5:judged": (["-J", "-m", "ndcg_cut.5"], "ndcg_cut_5")})
    for metric, value in means.items():
        assert ours.means[metric] == pytest.approx(value, abs=1e-4), metric
    per_query = _trec_eval_per_query(spec.qrels_path, run_path, ["-J"], ["ndcg_cut.5,10"])
    per_query = per_query.join(_trec_eval_per_query(spec.qrels_path, run_path, ["-J", "-l", "2"], ["recip_rank"]))
    per_query = per_query.reindex(ours.per_query.index)
    assert per_query.notna().all().all()  # every judged query, in both
    np.testing.assert_allclose(ours.per_query["ndcg@10:judged"], per_query["ndcg_cut_10"], atol=1e-4)
    np.testing.assert_allclose(ours.per_query["ndcg@5:judged"], per_query["ndcg_cut_5"], atol=1e-4)
    # RR@10 of the condensed list: trec_eval's RR over it (-J) where its first relevant passage is in its top
    # 10, else 0 (-M 10 cannot say it: trec_eval cuts the run at -M before -J removes the unjudged passages)
    rr = per_query["recip_rank"]
    np.testing.assert_allclose(ours.per_query["mrr@10:judged"], rr.where(rr >= 0.1 - 1e-6, 0.0), atol=1e-4)
    if system != "bm25":  # a run whose top 10 has unjudged passages: the condensed list changes the numbers
        assert ours.means["ndcg@10:judged"] > ours.means["ndcg@10"]


def test_judged_only_equals_ir_measures_judged_only(data_dir):
    ir_measures = pytest.importorskip("ir_measures")
    from workbench.data.datasets import get_dataset

    spec = get_dataset("dl19", data_dir)
    run = read_run(spec.official_run_path("tasb"))
    names = ["nDCG(judged_only=True)@10", "RR(rel=2,judged_only=True)", "AP(rel=2,judged_only=True)"]
    ours = evaluate_run(run, spec.qrels, spec.relevance_level, names).per_query
    qrels = read_qrels(spec.qrels_path)
    frames = (pd.DataFrame({"query_id": qrels["qid"], "doc_id": qrels["docno"], "relevance": qrels["label"]}),
              pd.DataFrame({"query_id": run["qid"], "doc_id": run["docno"], "score": run["score"]}))
    parsed = {ir_measures.parse_measure(name): name for name in names}
    theirs = pd.DataFrame(0.0, index=ours.index, columns=names)
    for result in ir_measures.pytrec_eval.iter_calc(list(parsed), *frames):
        theirs.loc[str(result.query_id), parsed[result.measure]] = result.value
    pd.testing.assert_frame_equal(ours[names], theirs, atol=1e-9, check_names=False)


def test_the_leaderboard_carries_judged_only_columns_with_their_statistics(data_dir, tmp_path):
    from workbench.experiment import Workbench
    from workbench.data.datasets import get_dataset

    bench = Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "board.csv",
                      progress=False)
    bench.run_experiment(["dl19", "dl20"], ["official-bm25", "official-tasb"], baseline="official-bm25",
                         pools={"dl19+dl20": ["dl19", "dl20"]})
    board = pd.read_csv(tmp_path / "board.csv")
    for metric in ("mrr@10:judged", "ndcg@5:judged", "ndcg@10:judged"):
        for column in (metric, f"{metric}_ci_low", f"delta_{metric}", f"p_adj_{metric}", f"sig_{metric}"):
            assert column in board.columns, column
    row = board[(board["system"] == "official-tasb") & (board["slice"] == "all")].set_index("dataset")
    assert set(row.index) == {"dl19", "dl20", "dl19+dl20"}
    spec = get_dataset("dl19", data_dir)
    expected = evaluate_run(read_run(spec.official_run_path("tasb")), spec.qrels, 2, ["ndcg@10:judged"]).means
    assert row.loc["dl19", "ndcg@10:judged"] == pytest.approx(expected["ndcg@10:judged"], abs=1e-4)
    assert row.loc["dl19", "ndcg@10:judged"] != row.loc["dl19", "ndcg@10"]
