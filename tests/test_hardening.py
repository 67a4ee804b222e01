"""Faults a hostile but fair user runs into: each gives one line (exit 2), loses nothing and
leaves no half-written output or leftover behind."""
from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.cli import main
from workbench.core.errors import WorkbenchError
from workbench.experiment.store import RunStore, manifest_path_of, update_manifest

REPO = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("workbench: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_bom_does_not_change_metrics(capsys, data_dir, tmp_path):
    plain = data_dir / "runs" / "bm25.dl19.trec"
    with_bom = tmp_path / "bom.trec"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    results = []
    for path in (plain, with_bom):
        code, out, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(data_dir),
                                 "--run", str(path), "--json")
        assert code == 0 and "excluded" not in err
        results.append(out)
    assert results[0] == results[1]


def test_binary_input_is_one_line(capsys, data_dir, tmp_path):
    binary = tmp_path / "run.trec"
    binary.write_bytes(b"19335 Q0 1017759 1 3.2 x\n" + bytes(range(256)))
    code, _, err = run_cli(capsys, "evaluate", "--dataset", "dl19", "--data-dir", str(data_dir), "--run", str(binary))
    assert code == 2
    one_error_line(err, f"{binary}:2:", "binary")


def test_very_long_system_name_fits_the_file_system(tmp_path):
    system = "run:/" + "a" * 300
    stored = RunStore(tmp_path).save(pd.DataFrame({"qid": ["1"], "docno": ["d"], "score": [1.0]}), "dl19", system,
                                     {}, "key")
    assert len(stored.path.name) < 120 and stored.manifest["system"] == system


def test_manifest_not_an_object_is_one_line(tmp_path):
    stored = RunStore(tmp_path).save(pd.DataFrame({"qid": ["1"], "docno": ["d"], "score": [1.0]}), "dl19", "x",
                                     {}, "key")
    manifest_path_of(stored.path).write_text("[1, 2, 3]")
    with pytest.raises(WorkbenchError, match="not a JSON object"):
        update_manifest(stored.path, evaluation={})


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b'dataset,system\n"unterminated', b"a,b\n1,2\n"])
def test_broken_leaderboard_is_one_line_before_any_work(capsys, data_dir, tmp_path, content):
    runs = tmp_path / "runs"
    runs.mkdir()
    board = runs / "leaderboard.csv"
    board.write_bytes(content)
    code, _, err = run_cli(capsys, "leaderboard", "--path", str(board))
    assert code == 2
    one_error_line(err, str(board))
    code, _, err = run_cli(capsys, "eval", "--datasets", "dl19", "--systems", "official-bm25", "--data-dir",
                           str(data_dir), "--runs-dir", str(runs), "--quiet")
    assert code == 2
    one_error_line(err, str(board))
    assert board.read_bytes() == content  # untouched
    assert not list((runs).rglob("*.trec"))  # failed before producing anything


