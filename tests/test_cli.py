"""The command line: bad input gives one clear error line and leaves no partial output."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("workbench: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_malformed_run_line(capsys, data_dir, tmp_path):
    bad = tmp_path / "bad.trec"
    bad.write_text("19335 Q0 1017759 1 3.2 x\n19335 Q0 1082489 2\n")
    code, out, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(data_dir), "--run", str(bad))
    assert code == 2 and out == ""
    assert_one_error_line(err, f"{bad}:2:", "expected 6 fields")


def test_empty_run(capsys, data_dir, tmp_path):
    empty = tmp_path / "empty.trec"
    empty.write_text("")
    code, _, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(data_dir), "--run", str(empty))
    assert code == 2
    assert_one_error_line(err, str(empty), "run is empty")


def test_unknown_dataset(capsys, data_dir, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--dataset", "dl42", "--data-dir", str(data_dir), "--run", "x")
    assert code == 2
    assert_one_error_line(err, "unknown dataset 'dl42'")


def test_missing_data_directory(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(tmp_path / "no"), "--run", "x")
    assert code == 2
    assert_one_error_line(err, str(tmp_path / "no"), "WORKBENCH_DATA")


def test_qrels_with_too_few_columns(capsys, data_dir, tmp_path):
    # A data directory whose dl19 qrels are broken on line 3.
    root = tmp_path / "data"
    (root / "topics").mkdir(parents=True)
    (root / "qrels").mkdir()
    (root / "collection.tsv").write_text("d1\tsome text\n")
    (root / "topics" / "dl19-passage.tsv").write_text("1\tquery one\n")
    (root / "qrels" / "dl19-passage.txt").write_text("1 0 d1 2\n1 0 d2 0\n1 d3 1\n")
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 d1 1 1.0 x\n")
    code, _, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(root), "--run", str(run))
    assert code == 2
    assert_one_error_line(err, "dl19-passage.txt:3:", "expected 4 fields")


def test_rerank_of_malformed_candidates_leaves_no_output(capsys, data_dir, tmp_path, session_cache):
    bad = tmp_path / "cands.trec"
    bad.write_text("19335 Q0 1017759 1 3.2 x\n19335 Q0 1082489 two 2.0 x\n")
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "rerank", "--dataset", "dl19", "--data-dir", str(data_dir), "--runs-dir",
                           str(runs), "--candidates", str(bad), "--reranker", "tfidf", "--quiet")
    assert code == 2
    assert_one_error_line(err, f"{bad}:2:", "rank 'two' is not an integer")
    # nothing but the (empty, hidden) lock files of the runs it tried to produce
    assert not runs.exists() or not any(p.is_file() and not p.name.endswith(".lock") for p in runs.rglob("*"))


def test_unknown_reranker_and_system(capsys, data_dir, tmp_path, session_cache):
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "rerank", "--dataset", "dl19", "--data-dir", str(data_dir), "--runs-dir",
                           str(runs), "--candidates", "official-bm25", "--reranker", "magic", "--quiet")
    assert code == 2
    assert_one_error_line(err, "unknown reranker 'magic'", "tfidf")
    assert not list(Path(runs).rglob("*magic*"))
    code, _, err = run_cli(capsys, "eval", "--datasets", "dl19", "--systems", "bm99", "--data-dir", str(data_dir),
                           "--runs-dir", str(runs), "--quiet")
    assert code == 2
    assert_one_error_line(err, "unknown system 'bm99'")


def test_rerankers_listing(capsys):
    code, out, _ = run_cli(capsys, "rerankers")
    assert code == 0 and out.startswith("tfidf\t") or "\ntfidf\t" in out
