"""Property-based tests: any input to the readers and the system-name grammar either parses or
raises the workbench's one-line error, never another exception."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import WorkbenchError
from workbench.data.trec import read_qrels, read_run, read_topics
from workbench.experiment.systems import parse_system, split_systems
from workbench.report.leaderboard import read_leaderboard

# examples per property: the profile of the tier (tests/conftest.py: 100 in make test, 25 in make test-fast)
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELD = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=8)
NUMBER = st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["1e309", "-0", "0x10", "1_0", "nan", "inf", "", "٣"]))
SEPARATOR = st.sampled_from([" ", "\t", "  ", " \t", "\r", "\x0b", "\u00a0", "\u2003"])


def _line(fields):
    return st.tuples(*fields, SEPARATOR).map(lambda parts: parts[-1].join(parts[:-1]))


RUN_LINE = _line([FIELD, st.just("Q0"), FIELD, NUMBER, NUMBER, FIELD])
QRELS_LINE = _line([FIELD, st.just("0"), FIELD, NUMBER])
TOPICS_LINE = st.tuples(FIELD, st.sampled_from(["\t", " ", ""]), FIELD).map("".join)
ENDING = st.sampled_from(["\n", "\r\n", "\r", ""])


def _document(line):
    structured = st.lists(st.tuples(line, ENDING).map("".join), max_size=6).map("".join).map(
        lambda text: text.encode("utf-8"))
    bom = st.tuples(st.sampled_from([b"", b"\xef\xbb\xbf"]), structured).map(b"".join)
    return st.one_of(bom, st.binary(max_size=200))


def _parses_or_one_line_error(reader, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input"
        path.write_bytes(data)
        try:
            reader(path)
        except WorkbenchError as error:
            assert "\n" not in str(error) and str(error)


@SETTINGS
@given(_document(RUN_LINE))
def test_run_reader(data):
    _parses_or_one_line_error(read_run, data)


@SETTINGS
@given(_document(QRELS_LINE))
def test_qrels_reader(data):
    _parses_or_one_line_error(read_qrels, data)


@SETTINGS
@given(_document(TOPICS_LINE))
def test_topics_reader(data):
    _parses_or_one_line_error(read_topics, data)


CSV_CELL = st.one_of(FIELD, NUMBER, st.sampled_from(['"', '""', ",", "dataset", "system", "slice"]))
CSV = st.lists(st.lists(CSV_CELL, max_size=5).map(",".join), max_size=5).map("\n".join).map(str.encode)


@SETTINGS
@given(st.one_of(CSV, st.binary(max_size=200),
                 CSV.map(lambda body: b"dataset,system,slice,mrr@10\n" + body)))
def test_leaderboard_reader(data):
    _parses_or_one_line_error(read_leaderboard, data)


NAME_ATOM = st.sampled_from(["official-bm25", "bm25-mini", "tfidf", "dense-minilm", "run:", "rrf", "combmnz",
                             "[", "]", "|", "+", ":", ",", "=", "k1", "0.8", " ", "/tmp/x", "é", "", "\x00"])


@SETTINGS
@given(st.one_of(st.lists(NAME_ATOM, max_size=12).map("".join), st.text(max_size=40)))
def test_system_grammar(text):
    try:
        systems = split_systems(text)
    except WorkbenchError as error:
        assert "\n" not in str(error)
        return
    for system in systems:
        try:
            parse_system(system)
        except WorkbenchError as error:
            assert "\n" not in str(error)