def test_disk_full_is_one_line_and_leaves_nothing(capsys, data_dir, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--datasets", "dl19", "--systems", "official-bm25", "--data-dir",
                           str(data_dir), "--runs-dir", str(runs), "--quiet")
    assert code == 2
    one_error_line(err, "disk full")
    assert not [p for p in runs.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_sqlite_disk_full_is_one_line(capsys, data_dir, tmp_path, monkeypatch, session_cache):
    from workbench.rerankers.score_cache import ScoreCache

    def full(self, model, items):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ScoreCache, "get_many", lambda self, model, keys: {})  # nothing cached: scores are stored
    monkeypatch.setattr(ScoreCache, "put_many", full)
    code, _, err = run_cli(capsys, "eval", "--datasets", "dl19", "--systems", "official-bm25+tfidf", "--data-dir",
                           str(data_dir), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code == 2
    one_error_line(err, "disk is full")


def test_damaged_score_cache_is_set_aside_and_rebuilt(tmp_path, caplog):
    from workbench.rerankers.score_cache import ScoreCache

    path = tmp_path / "scores.sqlite"
    cache = ScoreCache(path)
    cache.put_many("m", [(f"k{i}", float(i)) for i in range(5000)])
    cache.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 3)
    cache = ScoreCache(path)
    found = cache.get_many("m", [f"k{i}" for i in range(5000)])
    cache.put_many("m", [("k1", 1.0)])
    assert cache.get_many("m", ["k1"]) == {"k1": 1.0}
    assert len(found) < 5000
    assert [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert "set aside" in caplog.text


def test_damaged_index_is_set_aside_and_rebuilt(tmp_path, caplog):
    from workbench.data.collection import Collection
    from workbench.first_stage.lucene import build_index

    source = tmp_path / "collection.tsv"
    source.write_text("".join(f"{i}\tpassage {i} about topic {i % 7}\n" for i in range(200)))
    root = tmp_path / "indexes"
    index = build_index(Collection(source), root=root, threads=1)
    next(p for p in index.path.iterdir() if p.name.startswith("_")).unlink()  # the marker file is kept
    rebuilt = build_index(Collection(source), root=root, threads=1)
    assert rebuilt.built and "set aside" in caplog.text
    assert [p for p in root.iterdir() if ".corrupt-" in p.name]


def test_sigint_during_index_build_says_so_and_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "collection.tsv").write_text(
        "".join(f"{i}\tpassage number {i} on subject {i % 97} with words {i % 13} and {i % 31}\n"
                for i in range(150_000)))
    env = {**os.environ, "WORKBENCH_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "index", "--data-dir", str(data)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    indexes = tmp_path / "cache" / "indexes"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (indexes.is_dir() and list(indexes.glob(".build-*/index"))):
        time.sleep(0.2)
    assert list(indexes.glob(".build-*")), "the build did not start"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not list(indexes.glob(".build-*"))


def test_abandoned_temporary_files_are_removed(tmp_path):
    code = ("import time\nfrom workbench.core.files import atomic_write\n"
            f"with atomic_write({str(tmp_path / 'out.trec')!r}) as h:\n    h.write('x' * 100000); h.flush(); time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob(".out.trec.*.tmp")):
        time.sleep(0.1)
    process.kill()
    process.wait()
    assert list(tmp_path.glob(".out.trec.*.tmp"))
    from workbench.core.files import atomic_write

    with atomic_write(tmp_path / "out.trec") as handle:
        handle.write("ok")
    assert [p.name for p in tmp_path.iterdir()] == ["out.trec"]


def test_report_marks_non_significant_deltas_and_non_comparable_systems():
    import numpy as np

    from workbench.report.plots import plot_slices
    from workbench.report.summary import summary_markdown

    rows = []
    for system, candidates in (("bm25-mini", "mini-collection BM25 (not comparable with full-collection figures)"),
                               ("official-bm25+tfidf", "official-bm25")):
        for slice_name in ("all", "qa", "exploratory"):
            rows.append({"dataset": "dl19", "system": system, "slice": slice_name, "n_queries": 10, "mrr@10": 0.5,
                         "ndcg@5": 0.4, "delta_mrr@10": 0.0536, "sig_mrr@10": np.nan, "delta_ndcg@5": 0.01,
                         "sig_ndcg@5": "*", "candidates": candidates, "comparability": np.nan})
    board = pd.DataFrame(rows)
    text = summary_markdown(board)
    assert "+0.0536 |" in text and "nan" not in text and "+0.0100* |" in text
    assert "bm25-mini †" in text and "official-bm25+tfidf †" not in text
    figure = plot_slices(board)
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["bm25-mini †", "official-bm25+tfidf"]
    assert not figure.axes[0].get_legend()  # the legend sits below the panels, covering no bar


def test_reused_tfidf_run_does_not_fit_tfidf(tmp_path):
    from workbench.data.collection import Collection
    from workbench.rerankers.protocol import RerankContext
    from workbench.rerankers.registry import get_reranker

    source = tmp_path / "collection.tsv"
    source.write_text("1\tthe cat sat\n2\ta dog barked\n")
    reranker = get_reranker("tfidf", RerankContext(collection=Collection(source)))
    reranker.fingerprint  # what deciding whether a stored run is reusable needs
    assert reranker._vectorizer is None  # no fit until a pair is actually scored


def test_dense_reranker_checkpoints_often_on_cpu():
    from workbench.rerankers.registry import get_reranker

    assert get_reranker("dense-minilm").pairs_batch_size == 1024  # was 2048 (about 100 s per commit), then 256


def test_quiet_java_prints_no_info_lines(tmp_path):
    code = ("import pandas as pd\nfrom workbench.data.collection import Collection\n"
            "from workbench.first_stage.lucene import build_index\nfrom workbench.first_stage.bm25 import BM25Retriever\n"
            f"index = build_index(Collection({str(tmp_path / 'c.tsv')!r}), root={str(tmp_path / 'idx')!r}, threads=1)\n"
            "print(BM25Retriever(index.path).search(pd.DataFrame({'qid': ['1'], 'query': ['cat']}), k=1).docno[0])\n")
    (tmp_path / "c.tsv").write_text("1\tthe cat sat\n2\ta dog barked\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "WORKBENCH_CACHE": str(tmp_path / "cache")}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert "INFO" not in done.stderr, done.stderr


def test_damaged_vector_cache_segment_is_set_aside_and_encoded_again(tmp_path, caplog, monkeypatch):
    import numpy as np

    from workbench.models import vector_cache

    monkeypatch.setattr(vector_cache, "CHUNK", 4)
    texts = [f"text {i}" for i in range(10)]
    calls = []

    def encode(chunk):
        calls.append(len(chunk))
        return np.full((len(chunk), 4), len(chunk), dtype=np.float32)

    first = vector_cache.VectorCache("f" * 64, "dense", root=tmp_path).get(texts, encode)
    assert calls == [4, 4, 2] and first.shape == (10, 4)
    segments = sorted(tmp_path.glob("seg-*.npz"))
    segments[1].write_bytes(b"PK\x03\x04 truncated")
    calls.clear()
    again = vector_cache.VectorCache("f" * 64, "dense", root=tmp_path).get(texts, encode)
    assert calls == [4] and again.shape == (10, 4)
    assert "set aside" in caplog.text and list(tmp_path.glob(f"{segments[1].name}.corrupt-*"))
