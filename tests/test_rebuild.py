"""A leaderboard rebuilt from stored runs, qrels and labels alone equals the incremental one."""
from __future__ import annotations

import pandas as pd

from workbench.cli import main


def test_rebuild_gives_the_incremental_leaderboard_back_byte_for_byte(data_dir, tmp_path, capsys):
    from workbench.experiment import Workbench

    runs = tmp_path / "runs"
    board = runs / "leaderboard.csv"
    bench = Workbench(data_dir=data_dir, runs_dir=runs, leaderboard=board, progress=False)
    # two invocations, as a user adds systems over time; fused runs are evaluated from their files
    bench.run_experiment(["dl19"], ["official-bm25", "rrf[official-bm25|official-tasb]"], baseline="official-bm25")
    bench.run_experiment(["dl19", "dl20"], ["official-tasb", "combsum[official-bm25|official-ada2]"],
                         baseline="official-bm25")
    incremental = board.read_bytes()
    assert main(["leaderboard", "--rebuild", "--path", str(board), "--data-dir", str(data_dir)]) == 0
    assert "rebuilt" in capsys.readouterr().out
    assert board.read_bytes() == incremental
    frame = pd.read_csv(board)
    # one family per (dataset, slice, baseline): three systems against official-bm25 on dl19
    compared = frame[(frame["dataset"] == "dl19") & frame["baseline"].notna()]
    assert set(compared["family_size"]) == {3}
