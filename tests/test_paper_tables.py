"""The paper's tables of the default leaderboard (``make paper-tables``): the committed snapshot of
the default board's CSV exports to LaTeX that a real TeX engine compiles, with every significance
mark equal to the CSV's (the same Holm family), and the committed exports are what the CSV gives."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_export import compile_latex, marks_read_back
from workbench.report.export import export_table
from workbench.report.leaderboard import read_leaderboard

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
DL_DATASETS = ["dl19", "dl20", "dl19+dl20"]
DL_METRICS = ["mrr@10", "ndcg@5", "ndcg@10", "ndcg@10:judged"]


@pytest.fixture(scope="module")
def default_board():
    path = RESULTS / "leaderboard.csv"
    if not path.is_file():
        pytest.skip("docs/results/leaderboard.csv is missing: run make paper-tables")
    return read_leaderboard(path)


def test_the_default_leaderboard_compiles_and_its_marks_equal_the_csv(default_board, tmp_path):
    from workbench.experiment import DEFAULT_SYSTEMS

    assert set(DEFAULT_SYSTEMS) <= set(default_board.loc[default_board["dataset"] == "dl19", "system"])
    tex = export_table(default_board, datasets=DL_DATASETS, metrics=DL_METRICS, n=True, standalone=True)
    compile_latex(tex, tmp_path)
    assert marks_read_back(tex, default_board, DL_DATASETS, DL_METRICS) >= 20
    for slice in ("qa", "exploratory"):
        compile_latex(export_table(default_board, datasets=DL_DATASETS, metrics=DL_METRICS, slice=slice, ci=True,
                                   standalone=True), tmp_path)
        sliced = export_table(default_board, datasets=DL_DATASETS, metrics=DL_METRICS, slice=slice, standalone=True)
        marks_read_back(sliced, default_board, DL_DATASETS, DL_METRICS, slice=slice)
    if "cacm" in set(default_board["dataset"]):
        cacm = export_table(default_board, datasets=["cacm"], n=True, standalone=True)
        compile_latex(cacm, tmp_path)
        marks_read_back(cacm, default_board, ["cacm"], ["map", "precision@30"])


def test_the_committed_exports_are_the_csvs(default_board):
    for name, kwargs in (("leaderboard-dl.tex", {"format": "latex"}), ("leaderboard-dl.md", {"format": "markdown"})):
        committed = (RESULTS / name).read_text(encoding="utf-8")
        assert committed.strip() == export_table(default_board, datasets=DL_DATASETS, metrics=DL_METRICS, n=True,
                                                 **kwargs).strip()
