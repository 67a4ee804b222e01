"""Slice reliability outside MS MARCO: the share of topics the query-type rules label by their
default, the warning in the leaderboard rows, the terminal, the Markdown summary and the HTML
report, and CACM's hand labels shipped with its dataset file."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from workbench.analysis.query_types import (DEFAULT_REASON, LABELS, MAX_DEFAULT_SHARE, RULES, SliceReliability,
                                            classify_topics, default_rule_qids, load_query_types, read_labels,
                                            slice_reliability, slice_warnings, write_dataset_labels)
from workbench.data.datasets import declare_dataset_files, get_dataset

REPO = Path(__file__).resolve().parent.parent
CACM = REPO.parent / "shared" / "data" / "cacm"
CACM_LABELS = REPO / "datasets" / "cacm.query-types.tsv"

# Keyword topics no rule matches (the default labels them) and two that rules do label.
TOPICS = {"q1": "cat", "q2": "quantum computing", "q3": "parallel algorithms", "q4": "why do cats purr",
          "q5": "how many legs does a cat have"}


def _labels(n_default: int, n_other: int, sources: dict[str, int] | None = None) -> pd.DataFrame:
    reasons = [DEFAULT_REASON] * n_default + ["why: 'why' -> explanation"] * n_other
    labels = pd.DataFrame({"qid": [str(i) for i in range(len(reasons))], "label": "qa", "reason": reasons})
    if sources is not None:
        labels.attrs["sources"] = sources
    return labels


# --- the pure function ---------------------------------------------------------------------------

def test_default_rule_qids_are_told_by_the_rules_reason():
    labels = classify_topics(pd.DataFrame({"qid": list(TOPICS), "query": list(TOPICS.values())}))
    assert default_rule_qids(labels) == ["q1", "q2", "q3"]
    # a committed file holds the same reason verbatim, so it counts alike
    assert default_rule_qids(pd.DataFrame({"qid": ["a", "b"], "label": ["qa", "qa"],
                                           "reason": [DEFAULT_REASON, "hand: a list"]})) == ["a"]


def test_share_and_threshold():
    assert MAX_DEFAULT_SHARE == 0.25
    at = slice_reliability(_labels(16, 48))  # exactly a quarter: still reliable
    assert (at.n_topics, at.n_default, at.share, at.reliable, at.note()) == (64, 16, 0.25, True, "")
    over = slice_reliability(_labels(17, 47))
    assert over.share == pytest.approx(17 / 64) and not over.reliable
    assert over.note().startswith("slices unreliable: 17 of 64 topics (27%) fell to the query-type rules' default")
    cacm_like = slice_reliability(_labels(35, 29))
    assert cacm_like.columns() == {"slice_default_share": 0.5469, "slice_note": cacm_like.note()}
    assert "35 of 64 topics (55%)" in cacm_like.note()
    assert slice_reliability(_labels(0, 0)).reliable  # no topics: nothing to warn about
    assert not SliceReliability(10, 3, threshold=0.2).reliable and SliceReliability(10, 2, threshold=0.2).reliable


def test_labels_the_dataset_declares_are_reliable_by_declaration():
    assert slice_reliability(_labels(40, 24), declared=True).reliable
    # read from load_query_types' sources: the declared file must label every topic
    assert slice_reliability(_labels(40, 24, {"declared": 64})).reliable
    assert not slice_reliability(_labels(40, 24, {"declared": 10, "rules": 54})).reliable
    assert not slice_reliability(_labels(40, 24, {"committed": 64})).reliable  # rule output, committed


def test_pooled_labels_add_up_and_need_every_dataset_declared():
    both = slice_reliability([_labels(5, 15, {"committed": 20}), _labels(30, 10, {"rules": 40})])
    assert (both.n_topics, both.n_default, both.reliable) == (60, 35, False)
    declared = slice_reliability([_labels(30, 10, {"declared": 40}), _labels(30, 10, {"declared": 40})])
    assert declared.declared and declared.reliable
    assert not slice_reliability([_labels(30, 10, {"declared": 40}), _labels(30, 10, {"rules": 40})]).declared


def test_slice_warnings_one_per_dataset_from_the_board():
    board = pd.DataFrame({"dataset": ["a", "a", "b", "c", "c"], "system": "s",
                          "slice_note": [float("nan"), float("nan"), "", "slices unreliable: x",
                                         "slices unreliable: x"]})
    assert slice_warnings(board) == {"c": "slices unreliable: x"}
    assert slice_warnings(board.drop(columns="slice_note")) == {}  # a board written before the column


# --- a dataset whose topics mostly fall to the default -------------------------------------------

def _declare(root: Path, query_types: Path | None = None, name: str = "topical", prefix: str = "") -> None:
    """Declare dataset ``name`` over :data:`TOPICS` (qids prefixed by ``prefix``) with one candidate run."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs.tsv").write_text("d1\tthe cat sat\nd2\tquantum bits\nd3\tparallel sorting\nd4\tcats purr\n"
                                   "d5\tfour legs\n")
    (root / "topics.tsv").write_text("".join(f"{prefix}{qid}\t{query}\n" for qid, query in TOPICS.items()))
    (root / "qrels.txt").write_text("".join(f"{prefix}q{i} 0 d{i} 1\n" for i in range(1, 6)))
    (root / "first.trec").write_text("".join(f"{prefix}{q} Q0 d{i} 1 2.0 x\n{prefix}{q} Q0 d{i % 5 + 1} 2 1.0 x\n"
                                             for i, q in enumerate(TOPICS, start=1)))
    extra = f'query_types = "{query_types}"\n' if query_types else ""
    path = root / f"{name}.toml"
    path.write_text(f'collection = "docs.tsv"\ntopics = "topics.tsv"\nqrels = "qrels.txt"\n{extra}'
                    '[runs]\nfirst = "first.trec"\n')
    declare_dataset_files([path])


