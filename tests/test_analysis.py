"""Sliced leaderboard, significance columns, per-query comparison and the report, on the real data."""
from __future__ import annotations

import pytest

from workbench.analysis.compare import format_comparison
from workbench.report.leaderboard import read_leaderboard
from workbench.report import write_report

pytestmark = pytest.mark.slow
SYSTEMS = ["official-bm25", "official-bm25+tfidf"]


@pytest.fixture(scope="module")
def rows(workbench):
    return workbench.run_experiment(["dl19"], SYSTEMS)


def test_leaderboard_rows_per_slice_with_significance(workbench, rows):
    board = read_leaderboard(workbench.leaderboard)
    mine = board[(board.dataset == "dl19") & board.system.isin(SYSTEMS)].set_index(["system", "slice"])
    assert set(mine.index) == {(s, sl) for s in SYSTEMS for sl in ("all", "qa", "exploratory")}
    assert mine.loc[("official-bm25", "qa"), "n_queries"] + mine.loc[("official-bm25", "exploratory"),
                                                                      "n_queries"] == 43
    reranked = mine.loc[("official-bm25+tfidf", "all")]
    assert reranked["baseline"] == "official-bm25"
    assert reranked["delta_ndcg@10"] == pytest.approx(reranked["ndcg@10"] - 0.5058, abs=1e-4)
    # TF-IDF alone is far worse than BM25 on DL19: significant after correction.
    assert reranked["sig_mrr@10"] in ("*", "**") and reranked["p_adj_mrr@10"] <= 0.05
    wins, ties, losses = map(int, reranked["wtl_ndcg@10"].split("/"))
    assert wins + ties + losses == 43 and losses > wins
    for metric in ("mrr@10", "ndcg@5"):
        assert (mine[f"{metric}_ci_low"] <= mine[metric] + 1e-12).all()


def test_compare_lists_gains_and_losses_with_passages(workbench, rows):
    comparison = workbench.compare(*SYSTEMS, "dl19", metric="ndcg@10", top=3, passages=2)
    assert len(comparison.deltas) == 43
    assert (comparison.gains.delta > 0).all() and (comparison.losses.delta < 0).all()
    assert comparison.losses.delta.is_monotonic_increasing
    assert set(comparison.deltas.type) <= {"qa", "exploratory"}
    first_loss = comparison.losses.qid.iloc[0]
    passages = comparison.passages[("official-bm25", first_loss)]
    assert len(passages) == 2 and passages.text.str.len().gt(0).all() and passages.grade.between(-1, 3).all()
    text = format_comparison(comparison)
    assert "Largest gains" in text and "Largest losses" in text and first_loss in text
    # any metric name, in either notation, not only the leaderboard's
    other = workbench.compare(*SYSTEMS, "dl19", metric="RR(rel=2)@10", top=1, passages=1)
    mrr = workbench.compare(*SYSTEMS, "dl19", metric="mrr@10", top=1, passages=1)
    assert list(other.deltas["delta"]) == list(mrr.deltas["delta"])


def test_report_writes_csv_markdown_and_png(workbench, rows, tmp_path):
    paths = write_report(read_leaderboard(workbench.leaderboard), tmp_path / "report")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text()
    assert "## dl19" in markdown and "| official-bm25+tfidf | exploratory ‡ |" in markdown  # 14 queries: MDE > 0.10
    assert "slice" in paths["csv"].read_text().splitlines()[0]


def test_cli_compare(workbench, rows, capsys, data_dir):
    from workbench.cli import main

    code = main(["compare", *SYSTEMS, "--dataset", "dl19", "--data-dir", str(data_dir), "--runs-dir",
                 str(workbench.runs_dir), "--top", "1", "--quiet"])
    assert code == 0
    assert "wins/ties/losses" in capsys.readouterr().out
