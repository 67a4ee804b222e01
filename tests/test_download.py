"""workbench.data.materialise through the REAL ir_datasets code, offline.

ir_datasets trusts files that already sit at its cache paths under ``$IR_DATASETS_HOME``
(``Download.path()`` returns an existing ``cache_path`` without checking its md5, and
``Cache`` only builds a file that is absent), so tiny fixture files placed there stand in
for the MS MARCO downloads:

    msmarco-passage/irds_version.txt            "v2" (else ir_datasets' Migrator deletes collection.tsv)
    msmarco-passage/collection.tsv              docs (normally extracted from collectionandqueries.tar.gz);
                                                the docs store collection.tsv.pklz4 is built from it on first use
    msmarco-passage/trec-dl-2019/queries.tsv    Cache of msmarco-test2019-queries.tsv.gz
    msmarco-passage/trec-dl-2019/qrels          download cache_path of 2019qrels-pass.txt
    msmarco-passage/trec-dl-2019/ms.run         Cache of the top-1000 pool, 'qid<TAB>pid' (no scores)
    msmarco-passage/trec-dl-2020/queries.tsv.gz download cache_path (read through gzip, never cached)
    msmarco-passage/trec-dl-2020/qrels          download cache_path of 2020qrels-pass.txt
    msmarco-passage/trec-dl-2020/ms.run         here 'qid pid score' (a scored pool, to test the depth cut)
    msmarco-passage/dev/small/queries.tsv       Cache of queries.dev.small.tsv
    msmarco-passage/dev/small/qrels             Cache of qrels.dev.small.tsv

ir_datasets reads IR_DATASETS_HOME at import, so every call runs in a subprocess, with the
network cut off (sockets refuse to connect or resolve, one try, proxy to a closed port):
anything that tries to download fails at once instead of hanging.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.data.datasets import get_dataset
from workbench.data.trec import read_run

REPO = Path(__file__).resolve().parent.parent

PASSAGES = {  # pid -> raw text (with whitespace to collapse); stored out of pid order on purpose
    "100": "DL19 relevant  passage\tone",
    "23": "DL19 candidate passage",
    "7": "shared passage\n",
    "5": "DL20 top candidate",
    "42": "DL20 second candidate",
    "43": "DL20 third candidate (below depth 2)",
    "8": "dev relevant passage",
    "9": "dev candidate passage",
    "1000": "unused passage",
    "31": "unjudged DL19 query candidate",
}

# Prelude of every subprocess: no network at all, so a download attempt fails fast.
NO_NETWORK = textwrap.dedent("""
    import socket
    def _no_network(*args, **kwargs):
        raise OSError("network disabled in tests")
    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.create_connection = _no_network
    def _no_dns(*args, **kwargs):
        raise socket.gaierror("network disabled in tests")
    socket.getaddrinfo = _no_dns
