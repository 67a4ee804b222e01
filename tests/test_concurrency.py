"""Concurrent workbench processes on one runs directory lose nothing and never compute the
same run twice: the leaderboard, run store and manifests are locked (core.locks)."""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.files import sha256_file
from workbench.core.locks import file_lock
from workbench.experiment.store import manifest_path_of
from workbench.report.leaderboard import read_leaderboard, upsert_rows

FORK = multiprocessing.get_context("fork")
SPAWN = multiprocessing.get_context("spawn")


def _hold(path, seconds, log):
    with file_lock(path):
        with open(log, "a") as handle:
            handle.write(f"in {time.monotonic()}\n")
        time.sleep(seconds)
        with open(log, "a") as handle:
            handle.write(f"out {time.monotonic()}\n")


def test_file_lock_excludes_other_processes_and_is_reentrant(tmp_path):
    log = tmp_path / "log"
    workers = [FORK.Process(target=_hold, args=(tmp_path / "x", 0.3, log)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    events = [line.split()[0] for line in log.read_text().splitlines()]
    assert events == ["in", "out"] * 3  # never two holders at once
    with file_lock(tmp_path / "y"):
        with file_lock(tmp_path / "y"):  # the same thread again: no self-deadlock
            pass


def _upsert(path, worker, n):
    for i in range(n):
        upsert_rows([{"dataset": "dl19", "system": f"w{worker}-{i}", "slice": "all", "mrr@10": 0.5}], path)


def test_concurrent_upserts_lose_no_rows(tmp_path):
    board = tmp_path / "leaderboard.csv"
    workers = [FORK.Process(target=_upsert, args=(board, w, 15)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(worker.exitcode == 0 for worker in workers)
    assert len(read_leaderboard(board)) == 60


SYSTEM_SETS = [  # overlapping on purpose: shared systems are where computations could double
    ["official-bm25", "official-bm25-rm3", "rrf[official-bm25|official-tasb]"],
    ["official-tasb", "official-ada2", "rrf[official-bm25|official-tasb]"],
    ["official-bm25", "official-tasb", "combsum[official-bm25|official-ada2]"],
    ["official-bm25-rm3", "official-ada2", "combsum[official-bm25|official-ada2]", "official-bm25"],
]


def _eval_process(data_dir, runs_dir, systems, computed_log):
    import sys

    from workbench.experiment import Workbench

    produce_module = sys.modules["workbench.experiment.produce"]  # the package exports a function of that name

    original = produce_module._compute_and_save

    def recording(system, dataset, session, config):
        with open(computed_log, "a") as handle:  # O_APPEND: one whole line per write
            handle.write(json.dumps([dataset.name, system.name]) + "\n")
        return original(system, dataset, session, config)

    produce_module._compute_and_save = recording
    bench = Workbench(data_dir=data_dir, runs_dir=runs_dir, leaderboard=Path(runs_dir) / "leaderboard.csv",
                      progress=False)
    bench.run_experiment(["dl19"], systems)


@pytest.mark.parametrize("trial", range(int(os.environ.get("WORKBENCH_STRESS_TRIALS", "10"))))
def test_four_concurrent_evals_lose_nothing(data_dir, tmp_path, trial):
    from workbench.experiment import Workbench

    # warm the process once so that forked children share loaded modules and compiled metrics and
    # fusions: a child compiling numba code after the fork has hung in LLVM (a cold CI venv, 0% CPU)
    Workbench(data_dir=data_dir, runs_dir=tmp_path / "warm", leaderboard=tmp_path / "warm.csv",
              progress=False).run_experiment(["dl19"], ["official-bm25", "rrf[official-bm25|official-tasb]",
                                                        "combsum[official-bm25|official-ada2]"])
    runs_dir, log = tmp_path / "runs", tmp_path / "computed.jsonl"
    # spawned, like four `workbench eval` commands: a child forked from this test process inherits the
    # locks its threads (OpenMP, ONNX Runtime, numba) held at the fork, and has hung on one in CI
    workers = [SPAWN.Process(target=_eval_process, args=(data_dir, runs_dir, systems, log))
               for systems in SYSTEM_SETS]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 600  # one deadline for all four: a hung child fails the test, not CI
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    expected = {system for systems in SYSTEM_SETS for system in systems}
    board = read_leaderboard(runs_dir / "leaderboard.csv")
    assert set(board["system"]) == expected
    assert len(board) == 3 * len(expected)  # all, qa, exploratory: 0 rows lost
    computed = [tuple(json.loads(line)) for line in log.read_text().splitlines()]
    assert sorted(computed) == sorted(set(computed)), "a run was computed twice"
    assert {system for _, system in computed} == expected
    for run_path in board["run_path"]:
        manifest = json.loads(manifest_path_of(run_path).read_text())
        assert manifest["sha256"] == sha256_file(run_path)
        assert manifest["evaluation"]["n_queries"] == 43
    assert not list(runs_dir.rglob("*.tmp"))
