"""TREC file I/O: strict reading with one-line errors, deterministic atomic writing."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from workbench.data.trec import read_qrels, read_run, read_topics, sort_run, write_run


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_run_parses_and_ranks(tmp_path):
    run = read_run(write(tmp_path / "r.trec", "1 Q0 a 1 2.0 x\n1 Q0 b 2 3.0 x\n2 Q0 c 1 1.0 x\n"))
    assert list(run.columns) == ["qid", "docno", "score", "rank"]
    assert run[run.qid == "1"].docno.tolist() == ["b", "a"]  # ranked by score, not by file order
    assert run.loc[run.qid == "1", "rank"].tolist() == [1, 2]


@pytest.mark.parametrize("line, fragment", [
    ("1 Q0 a 1 2.0", "expected 6 fields"),
    ("1 Q0 a one 2.0 x", "rank 'one' is not an integer"),
    ("1 Q0 a 1 high x", "score 'high' is not a number"),
    ("1 Q0 a 1 nan x", "not finite"),
])
def test_malformed_run_line_names_file_and_line(tmp_path, line, fragment):
    path = write(tmp_path / "bad.trec", f"1 Q0 z 1 5.0 x\n\n{line}\n")
    with pytest.raises(WorkbenchError) as error:
        read_run(path)
    message = str(error.value)
    assert message.startswith(f"{path}:3: ")
    assert fragment in message
    assert "\n" not in message


def test_empty_run_is_an_error(tmp_path):
    with pytest.raises(WorkbenchError, match="run is empty"):
        read_run(write(tmp_path / "empty.trec", "\n\n"))


def test_duplicate_document_in_run(tmp_path):
    with pytest.raises(WorkbenchError, match=r":2: duplicate document 'a' for query '1' \(first on line 1\)"):
        read_run(write(tmp_path / "dup.trec", "1 Q0 a 1 2 x\n1 Q0 a 2 1 x\n"))


def test_qrels_with_too_few_columns(tmp_path):
    path = write(tmp_path / "q.txt", "1 0 a 1\n1 a 2\n")
    with pytest.raises(WorkbenchError) as error:
        read_qrels(path)
    assert str(error.value).startswith(f"{path}:2: malformed qrels line: expected 4 fields")


def test_qrels_non_integer_label_and_duplicates(tmp_path):
    with pytest.raises(WorkbenchError, match=":1: .*label 'x' is not an integer"):
        read_qrels(write(tmp_path / "q1.txt", "1 0 a x\n"))
    with pytest.raises(WorkbenchError, match=":2: duplicate judgment"):
        read_qrels(write(tmp_path / "q2.txt", "1 0 a 1\n1 0 a 2\n"))


def test_topics_crlf_empty_query_and_duplicates(tmp_path):
    topics = read_topics(write(tmp_path / "t.tsv", "1\t what  is x \r\n2\tdefine y\r\n"))
    assert topics.to_dict("list") == {"qid": ["1", "2"], "query": ["what is x", "define y"]}
    with pytest.raises(WorkbenchError, match=":2: empty query for qid '2'"):
        read_topics(write(tmp_path / "e.tsv", "1\tq\n2\t  \n"))
    with pytest.raises(WorkbenchError, match=":2: duplicate query id '1'"):
        read_topics(write(tmp_path / "d.tsv", "1\tq\n1\tr\n"))


def test_missing_file(tmp_path):
    with pytest.raises(WorkbenchError, match="file not found"):
        read_run(tmp_path / "nope.trec")


def test_ties_are_broken_deterministically_by_docno_descending_as_trec_eval():
    run = pd.DataFrame({"qid": ["1"] * 3, "docno": ["c", "a", "b"], "score": [1.0, 1.0, 2.0]})
    assert sort_run(run).docno.tolist() == ["b", "c", "a"]
    shuffled = run.sample(frac=1.0, random_state=3)
    assert sort_run(shuffled).docno.tolist() == ["b", "c", "a"]


def test_write_run_round_trip_and_format(tmp_path):
    run = pd.DataFrame({"qid": ["2", "1", "1"], "docno": ["x", "a", "b"], "score": [0.5, 1.0, 3.0]})
    path = write_run(run, tmp_path / "out.trec", tag="my system")
    lines = path.read_text().splitlines()
    assert lines[0] == "1 Q0 b 1 3.000000 mysystem"
    assert all(len(line.split()) == 6 for line in lines)
    back = read_run(path)
    assert back.docno.tolist() == ["b", "a", "x"]


def test_write_run_failure_leaves_no_partial_file(tmp_path):
    class Exploding(float):
        def __format__(self, spec):
            raise RuntimeError("disk full")

    run = pd.DataFrame({"qid": ["1", "1"], "docno": ["a", "b"], "score": [1.0, 2.0]})
    target = tmp_path / "out.trec"
    import workbench.data.trec as trec

    original = trec.sort_run

    def sabotaged(frame):
        ordered = original(frame)
        ordered["score"] = ordered["score"].astype(object)
        ordered.loc[1, "score"] = Exploding(1.0)
        return ordered

    trec.sort_run = sabotaged
    try:
        with pytest.raises(RuntimeError):
            write_run(run, target, tag="t")
    finally:
        trec.sort_run = original
    assert list(tmp_path.iterdir()) == []