@pytest.fixture()
def topical(monkeypatch, tmp_path, session_cache):
    """A declared dataset of keyword topics: 3 of its 5 fall to the rules' default."""
    monkeypatch.setenv("WORKBENCH_DATASET_FILES", "")  # restored after the test: no declaration leaks
    monkeypatch.chdir(tmp_path)
    _declare(tmp_path / "src")
    return tmp_path


def test_rows_of_a_mostly_default_dataset_carry_the_warning(topical, capsys):
    from workbench.cli import main
    from workbench.experiment import Workbench
    from workbench.report.summary import summary_markdown

    labels = load_query_types("topical")
    assert labels.attrs["sources"] == {"rules": 5}
    board_path = topical / "runs" / "board.csv"
    bench = Workbench(runs_dir=topical / "runs", leaderboard=board_path, progress=False)
    rows = bench.run_experiment(["topical"], ["official-first"], pools={})
    assert set(rows["slice"]) == {"all", "qa", "exploratory"}
    assert (rows["slice_default_share"] == 0.6).all()
    assert rows["slice_note"].str.startswith("slices unreliable: 3 of 5 topics (60%)").all()
    assert main(["leaderboard", "--path", str(board_path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert printed == [f"warning: topical: {rows['slice_note'].iloc[0]}"]
    markdown = summary_markdown(pd.read_csv(board_path), metrics=("map",))
    assert f"**Warning:** {rows['slice_note'].iloc[0]}." in markdown.split("## topical", 1)[1]


def test_the_report_page_shows_the_warning_beside_the_slices(topical):
    from workbench.experiment import Workbench
    from workbench.report.html import build_html

    bench = Workbench(runs_dir=topical / "runs", leaderboard=topical / "runs" / "board.csv", progress=False)
    board = bench.run_experiment(["topical"], ["official-first"])
    page, _ = build_html(bench.session, board)
    section = page.split('data-dataset="topical"', 1)[1]
    assert section.count('class="warning slice-warning"') == 2
    assert "Query-type slices unreliable: 3 of 5 topics (60%)" in section
    assert "Query-type slices unreliable" not in page.split('data-dataset="topical"', 1)[0]


def test_hand_labels_declared_by_the_dataset_silence_the_warning(monkeypatch, tmp_path, session_cache):
    from workbench.experiment import Workbench

    monkeypatch.setenv("WORKBENCH_DATASET_FILES", "")
    monkeypatch.chdir(tmp_path)
    hand = tmp_path / "src" / "hand.tsv"
    hand.parent.mkdir(parents=True)
    hand.write_text("qid\tlabel\treason\n" + "".join(f"{q}\texploratory\thand: a topic to browse\n" for q in TOPICS))
    _declare(tmp_path / "src", query_types=hand)
    labels = load_query_types("topical")
    assert labels.attrs["sources"] == {"declared": 5}
    assert slice_reliability(labels).columns() == {"slice_default_share": 0.0, "slice_note": ""}
    # the rules' label writer leaves such a dataset alone: its declared file is its one source
    assert write_dataset_labels(["topical"], labels_dir=tmp_path / "out") == []
    rows = Workbench(runs_dir=tmp_path / "runs", leaderboard=tmp_path / "runs" / "board.csv",
                     progress=False).run_experiment(["topical"], ["official-first"])
    assert rows["slice_note"].fillna("").eq("").all()
    assert set(rows.loc[rows["slice"] == "exploratory", "n_queries"]) == {5}


def test_pooled_rows_count_the_topics_of_every_pooled_dataset(topical):
    from workbench.experiment import Workbench

    hand = topical / "other" / "hand.tsv"
    hand.parent.mkdir(parents=True)
    hand.write_text("qid\tlabel\treason\n" + "".join(f"o{q}\texploratory\thand: a topic\n" for q in TOPICS))
    _declare(topical / "other", query_types=hand, name="handmade", prefix="o")
    bench = Workbench(runs_dir=topical / "runs", leaderboard=topical / "runs" / "board.csv", progress=False)
    rows = bench.run_experiment(["topical", "handmade"], ["official-first"], pools={"both": ["topical", "handmade"]})
    notes = rows.groupby("dataset")["slice_note"].agg(lambda notes: set(notes.fillna("")))
    shares = rows.groupby("dataset")["slice_default_share"].agg(set)
    assert notes["handmade"] == {""} and shares["handmade"] == {0.0}
    assert shares["topical"] == {0.6} and shares["both"] == {0.3}  # 3 of the 10 pooled topics
    assert all(note.startswith("slices unreliable: 3 of 10 topics (30%)") for note in notes["both"])


# --- CACM's hand labels ---------------------------------------------------------------------------

def test_cacm_hand_labels_are_a_valid_file_of_hand_reasons():
    labels = read_labels(CACM_LABELS)  # strict: header, fields, labels, duplicates
    assert list(labels["qid"]) == [str(i) for i in range(1, 65)]
    assert set(labels["label"]) <= set(LABELS)
    rule_reason = re.compile(r"^(?:%s|default):" % "|".join(re.escape(rule.name) for rule in RULES))
    for qid, reason in zip(labels["qid"], labels["reason"]):
        assert reason.startswith("hand: ") and len(reason) > len("hand: ") + 10, qid
        assert not rule_reason.match(reason), f"qid {qid}: a rule's reason, not a hand label"
    assert labels["label"].value_counts().to_dict() == {"exploratory": 61, "qa": 3}
    assert not (REPO / "qrels" / "cacm.query-types.tsv").exists()  # one source of truth: the declared file


def test_cacm_declares_its_hand_labels_and_they_cover_its_topics():
    if not (CACM / "topics.cacm.txt").is_file():
        pytest.skip(f"the CACM topics are not at {CACM}")
    from workbench.data.declared import parse_declaration
    from workbench.data.formats import read_topic_records

    declaration = parse_declaration(REPO / "datasets" / "cacm.toml")
    assert declaration.query_types == CACM_LABELS.resolve()
    topics = pd.DataFrame([(qid, text) for qid, text, _ in read_topic_records(CACM / "topics.cacm.txt", "cacm")],
                          columns=["qid", "query"])
    labels = read_labels(CACM_LABELS)
    assert sorted(labels["qid"], key=int) == sorted(topics["qid"], key=int) and len(topics) == 64
    rules = classify_topics(topics)
    # why the file exists: the rules send more than a quarter of CACM to their default
    assert len(default_rule_qids(rules)) == 35 and not slice_reliability(rules).reliable
    merged = rules.merge(labels, on="qid", suffixes=("_rules", "_hand"))
    assert (merged["label_rules"] != merged["label_hand"]).sum() == 38


def test_cacm_slices_are_reliable_through_its_declaration(monkeypatch, session_cache):
    if not (CACM / "topics.cacm.txt").is_file():
        pytest.skip(f"the CACM topics are not at {CACM}")
    monkeypatch.setenv("WORKBENCH_DATASET_FILES", "")
    declare_dataset_files([REPO / "datasets" / "cacm.toml"])
    labels = load_query_types(get_dataset("cacm"))
    assert labels.attrs["sources"] == {"declared": 64}
    assert slice_reliability(labels).reliable and slice_reliability(labels).n_default == 0
