"""Query-type classifier: rules, label files, precedence, committed files and accuracy on hand labels."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from workbench.analysis import query_types as qt
from workbench.core.errors import WorkbenchError
from workbench.analysis.query_types import EXPLORATORY, QA

REPO = Path(__file__).resolve().parent.parent
GOLD = Path(__file__).resolve().parent / "data" / "query_types_gold.tsv"
LABEL_DATASETS = ("dl19", "dl20", "dev600", "dev-small")

# (query, expected label, rule that must fire). At least one example per rule; the
# first block are the examples from the task definition.
EXAMPLES = [
    ("how long is life cycle of flea", QA, "quantity"),
    ("define visceral?", QA, "definition"),
    ("who sings monk theme song", QA, "who"),
    ("what is wifi vs bluetooth", EXPLORATORY, "comparison"),
    ("causes of left ventricular hypertrophy", EXPLORATORY, "facets"),
    ("difference between rn and bsn", EXPLORATORY, "comparison"),
    ("how to find the midsegment of a trapezoid", EXPLORATORY, "procedure"),
    ("why did the us volunterilay enter ww1", EXPLORATORY, "why"),
    # comparison
    ("ira transfer vs. rollover", EXPLORATORY, "comparison"),
    ("how do active transport and passive transport differ", EXPLORATORY, "comparison"),
    ("compare roth and traditional ira", EXPLORATORY, "comparison"),
    ("is the elliptical or treadmill better for burning fat", EXPLORATORY, "comparison"),
    ("how similar is spanish to portuguese", EXPLORATORY, "comparison"),
    ("turkey and china time difference", QA, "attribute"),  # a time difference is a number
    # blank / cloze
    ("tracheids are part of _____.", QA, "blank"),
    ("independence day was first celebrated in", QA, "cloze"),
    # quantity
    ("how many types of rock are there", QA, "quantity"),
    ("how long does it take to remove wisdom tooth", QA, "quantity"),
    ("how much would it cost to install my own wind turbine", QA, "quantity"),
    ("how often to button quail lay eggs", QA, "quantity"),
    # why
    ("why did the ancient egyptians call their land kemet, or black land?", QA, "why-name"),
    ("why is pete rose banned from hall of fame", EXPLORATORY, "why"),
    ("how come cats purr", EXPLORATORY, "why"),
    ("what are the possible reasons the decline of the maya", EXPLORATORY, "why"),
    ("to what extent is exclusion ethical", EXPLORATORY, "why"),
    ("describe how muscles and bones work together to produce movement", EXPLORATORY, "explain"),
    # pronunciation vs procedure
    ("how do you pronounce micr", QA, "say-spell"),
    ("how do you say thank you in japanese", QA, "say-spell"),
    ("how do you lower hardness in pool water?", EXPLORATORY, "procedure"),
    ("what the best way to get clothes white", EXPLORATORY, "procedure"),
    ("what can you do about discrimination in the workplace in oklahoma city", EXPLORATORY, "procedure"),
    ("what to serve with crab cakes", EXPLORATORY, "procedure"),
    ("treating tension headaches without medication", EXPLORATORY, "gerund-procedure"),
    # how + auxiliary
    ("how is the weather in jamaica", QA, "weather"),
    ("how are some sharks warm blooded", EXPLORATORY, "how-explanation"),
    ("how does granulation tissue start", EXPLORATORY, "how-explanation"),
    ("how a hot spark plug works", EXPLORATORY, "how-explanation"),
    # yes/no beats the cue words it contains
    ("do goldfish grow", QA, "yes-no"),
    ("does legionella pneumophila cause pneumonia", QA, "yes-no"),
    ("can fever cause miscarriage early pregnancy", QA, "yes-no"),
    ("is cdg airport in main paris", QA, "yes-no"),
    # consequences
    ("what happens if you ignore a collections agency", EXPLORATORY, "consequence"),
    ("what does it mean if your tsh is low", EXPLORATORY, "consequence"),
    ("effects of using pedialyte", EXPLORATORY, "consequence"),
    ("what did the treaty of versailles lead to", EXPLORATORY, "consequence"),
    # definitions
    ("definition declaratory judgment", QA, "definition"),
    ("exons definition biology", QA, "definition"),
    ("meaning of shebang", QA, "definition"),
    ("dog day afternoon meaning", QA, "definition"),
    ("what does unesco stand for", QA, "definition"),
    ("what does rushed mean", QA, "definition"),
    ("define: geon", QA, "definition"),
    # lists and facets
    ("right pelvic pain causes", EXPLORATORY, "facets"),
    ("types of dysarthria from cerebral palsy", EXPLORATORY, "facets"),
    ("what types of food can you cook sous vide", EXPLORATORY, "facets"),
    ("cinnamon honey and lemon benefits", EXPLORATORY, "facets"),
    ("ketamine withdrawal symptoms", EXPLORATORY, "facets"),
    ("most scenic spots in london", EXPLORATORY, "facets"),
    ("what cause elevated liver enzymes", EXPLORATORY, "cause"),
    ("what are bed bugs caused from", EXPLORATORY, "cause"),
    ("what is durable medical equipment consist of", EXPLORATORY, "composition"),
    ("what's in an amf", EXPLORATORY, "composition"),
    ("what foods contain histamines?", EXPLORATORY, "facets"),
    ("what plants have edible vegetable leaves?", EXPLORATORY, "plural-what"),
    ("which vitamins help heal bruises", EXPLORATORY, "plural-what"),
    ("what federal judges did kennedy appoint", EXPLORATORY, "plural-what"),
    ("what company manufactures docetaxel", QA, "what"),  # "manufactures" is a verb here
    ("what are the social determinants of health", EXPLORATORY, "what-are-the"),
    ("what are some operating systems for computers", EXPLORATORY, "what-are-the"),
    ("what are the two species that are considered mountain yellow-legged frogs?", QA, "fixed-count"),
    ("what is the daily life of thai people", EXPLORATORY, "open-topic"),
    ("history of interest rates", EXPLORATORY, "open-topic"),
    ("names of tundras", EXPLORATORY, "plural-topic"),
    ("medications for oppositional defiant disorder", EXPLORATORY, "plural-topic"),
    ("largest onion producers", EXPLORATORY, "superlative-list"),
    ("most popular spectator sports in australia", EXPLORATORY, "superlative-list"),
    # attribute look-ups
    ("cost of interior concrete flooring", QA, "attribute"),
    ("average annual income data analyst", QA, "attribute"),
    ("cwh price target", QA, "attribute"),
    ("camc credit union routing number", QA, "attribute"),
    ("calories in homemade apple butter", QA, "attribute"),
    ("hydrogen is a liquid below what temperature", QA, "attribute"),
    # factoid question words
    ("who is robert gray", QA, "who"),
    ("when was the salvation army founded", QA, "when"),
    ("where is the show shameless filmed", QA, "where"),
    ("what county is new london tx", QA, "where"),
    ("which greek deity was honored with a statue inside the parthenon?", QA, "which"),
    ("largest flea market in alabama", QA, "superlative"),
    ("what type of tissue are bronchioles", QA, "what-type"),
    ("what kind of match is necessary for an organ transplant", QA, "what-type"),
    ("what is a statutory deed", QA, "what-is"),
    ("what is theraderm used for", QA, "what-is"),
    ("what medium do radio waves travel through", QA, "what"),
    ("what can contour plowing reduce", QA, "what"),
    ("example of monotonic function", QA, "example"),
    ("vanguard wellesley two rivers", QA, "default"),
]


@pytest.mark.parametrize("query,label,rule", EXAMPLES, ids=[e[0][:40] for e in EXAMPLES])
def test_examples(query, label, rule):
    result = qt.classify(query)
    assert (result.label, result.reason.split(":")[0]) == (label, rule), result.reason


def test_every_rule_has_an_example():
    fired = {rule for _, _, rule in EXAMPLES}
    assert {rule.name for rule in qt.RULES} | {"default"} == fired


def test_rule_names_unique_and_labels_known():
    names = [rule.name for rule in qt.RULES]
    assert len(names) == len(set(names))
    assert all(rule.label in qt.LABELS for rule in qt.RULES)


def test_reason_names_rule_and_evidence():
    result = qt.classify("Define Visceral?")
    assert result == qt.QueryType(QA, "definition: 'define' -> definition")
    assert qt.classify("What is WiFi   VS Bluetooth").reason == "comparison: contains 'vs' -> comparison"


def test_reasons_non_empty_on_many_queries():
    queries = [e[0] for e in EXAMPLES] + ["", "?", "x", "   ", "___", "vs", "how", "what"]
    for query in queries:
        result = qt.classify(query)
        assert result.label in qt.LABELS
        assert result.reason.strip() and "->" in result.reason and "\t" not in result.reason


def test_query_type_is_frozen():
    result = qt.classify("do goldfish grow")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.label = EXPLORATORY  # type: ignore[misc]


def test_constants():
    assert (qt.QA, qt.EXPLORATORY) == ("qa", "exploratory")
    assert qt.SLICES == ("all", "qa", "exploratory")


def _topics(*pairs):
    return pd.DataFrame({"qid": [p[0] for p in pairs], "query": [p[1] for p in pairs]})


def test_classify_topics_keeps_order_and_columns():
    topics = _topics(("3", "define visceral?"), ("1", "causes of military suicide"), ("2", "who is robert gray"))
    labels = qt.classify_topics(topics)
    assert list(labels.columns) == ["qid", "label", "reason"]
    assert list(labels["qid"]) == ["3", "1", "2"]
    assert list(labels["label"]) == [QA, EXPLORATORY, QA]
    with pytest.raises(WorkbenchError, match="qid and query"):
        qt.classify_topics(pd.DataFrame({"qid": ["1"]}))


def test_write_read_round_trip(tmp_path):
    labels = pd.DataFrame({"qid": ["1", "2"], "label": [QA, EXPLORATORY],
                           "reason": ["a\treason with\ttabs", "b\nnewline"]})
    path = qt.write_labels(labels, tmp_path / "sub" / "x.query-types.tsv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == ["qid\tlabel\treason", "1\tqa\ta reason with tabs", "2\texploratory\tb newline"]
    back = qt.read_labels(path)
    assert list(back.columns) == ["qid", "label", "reason"]
    assert back.to_dict("list") == {"qid": ["1", "2"], "label": [QA, EXPLORATORY],
                                    "reason": ["a reason with tabs", "b newline"]}
    assert not list(tmp_path.glob("sub/.*.tmp"))  # atomic write left no temporary file


def test_write_labels_rejects_bad_input(tmp_path):
    path = tmp_path / "x.tsv"
    with pytest.raises(WorkbenchError, match="unknown label"):
        qt.write_labels(pd.DataFrame({"qid": ["1"], "label": ["factoid"], "reason": ["r"]}), path)
    with pytest.raises(WorkbenchError, match="duplicate qid"):
        qt.write_labels(pd.DataFrame({"qid": ["1", "1"], "label": [QA, QA], "reason": ["r", "r"]}), path)
    with pytest.raises(WorkbenchError, match="missing: reason"):
        qt.write_labels(pd.DataFrame({"qid": ["1"], "label": [QA]}), path)
    assert not path.exists()


def _write(tmp_path, text, name="labels.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text,line,fragment", [
    ("qid\tlabel\treason\n1\tqa\tr\n2\tfactoid\tr\n", 3, "unknown label 'factoid'"),
    ("qid\tlabel\treason\n1\tQA\tr\n", 2, "unknown label 'QA'"),
    ("qid\tlabel\treason\n1\tqa\n", 2, "expected 3 tab-separated fields"),
    ("qid\tlabel\treason\n1\tqa\tr\textra\n", 2, "got 4"),
    ("qid\tlabel\n1 qa\n", 2, "expected 2 tab-separated fields"),
    ("qid\tlabel\treason\n1\tqa\tr\n\n7\tqa\tr\n1\texploratory\tr\n", 5, "duplicate qid '1' (first on line 2)"),
    ("qid\tlabel\treason\n\tqa\tr\n", 2, "empty qid"),
    ("query\tlabel\n1\tqa\n", 1, "malformed label file header"),
])
def test_read_labels_errors_name_file_and_line(tmp_path, text, line, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(WorkbenchError) as info:
        qt.read_labels(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and fragment in message
    assert "\n" not in message and info.value.line == line


@pytest.mark.parametrize("text,fragment", [("", "is empty"), ("\n\n", "is empty"),
                                           ("qid\tlabel\treason\n", "no labels")])
def test_read_labels_empty_files(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(WorkbenchError, match=fragment):
        qt.read_labels(path)


def test_read_labels_missing_file(tmp_path):
    with pytest.raises(WorkbenchError, match="not found"):
        qt.read_labels(tmp_path / "nope.tsv")


def test_read_labels_two_columns_and_crlf(tmp_path):
    path = _write(tmp_path, "qid\tlabel\r\n1\tqa\r\n\r\n2\texploratory\r\n", "mine.tsv")
    labels = qt.read_labels(path)
    assert labels.to_dict("list") == {"qid": ["1", "2"], "label": [QA, EXPLORATORY],
                                      "reason": ["label file mine.tsv", "label file mine.tsv"]}


class FakeDataset:
    """Just what load_query_types needs: a name and topics."""

    def __init__(self, name, topics):
        self.name = name
        self.topics = topics


@pytest.fixture
def fake_dataset():
    return FakeDataset("toy", _topics(("1", "define visceral?"), ("2", "causes of military suicide"),
                                      ("3", "who is robert gray"), ("4", "difference between rn and bsn")))


def test_load_query_types_rules_only(tmp_path, fake_dataset):
    labels = qt.load_query_types(fake_dataset, labels_dir=tmp_path)
    assert list(labels["qid"]) == ["1", "2", "3", "4"]
    assert list(labels["label"]) == [QA, EXPLORATORY, QA, EXPLORATORY]
    assert labels.attrs["sources"] == {"rules": 4}


def test_load_query_types_precedence(tmp_path, fake_dataset):
    # committed file covers qids 1 and 2; override covers 2 and 3 plus a qid of another dataset
    _write(tmp_path, "qid\tlabel\treason\n1\texploratory\tcommitted\n2\tqa\tcommitted\n",
           "toy.query-types.tsv")
    override = _write(tmp_path, "qid\tlabel\n2\texploratory\n3\texploratory\n999\tqa\n", "mine.tsv")
    labels = qt.load_query_types(fake_dataset, override, labels_dir=tmp_path).set_index("qid")
    assert labels.loc["1"].tolist() == [EXPLORATORY, "committed"]          # committed beats rules
    assert labels.loc["2"].tolist() == [EXPLORATORY, "label file mine.tsv"]  # override beats committed
    assert labels.loc["3"].tolist() == [EXPLORATORY, "label file mine.tsv"]  # override beats rules
    assert labels.loc["4", "label"] == EXPLORATORY and labels.loc["4", "reason"].startswith("comparison:")
    assert "999" not in labels.index
    assert qt.load_query_types(fake_dataset, override, labels_dir=tmp_path).attrs["sources"] == {
        "override": 2, "committed": 1, "rules": 1}


def test_load_query_types_override_must_share_qids(tmp_path, fake_dataset):
    override = _write(tmp_path, "qid\tlabel\n999\tqa\n")
    with pytest.raises(WorkbenchError, match="shares no qid") as info:
        qt.load_query_types(fake_dataset, override, labels_dir=tmp_path)
    assert str(override) in str(info.value)


def test_load_query_types_bad_override_is_reported(tmp_path, fake_dataset):
    override = _write(tmp_path, "qid\tlabel\n1\tmaybe\n")
    with pytest.raises(WorkbenchError, match=r"labels.tsv:2: unknown label 'maybe'"):
        qt.load_query_types(fake_dataset, override, labels_dir=tmp_path)


def test_score_labels():
    scores = qt.score_labels([QA, QA, QA, EXPLORATORY], [QA, EXPLORATORY, QA, EXPLORATORY])
    assert scores.accuracy == 0.75 and scores.n == 4
    assert scores.precision == {QA: 1.0, EXPLORATORY: 0.5}
    assert scores.recall == {QA: pytest.approx(2 / 3), EXPLORATORY: 1.0}
    assert scores.confusion.loc[QA, EXPLORATORY] == 1
    with pytest.raises(WorkbenchError):
        qt.score_labels([QA], [])


# --- hand labels ------------------------------------------------------------------

def _gold() -> pd.DataFrame:
    gold = pd.read_csv(GOLD, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    gold["predicted"] = [qt.classify(query).label for query in gold["query"]]
    return gold


def test_gold_file_is_well_formed():
    gold = _gold()
    assert list(gold.columns[:4]) == ["qid", "dataset", "query", "label"]
    assert set(gold["label"]) == set(qt.LABELS)
    assert not gold["qid"].duplicated().any()
    assert gold["dataset"].value_counts().to_dict() == {"dev-small": 300, "dev600": 100, "dl20": 54, "dl19": 43}


def test_rule_accuracy_on_gold_labels():
    # Measured (docs/query-types.md): 0.985 on the 197 DL19/DL20/dev600 queries, 0.980 on
    # all 497, exploratory recall 0.92, against a majority-class baseline of 0.83. The
    # rules were tuned on these labels; on batches labelled after the rules were frozen
    # they scored 0.89-0.91, which is what to expect on new queries.
    gold = _gold()
    main = gold[gold["dataset"] != "dev-small"]
    main_scores = qt.score_labels(main["label"], main["predicted"])
    all_scores = qt.score_labels(gold["label"], gold["predicted"])
    majority = (gold["label"] == QA).mean()
    assert main_scores.accuracy >= 0.95, main_scores.confusion
    assert all_scores.accuracy >= 0.95, all_scores.confusion
    assert all_scores.accuracy >= majority + 0.10
    assert all_scores.recall[EXPLORATORY] >= 0.85 and all_scores.precision[EXPLORATORY] >= 0.85
    assert all_scores.recall[QA] >= 0.95 and all_scores.precision[QA] >= 0.95


# --- data-dependent tests ----------------------------------------------------------

@pytest.fixture(scope="module")
def shared_data(data_dir) -> Path:
    """The data directory from conftest (skips with a clear reason when it is absent)."""
    return data_dir


@pytest.mark.data
def test_gold_covers_the_specified_queries(shared_data):
    from workbench.data.datasets import get_dataset

    gold = pd.read_csv(GOLD, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    by_dataset = {name: list(group["qid"]) for name, group in gold.groupby("dataset", sort=False)}
    assert by_dataset["dl19"] == list(get_dataset("dl19", shared_data).judged_topics["qid"])
    assert by_dataset["dl20"] == list(get_dataset("dl20", shared_data).judged_topics["qid"])
    assert by_dataset["dev600"] == list(get_dataset("dev600", shared_data).topics["qid"][:100])
    dev_small = get_dataset("dev-small", shared_data).topics.set_index("qid")["query"]
    rows = gold[gold["dataset"] == "dev-small"]
    assert rows["qid"].isin(dev_small.index).all()
    assert not rows["qid"].isin(get_dataset("dev600", shared_data).topics["qid"]).any()
    for name in ("dl19", "dl20", "dev600"):
        topics = get_dataset(name, shared_data).topics.set_index("qid")["query"]
        part = gold[gold["dataset"] == name]
        assert list(part["query"]) == list(topics.loc[part["qid"]])


@pytest.mark.data
@pytest.mark.parametrize("name", LABEL_DATASETS)
def test_committed_label_files_cover_every_topic_once(shared_data, name):
    from workbench.data.datasets import get_dataset

    dataset = get_dataset(name, shared_data)
    path = REPO / "qrels" / f"{name}.query-types.tsv"
    labels = qt.read_labels(path)  # strict: duplicates or unknown labels fail here
    assert sorted(labels["qid"]) == sorted(dataset.topics["qid"]), f"{path} does not cover the topics of {name}"
    assert len(labels) == len(dataset.topics)
    if name == "dl20":
        assert len(labels) == 200
    # the committed file must match the current rules (regenerate with write_dataset_labels)
    expected = qt.classify_topics(dataset.topics)
    merged = expected.merge(labels, on="qid", suffixes=("", "_file"))
    stale = merged[(merged["label"] != merged["label_file"]) | (merged["reason"] != merged["reason_file"])]
    assert stale.empty, f"{path} is stale for {len(stale)} queries; regenerate with write_dataset_labels"
    loaded = qt.load_query_types(dataset, labels_dir=REPO / "qrels")
    assert loaded.attrs["sources"] == {"committed": len(dataset.topics)}


@pytest.mark.data
def test_write_dataset_labels_and_main(shared_data, tmp_path, capsys):
    paths = qt.write_dataset_labels(["dl19"], shared_data, tmp_path)
    assert paths == [tmp_path / "dl19.query-types.tsv"]
    assert (tmp_path / "dl19.query-types.tsv").read_bytes() == (REPO / "qrels" / "dl19.query-types.tsv").read_bytes()
    out_dir = tmp_path / "labels"
    from workbench.cli import main

    code = main(["query-types", "--datasets", "dl19,dl20", "--data-dir", str(shared_data),
                 "--labels-dir", str(out_dir)])
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["dl19.query-types.tsv", "dl20.query-types.tsv"]
    printed = capsys.readouterr().out
    assert "dl20: 200 topics" in printed and "judged 54" in printed


@pytest.mark.data
def test_load_query_types_by_name_with_override(shared_data, tmp_path):
    override = _write(tmp_path, "qid\tlabel\n156493\texploratory\n")  # "do goldfish grow" is qa by rule
    labels = qt.load_query_types("dl19", override, data_dir=shared_data).set_index("qid")
    assert len(labels) == 43
    assert labels.loc["156493", "label"] == EXPLORATORY
    assert labels.loc["1110199", "label"] == EXPLORATORY  # wifi vs bluetooth, from the committed file
