"""PyTerrier in and out, with pure-Python transformers (no Java, no network): a PyTerrier
pipeline as a workbench reranker and first stage on DL19, workbench systems inside
``pt.Experiment``, the workbench's rows for PyTerrier pipelines, runs reused without recomputing."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError

pt = pytest.importorskip("pyterrier")
wpt = pytest.importorskip("workbench.pyterrier")

CALLS = {"overlap": 0}


def overlap(row) -> float:
    """Query-word overlap of a passage: a pure-Python reranker (counted, to see what is recomputed)."""
    CALLS["overlap"] += 1
    words = set(row["query"].lower().split())
    return float(len(words & set(row["text"].lower().split()))) + 1.0 / (1 + len(row["text"]))


@pytest.fixture
def bench(data_dir, tmp_path, monkeypatch):
    from workbench.experiment import Workbench

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # a score cache of the test's own

    return Workbench(data_dir=data_dir, runs_dir=tmp_path / "runs", leaderboard=tmp_path / "runs" / "board.csv",
                     progress=False, metrics=["ndcg@10", "mrr@10", "nDCG@10", "RR(rel=2)@10"])


class Overlap:
    """The same function as a workbench reranker (the workbench's own numbers)."""

    @staticmethod
    def make():
        from workbench.rerankers.protocol import Reranker

        class OverlapReranker(Reranker):
            kind = "overlap-native"

            def score(self, query, passages):
                return np.array([overlap({"query": query, "text": text}) for text in passages])

        return OverlapReranker()


def test_pyterrier_reranker_equals_the_workbench_reranker_and_is_reused(bench):
    from workbench.rerankers.registry import REGISTRY

    bench.register("pt-overlap", pt.apply.doc_score(overlap))
    if "overlap-native" not in REGISTRY._entries:
        REGISTRY.register("overlap-native")(lambda context: Overlap.make())
    theirs = bench.run_system("official-bm25+pt-overlap", "dl19")
    ours = bench.run_system("official-bm25+overlap-native", "dl19")
    pd.testing.assert_frame_equal(theirs.stored.run.reset_index(drop=True), ours.stored.run.reset_index(drop=True))
    assert theirs.evaluation.means == ours.evaluation.means
    manifest = theirs.stored.manifest
    assert manifest["config"]["reranker_config"]["transformer"]["class"].endswith("ApplyDocumentScoringTransformer")
    assert "pyterrier" in manifest["config"]["reranker_config"]["transformer"]["versions"]
    # a reused run recomputes nothing, in this process or another one with the same transformer
    before = CALLS["overlap"]
    from workbench.experiment import Workbench

    again = Workbench(data_dir=bench.session.data_dir, runs_dir=bench.runs_dir, progress=False)
    again.register("pt-overlap", pt.apply.doc_score(overlap))
    assert again.run_system("official-bm25+pt-overlap", "dl19").stored.path == theirs.stored.path
    assert CALLS["overlap"] == before
    # the same reranker over the same candidates under another run name: the score cache answers
    other = Workbench(data_dir=bench.session.data_dir, runs_dir=bench.runs_dir.parent / "runs-other", progress=False)
    other.register("pt-overlap", pt.apply.doc_score(overlap))
    assert other.produce("official-bm25+pt-overlap", "dl19").manifest["pairs_scored"] == 0
    assert CALLS["overlap"] == before
    # another function under the same name is another reranker: a new key, not a stale run
    other.register("pt-overlap", pt.apply.doc_score(lambda row: -overlap(row)))
    assert other.produce("official-bm25+pt-overlap", "dl19").manifest["pairs_scored"] == 4300


def test_pyterrier_first_stage_equals_the_official_run(bench, data_dir):
    dataset = bench.dataset("dl19")
    official = bench.produce("official-bm25", "dl19").run
    source = pt.Transformer.from_df(official.assign(qid=official["qid"].astype(str))[["qid", "docno", "score"]])
    bench.register("pt-bm25", source)
    result = bench.run_system("pt-bm25", "dl19")
    assert result.evaluation.means == bench.run_system("official-bm25", "dl19").evaluation.means
    assert set(result.stored.run["qid"]) == set(dataset.judged_topics["qid"])


def test_workbench_systems_inside_pt_experiment_equal_the_workbench(bench):
    dataset = bench.dataset("dl19")
    bench.register("pt-overlap", pt.apply.doc_score(overlap))
    systems = ["official-bm25", "official-bm25+pt-overlap"]
    topics = dataset.judged_topics[["qid", "query"]].astype({"qid": str})
    qrels = dataset.qrels.rename(columns={"label": "label"})[["qid", "docno", "label"]].astype({"qid": str})
    measures = ["nDCG@10", "RR(rel=2)@10", "AP(rel=2)", "R(rel=2)@100", "Judged@10"]
    import ir_measures

    table = pt.Experiment([wpt.transformer(s, "dl19", bench) for s in systems], topics, qrels,
                          [ir_measures.parse_measure(m) for m in measures], names=systems)
    from workbench.evaluation.metrics import evaluate_run

    # ir_measures computes RR@k with its msmarco provider, which orders tied scores its own way;
    # the workbench orders them as trec_eval does (docno descending). With the workbench's order
    # written into the scores (score = -rank), pt.Experiment's RR equals the workbench's too.
    in_workbench_order = pt.apply.generic(lambda frame: frame.assign(score=-frame["rank"].astype(float)))
    ordered = pt.Experiment([wpt.transformer(s, "dl19", bench) >> in_workbench_order for s in systems], topics,
                            qrels, [ir_measures.parse_measure("RR(rel=2)@10")], names=systems)
    for system in systems:
        result = bench.run_system(system, "dl19")
        mine = evaluate_run(result.stored.run, dataset.qrels, dataset.relevance_level, measures).means
        row = table[table["name"] == system].iloc[0]
        for measure in measures:
            if measure != "RR(rel=2)@10":
                assert row[measure] == pytest.approx(mine[measure], abs=1e-9), (system, measure)
        assert ordered[ordered["name"] == system].iloc[0]["RR(rel=2)@10"] == pytest.approx(mine["RR(rel=2)@10"],
                                                                                          abs=1e-9)
        # and the workbench's own names on its leaderboard: mrr@10 is RR(rel=2)@10 on TREC DL
        assert row["nDCG@10"] == pytest.approx(result.evaluation.means["ndcg@10"], abs=1e-9)
        assert ordered[ordered["name"] == system].iloc[0]["RR(rel=2)@10"] == pytest.approx(
            result.evaluation.means["mrr@10"], abs=1e-9)
    # PyTerrier's operators compose with a workbench system
    cut = (wpt.transformer("official-bm25", "dl19", bench) % 10)(topics)
    assert cut.groupby("qid").size().max() == 10 and cut["rank"].min() == 0


def test_experiment_returns_the_workbench_rows(bench):
    official = bench.produce("official-bm25", "dl19").run
    candidates = pt.Transformer.from_df(official.assign(qid=official["qid"].astype(str))[["qid", "docno", "score"]])
    # a pipeline of PyTerrier stages: the candidates re-scored by docno length, cut at 50
    pipeline = candidates >> pt.apply.doc_score(lambda row: float(len(row["docno"])) + row["score"] / 1e3) % 50
    rows = wpt.experiment([wpt.transformer("official-bm25", "dl19", bench), pipeline], datasets=["dl19"],
                          names=["bm25", "by-length"], bench=bench)
    assert set(rows["system"]) == {"official-bm25", "by-length"}
    assert set(rows["slice"]) >= {"all", "qa", "exploratory"}
    challenger = rows[(rows["system"] == "by-length") & (rows["slice"] == "all")].iloc[0]
    assert challenger["baseline"] == "official-bm25"
    for column in ("ndcg@10_ci_low", "delta_ndcg@10", "p_ndcg@10", "mde_mrr@10"):
        assert column in rows.columns, column
    board = pd.read_csv(bench.leaderboard)
    assert "by-length" in set(board["system"])
    # run again: the stored runs are reused, nothing is recomputed
    stored = bench.produce("by-length", "dl19")
    again = wpt.experiment([wpt.transformer("official-bm25", "dl19", bench), pipeline], datasets=["dl19"],
                           names=["bm25", "by-length"], bench=bench)
    assert again[["system", "slice", "ndcg@10"]].equals(rows[["system", "slice", "ndcg@10"]])
    assert bench.produce("by-length", "dl19").reused and bench.produce("by-length", "dl19").path == stored.path
    # unnamed pipelines get a name from their identity: another pipeline never takes over their rows
    unnamed = wpt.experiment([wpt.transformer("official-bm25", "dl19", bench), pipeline], datasets=["dl19"],
                             bench=bench, write=False)
    assert any(name.startswith("pt-") for name in unnamed["system"])


def test_identity_tells_apart_what_changes_the_output():
    """Closures, defaults, two lambdas on one line, objects whose repr hides their state, weights."""
    import torch

    def weighted(w):
        return pt.apply.doc_score(lambda row: row["score"] * w)

    assert wpt.transformer_identity(weighted(0.1)) != wpt.transformer_identity(weighted(5.0))
    assert wpt.transformer_identity(weighted(0.1)) == wpt.transformer_identity(weighted(0.1))
    a, b = pt.apply.doc_score(lambda row: 1.0), pt.apply.doc_score(lambda row: 2.0)
    assert wpt.transformer_identity(a) != wpt.transformer_identity(b)

    class Mine(pt.Transformer):
        def __init__(self, model_name):
            self.model = model_name.upper()

        def transform(self, frame):
            return frame

    assert wpt.transformer_identity(Mine("x")) != wpt.transformer_identity(Mine("y"))

    class Neural(pt.Transformer):
        def __init__(self, seed):
            torch.manual_seed(seed)
            self.model = torch.nn.Linear(4, 1)

        def transform(self, frame):
            return frame

    assert wpt.transformer_identity(Neural(0)) != wpt.transformer_identity(Neural(1))
    assert wpt.transformer_identity(Neural(0)) == wpt.transformer_identity(Neural(0))


def test_an_interpolating_reranker_rescored_when_candidate_scores_change(bench):
    """The same candidate order with other scores is another input for a reranker reading them."""
    official = bench.produce("official-bm25", "dl19").run
    shifted = official.assign(qid=official["qid"].astype(str), score=official["score"] * 2)[["qid", "docno", "score"]]
    bench.register("pt-shifted", pt.Transformer.from_df(shifted))
    bench.register("pt-mix", pt.apply.doc_score(lambda row: row["score"] + len(row["text"]) / 100))
    first = bench.produce("official-bm25+pt-mix", "dl19")
    second = bench.produce("pt-shifted+pt-mix", "dl19")
    assert first.manifest["pairs_scored"] == 4300 and second.manifest["pairs_scored"] == 4300
    assert not first.run["score"].equals(second.run["score"])


def test_bad_transformers_one_line(bench):
    drops_qid = pt.apply.generic(lambda frame: frame.drop(columns=["qid"]))
    bench.register("pt-drops-qid", drops_qid)
    with pytest.raises(WorkbenchError, match="dropped the column") as error:
        bench.produce("official-bm25+pt-drops-qid", "dl19")
    assert "\n" not in str(error.value)
    duplicates = pt.apply.generic(lambda frame: pd.concat([frame, frame.head(1)]))
    bench.register("pt-duplicates", duplicates)
    with pytest.raises(WorkbenchError, match="twice for query") as error:
        bench.produce("official-bm25+pt-duplicates", "dl19")
    assert "\n" not in str(error.value)
    with pytest.raises(WorkbenchError, match="already a reranker"):
        bench.register("tfidf", pt.apply.doc_score(overlap))
    from workbench.first_stage.registry import FIRST_STAGES

    assert "tfidf" not in FIRST_STAGES._entries  # nothing half-registered
    with pytest.raises(WorkbenchError, match="expected a PyTerrier transformer"):
        bench.register("not-one", lambda frame: frame)


def test_core_never_imports_the_extras():
    code = ("import sys, workbench.cli, workbench.experiment, workbench.report.html, workbench.train\n"
            "from workbench.rerankers.registry import REGISTRY; from workbench.first_stage.registry import FIRST_STAGES\n"
            "REGISTRY.load_builtins(); FIRST_STAGES.load_builtins()\n"
            "from workbench.evaluation.metrics import evaluate_run\n"
            "import pandas as pd\n"
            "q = pd.DataFrame({'qid': ['1'], 'docno': ['a'], 'label': [1]})\n"
            "evaluate_run(q.assign(score=1.0, rank=1).drop(columns='label'), q, 1, ['mrr@10', 'nDCG@10', 'Judged@10'])\n"
            "print(sorted(m for m in ('pyterrier', 'rerankers', 'ir_measures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_transformer_named_by_a_plugin_entry_point(tmp_path, monkeypatch, bench):
    """A distribution whose entry point's object is a PyTerrier transformer: a reranker by name."""
    from workbench.rerankers.registry import REGISTRY

    site = tmp_path / "site"
    (site / "my_pt_plugin").mkdir(parents=True)
    (site / "my_pt_plugin" / "__init__.py").write_text(
        "import pyterrier as pt\n"
        "def _length(row):\n    return float(len(row['text']))\n"
        "by_length = pt.apply.doc_score(_length)\n", encoding="utf-8")
    info = site / "my_pt_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pt-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[workbench.rerankers]\npt-by-length = my_pt_plugin:by_length\n",
                                           encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    try:
        run = bench.produce("official-bm25+pt-by-length", "dl19").run
        first = run[run["rank"] == 1].iloc[0]
        texts = bench.collection(bench.dataset("dl19")).texts_for(run[run["qid"] == first["qid"]]["docno"])
        assert max(len(text) for text in texts) == len(bench.collection(bench.dataset("dl19")).texts_for([first["docno"]])[0])
        assert "[plugin my-pt-plugin]" in REGISTRY.describe()
    finally:
        if "pt-by-length" in REGISTRY._entries:
            REGISTRY.unregister("pt-by-length")