""")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_ir_datasets_home(home: Path) -> None:
    """Tiny stand-ins for the msmarco-passage files at ir_datasets' cache paths."""
    base = home / "msmarco-passage"
    _write(base / "irds_version.txt", "v2")
    _write(base / "collection.tsv", "".join(f"{pid}\t{text.replace(chr(10), ' ').replace(chr(9), '  ')}  \n"
                                            for pid, text in PASSAGES.items()))
    # DL19: qid 1 and 2 judged, 3 unjudged (not in trec-dl-2019/judged)
    _write(base / "trec-dl-2019/queries.tsv", "1\tdl19 query one\n2\tdl19   query two\n3\tunjudged query\n")
    _write(base / "trec-dl-2019/qrels", "1 Q0 100 3\n1 Q0 7 0\n2 Q0 23 2\n")
    _write(base / "trec-dl-2019/ms.run", "1\t23\n1\t100\n2\t7\n2\t23\n3\t31\n")
    # DL20: three topics, only qid 20 judged; a scored pool
    (base / "trec-dl-2020").mkdir(parents=True, exist_ok=True)
    with gzip.open(base / "trec-dl-2020/queries.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("20\tdl20 query\n21\tdl20 unjudged\n22\tanother unjudged\n")
    _write(base / "trec-dl-2020/qrels", "20 Q0 5 3\n20 Q0 7 1\n")
    _write(base / "trec-dl-2020/ms.run", "20 42 5.0\n20 5 9.0\n20 43 1.0\n21 7 2.0\n21 43 1.0\n")
    # dev small: tab-separated qrels as upstream; qid 51 judges a passage missing from the collection
    _write(base / "dev/small/queries.tsv", "50\tdev query\n51\tdev query two\n52\tdev query three\n")
    _write(base / "dev/small/qrels", "50\t0\t8\t1\n51\t0\t77777\t1\n52\t0\t9\t1\n")


def run_python(code: str, home: Path, timeout: float = 120) -> dict:
    """Run ``code`` (which prints one JSON line last) with ir_datasets pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update({
        "IR_DATASETS_HOME": str(home),
        "IR_DATASETS_TMP": str(home / "tmp"),
        "IR_DATASETS_SKIP_DISK_FREE": "true",  # the docs store hints 14 GB for the real collection
        "IR_DATASETS_DL_TRIES": "1",
        "IR_DATASETS_DL_TIMEOUT": "2",
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
        "PYTHONPATH": str(REPO),
    })
    result = subprocess.run([sys.executable, "-c", NO_NETWORK + textwrap.dedent(code)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    """One subprocess materialises four targets: scored/unscored pools and dev600 (docs store via
    get_many), the same through a collection scan, the full collection, and a resumed run."""
    root = tmp_path_factory.mktemp("download")
    home = root / "irds"
    build_ir_datasets_home(home)
    dev_run = root / "dev-candidates.trec"
    # 50 and 52 are dev-small queries, 99 is not (dropped); depth 2 cuts qid 50 to two passages
    _write(dev_run, "50 Q0 9 1 -1 bm25\n50 Q0 8 2 -2 bm25\n50 Q0 1000 3 -3 bm25\n"
                    "52 Q0 9 1 -1 bm25\n99 Q0 7 1 -1 bm25\n")
    targets = {name: root / name for name in ("store", "scan", "full")}
    started = time.perf_counter()
    out = run_python(f"""
        import json
        from workbench.data.materialise import materialise
        t = {json.dumps({k: str(v) for k, v in targets.items()})}
        res = {{}}
        res["store"] = materialise(t["store"], depth=2, dev_candidates={str(dev_run)!r}, docstore=True, progress=False)
        res["scan"] = materialise(t["scan"], depth=2, dev_candidates={str(dev_run)!r}, docstore=False, progress=False)
        res["full"] = materialise(t["full"], depth=2, full_collection=True, progress=False)
        res["again"] = materialise(t["store"], depth=2, dev_candidates={str(dev_run)!r}, progress=False)
        print(json.dumps(res))
    """, home)
    return {"summaries": out, "targets": targets, "home": home, "root": root, "dev_run": dev_run,
            "seconds": time.perf_counter() - started}


def _collection(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.rstrip("\n").split("\t")) for line in path.read_text(encoding="utf-8").splitlines()]


def test_layout_is_readable_by_get_dataset(materialised):
    target = materialised["targets"]["store"]
    dl19 = get_dataset("dl19", data_dir=target)
    assert list(dl19.topics["qid"]) == ["1", "2"]  # judged topics only
    assert list(dl19.topics["query"]) == ["dl19 query one", "dl19 query two"]
    assert len(dl19.qrels) == 3 and dict(zip(dl19.qrels["docno"], dl19.qrels["label"]))["100"] == 3
    dl20 = get_dataset("dl20", data_dir=target)
    assert list(dl20.topics["qid"]) == ["20", "21", "22"] and list(dl20.judged_topics["qid"]) == ["20"]
    dev = get_dataset("dev-small", data_dir=target)
    assert list(dev.topics["qid"]) == ["50", "51", "52"] and len(dev.qrels) == 3
    dev600 = get_dataset("dev600", data_dir=target)
    assert list(dev600.topics["qid"]) == ["50", "52"]
    assert sorted(dev600.qrels["qid"]) == ["50", "52"]


def test_official_runs(materialised):
    target = materialised["targets"]["store"]
    summary = materialised["summaries"]["store"]
    # DL19 pool has no scores: kept whole (all candidates of the judged queries), flagged
    dl19 = read_run(get_dataset("dl19", data_dir=target).official_run_path("bm25"))
    assert sorted(zip(dl19["qid"], dl19["docno"])) == [("1", "100"), ("1", "23"), ("2", "23"), ("2", "7")]
    assert summary["files"]["runs/bm25.dl19.trec"]["scored"] is False
    assert any("dl19" in w and "no scores" in w for w in summary["warnings"])
    # DL20 pool has scores: top-2 per query by score
    dl20 = read_run(get_dataset("dl20", data_dir=target).official_run_path("bm25"))
    assert [tuple(r) for r in dl20[["qid", "docno", "rank"]].itertuples(index=False)] == [
        ("20", "5", 1), ("20", "42", 2), ("21", "7", 1), ("21", "43", 2)]
    dev600 = read_run(get_dataset("dev600", data_dir=target).official_run_path("bm25"))
    assert sorted(zip(dev600["qid"], dev600["docno"])) == [("50", "8"), ("50", "9"), ("52", "9")]
    assert summary["dev600"]["status"] == "written"


def test_collection_holds_exactly_the_needed_passages(materialised):
    store, scan = materialised["targets"]["store"], materialised["targets"]["scan"]
    rows = _collection(store / "collection.tsv")
    # judged (dl19, dl20, dev-small) + candidates; not 1000 (cut by depth), 43 is a dl20 candidate of qid 21,
    # not 31 (unjudged DL19 query); 77777 is judged but absent upstream
    assert [pid for pid, _ in rows] == ["5", "7", "8", "9", "23", "42", "43", "100"]
    assert dict(rows)["100"] == "DL19 relevant passage one"  # whitespace collapsed
    info = materialised["summaries"]["store"]["files"]["collection.tsv"]
    assert info["lookup"] == "docstore" and info["missing"] == 1 and info["missing_examples"] == ["77777"]
    assert (materialised["home"] / "msmarco-passage" / "collection.tsv.pklz4").exists()  # built by get_many
    # the scan path gives the same file
    assert materialised["summaries"]["scan"]["files"]["collection.tsv"]["lookup"] == "scan"
    assert (scan / "collection.tsv").read_bytes() == (store / "collection.tsv").read_bytes()
    assert get_dataset("dl19", data_dir=store).collection_path.is_file()


def test_full_collection_sorted_by_pid(materialised):
    full = materialised["targets"]["full"]
    rows = _collection(full / "collection.tsv")
    assert [pid for pid, _ in rows] == sorted(PASSAGES, key=int)
    assert all(text == " ".join(PASSAGES[pid].split()) for pid, text in rows)
    summary = materialised["summaries"]["full"]
    assert summary["files"]["collection.tsv"]["resorted"] is True  # the fixture is stored out of pid order
    assert summary["dev600"]["status"] == "skipped"
    assert not (full / "topics" / "dev600.tsv").exists()
    assert any(w.startswith("dev600 skipped") for w in summary["warnings"])


def test_second_run_skips_complete_files(materialised):
    again = materialised["summaries"]["again"]
    assert again["files"] and all(e["status"].startswith("skipped") for e in again["files"].values())
    assert not list(materialised["targets"]["store"].rglob("*.tmp"))


def test_resume_needs_no_ir_datasets_data_and_redoes_only_missing_files(materialised, tmp_path):
    """With an empty ir_datasets home, a complete target is fully skipped; a deleted file is
    rebuilt from ir_datasets, which here has no data and no network: a clear error."""
    target = materialised["targets"]["store"]
    empty_home = tmp_path / "empty-home"
    dev_run = materialised["dev_run"]
    code = f"""
        import json
        from workbench.data.materialise import materialise
        from workbench.core.errors import WorkbenchError
        s = materialise({str(target)!r}, depth=2, dev_candidates={str(dev_run)!r}, progress=False)
        statuses = sorted({{e["status"] for e in s["files"].values()}})
        import os
        os.unlink({str(target / "qrels" / "dl20-passage.txt")!r})
        try:
            materialise({str(target)!r}, depth=2, dev_candidates={str(dev_run)!r}, progress=False)
            error = None
        except WorkbenchError as e:
            error = str(e)
        print(json.dumps({{"statuses": statuses, "error": error}}))
    """
    started = time.perf_counter()
    out = run_python(code, empty_home)
    assert out["statuses"] == ["skipped (already complete)"]
    assert out["error"] and "dl20 qrels" in out["error"]
    assert "internet" in out["error"] and "WORKBENCH_DATA" in out["error"]
    assert time.perf_counter() - started < 60  # failed fast, no hanging download


def test_offline_error_is_one_clear_line(tmp_path):
    out = run_python(f"""
        import json
        from workbench.data.materialise import materialise
        from workbench.core.errors import WorkbenchError
        try:
            materialise({str(tmp_path / "target")!r}, progress=False)
            print(json.dumps({{"error": None}}))
        except WorkbenchError as e:
            print(json.dumps({{"error": str(e)}}))
    """, tmp_path / "empty-home")
    error = out["error"]
    assert error and "\n" not in error
    assert "could not download" in error and "internet" in error and "WORKBENCH_DATA" in error
    assert not (tmp_path / "target" / "topics" / "dl19-passage.tsv").exists()


def test_bad_arguments_fail_before_any_download(tmp_path):
    from workbench.data.materialise import materialise
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="dev_candidates run not found"):
        materialise(tmp_path / "t", dev_candidates=tmp_path / "nope.trec", progress=False)
    with pytest.raises(WorkbenchError, match="depth"):
        materialise(tmp_path / "t", depth=0, progress=False)
