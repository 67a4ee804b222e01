"""Any test collection: the formats a local collection and its topics come in, dataset files
(`datasets/*.toml`, --dataset-file), ir_datasets ids, BM25/RM3/QL over any collection (CACM
reproduces Anserini's regression figures), per-dataset metrics and pooled rows."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest

import helpers_trec_eval

from workbench.core.errors import WorkbenchError
from workbench.data.datasets import get_dataset, declare_dataset_files
from workbench.data.declared import load_declared, parse_declaration
from workbench.data.formats import read_collection, read_topic_records

REPO = Path(__file__).resolve().parent.parent
CACM = REPO.parent / "shared" / "data" / "cacm"
#: Anserini's CACM regression (reproduce/from-document-collection/configs/cacm.yaml, Anserini 1.7.1):
#: model -> (MAP, P@30)
ANSERINI_CACM = {"bm25": (0.3123, 0.1942), "bm25:rm3=true": (0.3648, 0.2224), "bm25:ql=true": (0.3265, 0.1942)}

DOCS = [("d1", "the cat sat on the mat"), ("d2", "dogs chase birds in the park"),
        ("d3", "quantum computing basics for beginners"), ("d4", "what is a cat and why it purrs")]


@pytest.fixture()
def declared_env(monkeypatch, tmp_path):
    """A clean set of declared dataset files and a working directory without datasets/."""
    monkeypatch.delenv("WORKBENCH_DATASET_FILES", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_tiny(root: Path, collection_format: str = "tsv") -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    if collection_format == "tsv":
        collection = root / "docs.tsv"
        collection.write_text("".join(f"{d}\t{t}\n" for d, t in DOCS))
    elif collection_format == "jsonl":
        import json

        collection = root / "docs.jsonl"
        collection.write_text("".join(json.dumps({"id": d, "contents": t}) + "\n" for d, t in DOCS))
    elif collection_format == "trec":
        collection = root / "docs.trec"
        collection.write_text("".join(f"<DOC>\n<DOCNO> {d} </DOCNO>\n<TEXT>\n{t}\n</TEXT>\n</DOC>\n" for d, t in DOCS))
    else:
        pages = root / "pages"
        pages.mkdir()
        for d, t in DOCS:
            (pages / f"{d}.html").write_text(f"<html><body><p>{t}</p></body></html>")
        collection = pages
        if collection_format == "html.tar.gz":
            collection = root / "pages.tar.gz"
            with tarfile.open(collection, "w:gz") as archive:
                for page in sorted(pages.iterdir()):
                    archive.add(page, arcname=f"pages/{page.name}")
    topics = root / "topics.tsv"
    topics.write_text("q1\tcat\nq2\tquantum computing\nq3\tno judgments here\n")
    qrels = root / "qrels.txt"
    qrels.write_text("q1 0 d1 1\nq1 0 d4 1\nq1 0 d2 0\nq2 0 d3 1\n")
    return {"collection": collection, "topics": topics, "qrels": qrels}


def _dataset_file(root: Path, stem: str = "tiny", **values) -> Path:
    lines = [f'{key} = {value!r}'.replace("'", '"') if isinstance(value, str) else f"{key} = {value}"
             for key, value in values.items()]
    path = root / f"{stem}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- formats -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "trec", "html", "html.tar.gz"])
def test_every_collection_format_reads_the_same_documents(tmp_path, fmt):
    files = _write_tiny(tmp_path, fmt)
    records = [(docid, " ".join(text.split())) for docid, text, _ in
               read_collection(files["collection"], fmt.split(".")[0])]
    assert records == DOCS


def test_topic_formats_trec_and_cacm(tmp_path):
    trec = tmp_path / "topics.trec"
    trec.write_text("<top>\n<num> Number: 301\n<title> International Organized Crime\n<desc> Description:\n"
                    "Identify organizations.\n<narr> Narrative:\nA relevant document ...\n</top>\n")
    assert [(q, t) for q, t, _ in read_topic_records(trec, "trec")] == [("301", "International Organized Crime")]
    assert [t for _, t, _ in read_topic_records(trec, "trec", "desc")] == ["Identify organizations."]
    cacm = tmp_path / "topics.cacm"
    cacm.write_text("<DOC>\n<DOCNO> 1 </DOCNO>\n\n What articles exist which deal with TSS (Time\n"
                    "Sharing System)?\n\n</DOC>\n")
    assert [(q, t) for q, t, _ in read_topic_records(cacm, "cacm")] == [
        ("1", "What articles exist which deal with TSS (Time Sharing System)?")]


# --- declared datasets -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "html"])
def test_a_declared_dataset_end_to_end(declared_env, session_cache, fmt):
    from workbench.experiment import Workbench

    files = _write_tiny(declared_env / "src", fmt)
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    dataset = get_dataset("tiny")
    assert dataset.metrics == ["map", "precision@30", "ndcg@10"]
    assert dataset.n_unjudged == 1 and list(dataset.judged_topics["qid"]) == ["q1", "q2"]
    bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv", progress=False)
    rows = bench.run_experiment(["tiny"], ["bm25", "bm25+tfidf"])
    everything = rows[rows["slice"] == "all"].set_index("system")
    assert set(everything.index) == {"bm25", "bm25+tfidf"}
    assert everything.loc["bm25", "map"] == pytest.approx(1.0)  # every relevant document on top
    assert "over the dataset's collection" in everything.loc["bm25", "candidates"]
    assert "precision@30" in rows.columns and "mrr@10" not in rows.columns


def test_dataset_files_in_the_working_directory_are_found(declared_env):
    files = _write_tiny(declared_env / "src")
    (declared_env / "datasets").mkdir()
    _dataset_file(declared_env / "datasets", "mine", collection=str(files["collection"]),
                  topics=str(files["topics"]), qrels=str(files["qrels"]), relevance_level=1)
    assert get_dataset("mine").name == "mine"


BAD_FILES = {
    "missing path": ({"collection": "nowhere.tsv"}, "collection: ", 2),
    "unknown key": ({"colour": "blue"}, "unknown key 'colour'", 5),
    "unknown collection format": ({"collection_format": "parquet"}, "unknown collection format 'parquet'", 5),
    "unknown topics format": ({"topics_format": "yaml"}, "unknown topics format 'yaml'", 5),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_dataset_files_fail_in_one_line_naming_file_and_line(declared_env, case):
    files = _write_tiny(declared_env / "src")
    change, message, line = BAD_FILES[case]
    values = {"name": "bad", "collection": str(files["collection"]), "topics": str(files["topics"]),
              "qrels": str(files["qrels"]), **change}
    path = _dataset_file(declared_env, "bad", **values)
    with pytest.raises(WorkbenchError) as error:
        parse_declaration(path)
    assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("problem,message", [
    ("d1\tthe cat\nd1\tagain\n", "duplicate document id 'd1'"),
    ("d 1\tthe cat\n", "contains whitespace"),
])
def test_bad_collections_fail_naming_file_and_line_and_write_nothing(declared_env, session_cache, problem, message):
    import json

    files = _write_tiny(declared_env / "src")
    jsonl = declared_env / "src" / "bad.jsonl"
    jsonl.write_text("".join(json.dumps({"id": line.split("\t")[0], "contents": line.split("\t")[1]}) + "\n"
                             for line in problem.splitlines()))
    path = _dataset_file(declared_env, "bad", collection=str(jsonl), topics=str(files["topics"]),
                         qrels=str(files["qrels"]))
    dataset = load_declared(path)
    with pytest.raises(WorkbenchError) as error:
        dataset.collection_path
    assert str(error.value).startswith(f"{jsonl}:") and message in str(error.value)
    assert not list(Path(session_cache, "datasets").glob("bad-*/collection.tsv*"))


def _empty_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "empty text" in r.getMessage()]


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_a_declared_collection_keeps_its_empty_documents_with_one_warning(declared_env, session_cache, caplog, fmt):
    """Real collections hold empty documents (Cranfield's 471 and 995): a declared collection keeps
    them, as ir_datasets does, with one warning naming the file and how many; BM25 never retrieves them."""
    import json

    from workbench.experiment import Workbench

    files = _write_tiny(declared_env / "src")
    docs = [*DOCS, ("d5", ""), ("d6", "  ")]
    if fmt == "jsonl":  # BEIR's corpus.jsonl: title and text, both empty for d5 and d6
        collection = declared_env / "src" / "corpus.jsonl"
        collection.write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs))
    else:  # used as it is, no conversion
        collection = declared_env / "src" / "corpus.tsv"
        collection.write_text("".join(f"{d}\t{t}\n" for d, t in docs))
    files["qrels"].write_text(files["qrels"].read_text() + "q2 0 d5 1\n")
    declare_dataset_files([_dataset_file(declared_env, collection=str(collection), topics=str(files["topics"]),
                                         qrels=str(files["qrels"]))])
    with caplog.at_level("WARNING"):
        texts = get_dataset("tiny").collection()
        assert len(texts) == 6 and "d5" in texts and texts.text("d5") == "" and texts.text("d6").strip() == ""
        bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv",
                          progress=False)
        run = bench.produce("bm25", "tiny").run
    assert _empty_warnings(caplog) == [f"{collection}: 2 documents have an empty text: kept in the collection "
                                       "(BM25 never retrieves them)"]
    assert set(run["docno"]) <= {"d1", "d2", "d3", "d4"} and set(run["qid"]) == {"q1", "q2"}


@pytest.fixture(scope="module")
def cranfield_like(tmp_path_factory):
    """One small collection with an empty document, as files (declared) and as an ir_datasets id
    registered in this process (not TREC DL, not MS MARCO: a classic test collection)."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    root = tmp_path_factory.mktemp("cranfield-like")
    before = os.environ.get("IR_DATASETS_HOME")
    os.environ["IR_DATASETS_HOME"] = str(root / "home")
    (root / "docs.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in [*DOCS, ("d5", "")]))
    (root / "topics.tsv").write_text("q1\tcat\nq2\tquantum computing\n")
    (root / "qrels.txt").write_text("q1 0 d1 1\nq1 0 d4 1\nq2 0 d3 1\n")
    ident = "workbench-test/cranfield-like"
    if ident not in ir_datasets.registry:
        ir_datasets.registry.register(ident, Dataset(
            TsvDocs(LocalDownload(root / "docs.tsv")), TsvQueries(LocalDownload(root / "topics.tsv")),
            TrecQrels(LocalDownload(root / "qrels.txt"), {})))
    yield {"irds": "irds:" + ident, "root": root}
    if before is None:
        os.environ.pop("IR_DATASETS_HOME", None)
    else:
        os.environ["IR_DATASETS_HOME"] = before


def test_a_collection_gets_the_same_defaults_from_ir_datasets_and_from_a_dataset_file(cranfield_like,
                                                                                      declared_env, caplog):
    root = cranfield_like["root"]
    declare_dataset_files([_dataset_file(declared_env, "cranfield-like", collection=str(root / "docs.tsv"),
                                         topics=str(root / "topics.tsv"), qrels=str(root / "qrels.txt"))])
    declared, irds = get_dataset("cranfield-like"), get_dataset(cranfield_like["irds"])
    assert declared.metrics == irds.metrics == ["map", "precision@30", "ndcg@10"]
    assert declared.relevance_level == irds.relevance_level == 1
    # both keep the empty document, each with one warning naming where it comes from
    with caplog.at_level("WARNING"):
        assert dict(declared.collection()) == dict(irds.collection()) == {**dict(DOCS), "d5": ""}
    assert _empty_warnings(caplog) == [
        f"{root / 'docs.tsv'}: 1 document has an empty text: kept in the collection (BM25 never retrieves it)",
        "irds:workbench-test/cranfield-like: 1 document has an empty text: kept in the collection "
        "(BM25 never retrieves it)"]
    assert "d5" in irds.collection()  # present, though empty


def test_ms_marco_ids_keep_ms_marco_metrics():
    from workbench.data.dataset import STANDARD_METRICS, TREC_DL_METRICS, default_metrics
    from workbench.data.datasets import DATASETS
    from workbench.data.irds import is_ms_marco, is_trec_dl

    def defaults(irds_id: str) -> tuple[str, ...]:
        return default_metrics(ms_marco=is_ms_marco(irds_id), trec_dl=is_trec_dl(irds_id))

    assert defaults("msmarco-passage/dev/small") == STANDARD_METRICS == DATASETS["dev-small"].metrics
    assert defaults("msmarco-passage/trec-dl-2019/judged") == TREC_DL_METRICS == DATASETS["dl19"].metrics
    assert defaults("msmarco-document-v2/trec-dl-2021") == TREC_DL_METRICS
    assert defaults("beir/scifact/test") == defaults("cranfield") == ("map", "precision@30", "ndcg@10")


def test_qrels_matching_no_topic_fail_naming_the_qrels(declared_env):
    files = _write_tiny(declared_env / "src")
    files["qrels"].write_text("z9 0 d1 1\n")
    dataset = load_declared(_dataset_file(declared_env, collection=str(files["collection"]),
                                          topics=str(files["topics"]), qrels=str(files["qrels"])))
    with pytest.raises(WorkbenchError, match="no query id of the qrels matches a topic") as error:
        dataset.judged_topics
    assert str(error.value).startswith(f"{files['qrels']}:1: ")


# --- CACM reproduces Anserini ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cacm_board(tmp_path_factory, session_cache):
    if not (CACM / "cacm.tar.gz").is_file():
        pytest.skip(f"the CACM collection is not at {CACM}")
    from workbench.experiment import Workbench

    before = os.environ.get("WORKBENCH_DATASET_FILES")
    declare_dataset_files([REPO / "datasets" / "cacm.toml"])
    runs = tmp_path_factory.mktemp("cacm-runs")
    bench = Workbench(runs_dir=runs, leaderboard=runs / "board.csv", progress=False)
    rows = bench.run_experiment(["cacm"], [*ANSERINI_CACM, "bm25+tfidf"])
    yield bench, rows
    if before is None:  # later test modules see the dataset files they set up themselves
        os.environ.pop("WORKBENCH_DATASET_FILES", None)
    else:
        os.environ["WORKBENCH_DATASET_FILES"] = before


@pytest.mark.parametrize("system", sorted(ANSERINI_CACM))
def test_cacm_reproduces_anserini_regression(cacm_board, system):
    _, rows = cacm_board
    row = rows[(rows["system"] == system) & (rows["slice"] == "all")].iloc[0]
    assert (round(row["map"], 4), round(row["precision@30"], 4)) == ANSERINI_CACM[system]
    assert row["n_queries"] == 52 and row["n_unjudged_excluded"] == 12


def test_cacm_reranker_and_metrics_on_the_leaderboard(cacm_board):
    bench, rows = cacm_board
    tfidf = rows[(rows["system"] == "bm25+tfidf") & (rows["slice"] == "all")].iloc[0]
    assert tfidf["baseline"] == "bm25" and not pd.isna(tfidf["delta_map"])
    assert bench.dataset("cacm").metrics == ["map", "precision@30", "ndcg@10"]
    assert "Anserini's CACM regression" in tfidf["comparability"]


def test_cacm_metrics_equal_trec_eval(cacm_board):
    bench, _ = cacm_board
    stored = bench.produce("bm25:rm3=true", "cacm")
    dataset = bench.dataset("cacm")
    ours = bench.evaluate(stored, "cacm").means
    theirs = trec_eval(dataset.qrels_path, stored.path, {"map": ("map", "map"), "precision@30": ("P.30", "P_30"),
                                                         "ndcg@10": ("ndcg_cut.10", "ndcg_cut_10")}, level=1)
    assert ours == pytest.approx(theirs, abs=1e-4)


def trec_eval(qrels: Path, run: Path, measures: dict[str, tuple[str, str]], level: int) -> dict[str, float]:
    """Means by the trec_eval of the Anserini jar Pyserini ships (``-c``: judged queries missing from the run
    count 0); binary measures at relevance ``level``, one trec_eval call for all of them."""
    return helpers_trec_eval.trec_eval(qrels, run, {
        metric: ([*([] if measure.startswith("ndcg") else ["-l", str(level)]), "-m", measure], name)
        for metric, (measure, name) in measures.items()})


# --- ir_datasets -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_irds(tmp_path_factory):
    """A small ir_datasets dataset registered in this process: documents with titles, queries,
    graded qrels, scoreddocs."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import BaseDocs, TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    root = tmp_path_factory.mktemp("irds")
    before = os.environ.get("IR_DATASETS_HOME")
    os.environ["IR_DATASETS_HOME"] = str(root / "home")
    (root / "docs.tsv").write_text("".join(f"{d}\t{t.split()[0]}\t{t}\n" for d, t in DOCS))
    (root / "queries.tsv").write_text("q1\tcat\nq2\tquantum computing\nq3\tnot judged\n")
    (root / "qrels.txt").write_text("q1 0 d1 2\nq1 0 d4 1\nq1 0 d2 0\nq2 0 d3 2\nq2 0 d1 1\n")
    (root / "scored.trec").write_text("q1 Q0 d2 1 3.0 x\nq1 Q0 d1 2 2.0 x\nq1 Q0 d4 3 2.0 x\nq1 Q0 d3 4 1.0 x\n"
                                      "q2 Q0 d1 1 1.0 x\nq2 Q0 d3 2 1.0 x\nq2 Q0 d2 3 0.5 x\n")
    from typing import NamedTuple

    class TitledDoc(NamedTuple):
        doc_id: str
        title: str
        text: str

    docs = TsvDocs(LocalDownload(root / "docs.tsv"), doc_cls=TitledDoc)
    assert isinstance(docs, BaseDocs)
    ident = "workbench-test/tiny/trec-dl-style"
    if ident not in ir_datasets.registry:
        ir_datasets.registry.register(ident, Dataset(
            docs, TsvQueries(LocalDownload(root / "queries.tsv")), TrecQrels(LocalDownload(root / "qrels.txt"), {}),
            TrecScoredDocs(LocalDownload(root / "scored.trec"))))
    yield "irds:" + ident
    if before is None:
        os.environ.pop("IR_DATASETS_HOME", None)
    else:
        os.environ["IR_DATASETS_HOME"] = before


def test_irds_dataset_end_to_end_equals_trec_eval(tiny_irds, declared_env, session_cache):
    from workbench.cli import main

    board = declared_env / "board.csv"
    assert main(["eval", "--datasets", tiny_irds, "--systems", "official-scoreddocs,official-scoreddocs+tfidf",
                 "--runs-dir", str(declared_env / "runs"), "--leaderboard", str(board)]) == 0
    dataset = get_dataset(tiny_irds)
    assert dataset.relevance_level == 2 and dataset.n_unjudged == 1  # "trec-dl" in the id: level 2
    assert "FirstP" in dataset.texts_note
    rows = pd.read_csv(board, dtype={"dataset": str})
    measures = {"mrr@10": ("recip_rank", "recip_rank"), "ndcg@10": ("ndcg_cut.10", "ndcg_cut_10"),
                "map": ("map", "map")}
    from workbench.experiment.store import RunStore

    for system in ("official-scoreddocs", "official-scoreddocs+tfidf"):
        row = rows[(rows["system"] == system) & (rows["slice"] == "all")].iloc[0]
        stored = RunStore(declared_env / "runs").load(tiny_irds, system)
        theirs = trec_eval(dataset.qrels_path, stored.path, measures, level=2)
        assert {m: row[m] for m in measures} == pytest.approx(theirs, abs=1e-4)
    tfidf = RunStore(declared_env / "runs").load(tiny_irds, "official-scoreddocs+tfidf")
    assert "FirstP" in tfidf.manifest.get("texts", "")


def test_irds_collection_reads_only_what_is_asked(tiny_irds):
    collection = get_dataset(tiny_irds).collection()
    assert collection.texts_for(["d3"]) == ["quantum quantum computing basics for beginners"]
    assert set(collection._texts) == {"d3"}  # one document fetched, not the collection


def test_irds_unknown_and_not_downloaded_ids_fail_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(WorkbenchError, match="unknown ir_datasets id 'nope/nothing'"):
        get_dataset("irds:nope/nothing")
    dataset = get_dataset("irds:beir/scifact/test")
    with pytest.raises(WorkbenchError) as error:
        dataset.topics
    assert "'beir/scifact/test'" in str(error.value) and "\n" not in str(error.value)


# --- pooled analysis ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool_bench(data_dir, session_cache, tmp_path_factory):
    """A Workbench of its own (the session's leaderboard stays free of pooled rows)."""
    from workbench.experiment import Workbench

    runs = tmp_path_factory.mktemp("pool-runs")
    return Workbench(data_dir=data_dir, runs_dir=runs, leaderboard=runs / "leaderboard.csv", progress=False)


@pytest.fixture(scope="module")
def pooled(pool_bench):
    return pool_bench.run_experiment(["dl19", "dl20"], ["official-bm25", "official-bm25+tfidf"],
                                     pools={"dl19+dl20": ["dl19", "dl20"]})


def test_pooled_rows_cover_both_years(pooled):
    mine = pooled[pooled["dataset"] == "dl19+dl20"].set_index(["system", "slice"])
    single = pooled[pooled["dataset"] != "dl19+dl20"]
    for slice_name in ("all", "qa", "exploratory"):
        n = single[(single["system"] == "official-bm25") & (single["slice"] == slice_name)]["n_queries"].sum()
        assert mine.loc[("official-bm25", slice_name), "n_queries"] == n
    assert mine.loc[("official-bm25", "all"), "n_queries"] == 43 + 54
    assert mine.loc[("official-bm25+tfidf", "all"), "pooled"] == "dl19+dl20"
    row = mine.loc[("official-bm25+tfidf", "exploratory")]
    assert row["baseline"] == "official-bm25" and row["mde_ndcg@5"] > 0


def test_pooled_mean_is_the_query_weighted_mean(pooled):
    rows = pooled[(pooled["system"] == "official-bm25") & (pooled["slice"] == "all")].set_index("dataset")
    expected = (rows.loc["dl19", "ndcg@10"] * 43 + rows.loc["dl20", "ndcg@10"] * 54) / 97
    assert rows.loc["dl19+dl20", "ndcg@10"] == pytest.approx(expected, abs=2e-4)


def test_pools_are_refused_when_levels_differ_or_queries_repeat(pool_bench, tmp_path, data_dir, monkeypatch):
    workbench = pool_bench
    board = Path(workbench.leaderboard)
    before = board.read_bytes() if board.is_file() else None
    with pytest.raises(WorkbenchError, match="disagree on the relevance level"):
        workbench.run_experiment(["dl19"], ["official-bm25"], pools={"mixed": ["dl19", "dev600"]})
    copy = _dataset_file(tmp_path, "dl19-again", collection=str(data_dir / "collection.tsv"),
                         topics=str(data_dir / "topics" / "dl19-passage.tsv"),
                         qrels=str(data_dir / "qrels" / "dl19-passage.txt"), relevance_level=2)
    monkeypatch.delenv("WORKBENCH_DATASET_FILES", raising=False)
    declare_dataset_files([copy])
    with pytest.raises(WorkbenchError, match="query id '\\d+' is in both dl19 and dl19-again"):
        workbench.run_experiment(["dl19"], ["official-bm25"], pools={"twice": ["dl19", "dl19-again"]})
    assert (board.read_bytes() if board.is_file() else None) == before  # nothing written


def test_rebuild_recomputes_pooled_rows(pool_bench, pooled):
    workbench = pool_bench
    from workbench.report.leaderboard import read_leaderboard

    rebuilt = workbench.rebuild_leaderboard(write=False)
    board = read_leaderboard(workbench.leaderboard)
    columns = ["dataset", "system", "slice", "ndcg@10", "n_queries", "p_ndcg@5"]
    pooled_rows = board["dataset"] == "dl19+dl20"
    assert pooled_rows.any()
    pd.testing.assert_frame_equal(
        rebuilt[rebuilt["dataset"] == "dl19+dl20"][columns].reset_index(drop=True).round(4),
        board[pooled_rows][columns].reset_index(drop=True).round(4), check_dtype=False)


def test_a_lucene_index_by_path_is_a_first_stage_and_its_raw_documents_the_texts(declared_env, session_cache):
    """``bm25:index=<dir>`` (as ``index=<prebuilt name>`` with internet): search that index, and
    rerank its candidates with texts read from its stored raw documents."""
    from workbench.data.collection import Collection
    from workbench.experiment import Workbench
    from workbench.first_stage.lucene import build_index

    files = _write_tiny(declared_env / "src")
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    index = build_index(Collection(files["collection"]), root=declared_env / "indexes")
    bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv", progress=False)
    rows = bench.run_experiment(["tiny"], ["bm25", f"bm25:index={index.path}", f"bm25:index={index.path}+dense-minilm"])
    everything = rows[rows["slice"] == "all"].set_index("system")
    assert everything.loc[f"bm25:index={index.path}", "map"] == everything.loc["bm25", "map"]  # the same index
    reranked = bench.produce(f"bm25:index={index.path}+dense-minilm", "tiny")
    assert reranked.manifest["pairs"] > 0
    from workbench.experiment.systems import candidate_texts, parse_system

    texts = candidate_texts(bench.session, parse_system(f"bm25:index={index.path}"), bench.dataset("tiny"))
    assert texts.text("d3") == "quantum computing basics for beginners"


def test_unknown_prebuilt_index_fails_in_one_line(declared_env, session_cache):
    from workbench.experiment import Workbench

    files = _write_tiny(declared_env / "src")
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv", progress=False)
    with pytest.raises(WorkbenchError, match="unknown Pyserini prebuilt index 'no-such-index'"):
        bench.run_experiment(["tiny"], ["bm25:index=no-such-index"])
    with pytest.raises(WorkbenchError, match="not in its cache .* cannot be downloaded here"):
        bench.run_experiment(["tiny"], ["bm25:index=beir-v1.0.0-scifact.flat"])
    assert not (declared_env / "runs" / "board.csv").exists()


def test_dense_and_splade_first_stages_over_a_declared_collection(declared_env, session_cache):
    from workbench.experiment import Workbench

    files = _write_tiny(declared_env / "src", "trec")
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv", progress=False)
    rows = bench.run_experiment(["tiny"], ["dense-mini", "splade-mini"])
    everything = rows[rows["slice"] == "all"].set_index("system")
    assert everything.loc["dense-mini", "map"] > 0.5 and everything.loc["splade-mini", "map"] > 0.5


def test_cacm_section_in_the_html_report(cacm_board, tmp_path):
    from html.parser import HTMLParser

    from workbench.report.html import write_html_report
    from workbench.report.leaderboard import read_leaderboard

    bench, _ = cacm_board
    path, views = write_html_report(bench.session, read_leaderboard(bench.leaderboard), tmp_path)
    page = path.read_text(encoding="utf-8")
    assert [view.name for view in views] == ["cacm"]
    assert views[0].headline == ["map", "precision@30"]

    class Sections(HTMLParser):
        found: list[str] = []
        headers: list[str] = []

        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "section" and attributes.get("data-dataset"):
                self.found.append(attributes["data-dataset"])
            if tag == "th" and attributes.get("data-key"):
                self.headers.append(attributes["data-key"])

    sections = Sections()
    sections.feed(page)
    assert sections.found == ["cacm"]
    assert {"map", "precision@30", "ndcg@10", "delta_map", "delta_precision@30"} <= set(sections.headers)
    assert "Anserini&#39;s CACM regression" in page or "Anserini's CACM regression" in page


def test_a_declared_dataset_with_a_candidate_run_is_a_training_source(declared_env):
    from workbench.train.data import _source_lists

    files = _write_tiny(declared_env / "src")
    run = declared_env / "src" / "bm25.trec"
    run.write_text("q1 Q0 d2 1 3.0 x\nq1 Q0 d1 2 2.0 x\nq2 Q0 d3 1 1.0 x\nq2 Q0 d1 2 0.5 x\n")
    path = declared_env / "tiny.toml"
    path.write_text(f'collection = "{files["collection"]}"\ntopics = "{files["topics"]}"\nqrels = "{files["qrels"]}"\n'
                    f'[runs]\nbm25 = "{run}"\n')
    declare_dataset_files([path])
    dataset = get_dataset("tiny")
    lists = _source_lists("tiny", None, {})
    assert [(lst.qid, lst.docnos, list(lst.labels)) for lst in lists] == [
        ("q1", ["d2", "d1"], [0.0, 1.0]), ("q2", ["d3", "d1"], [1.0, 0.0])]
    assert lists[0].passages[1] == "the cat sat on the mat"


def test_dataset_add_writes_a_file_every_command_then_knows(declared_env, session_cache, capsys):
    from workbench.cli import main

    files = _write_tiny(declared_env / "src", "html.tar.gz")
    assert main(["dataset", "add", "mine", "--collection", str(files["collection"]), "--topics", str(files["topics"]),
                 "--qrels", str(files["qrels"]), "--metrics", "map,ndcg@10", "--check"]) == 0
    assert "2 judged" in capsys.readouterr().out
    written = declared_env / "datasets" / "mine.toml"
    assert written.is_file() and 'metrics = ["map", "ndcg@10"]' in written.read_text()
    assert main(["eval", "--datasets", "mine", "--systems", "bm25", "--runs-dir", str(declared_env / "runs"),
                 "--quiet"]) == 0
    board = pd.read_csv(declared_env / "runs" / "leaderboard.csv")
    assert set(board["dataset"]) == {"mine"} and board.loc[board["slice"] == "all", "map"].notna().all()
    assert main(["dataset", "show", "mine"]) == 0 and "metrics\tmap, ndcg@10" in capsys.readouterr().out


def test_dataset_add_refuses_bad_input_and_writes_nothing(declared_env, capsys):
    from workbench.cli import main

    files = _write_tiny(declared_env / "src")
    files["qrels"].write_text("z1 0 d1 1\n")
    assert main(["dataset", "add", "mine", "--collection", str(files["collection"]), "--topics", str(files["topics"]),
                 "--qrels", str(files["qrels"])]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"workbench: error: {files['qrels']}:1: no query id of the qrels matches a topic")
    assert len(error.splitlines()) == 1
    assert not list((declared_env / "datasets").glob("*")) if (declared_env / "datasets").exists() else True
    assert main(["dataset", "add", "mine", "--collection", str(declared_env / "nowhere.tsv"), "--topics",
                 str(files["topics"]), "--qrels", str(files["qrels"])]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("pool,message", [("dl19", "expected NAME=DATASET,DATASET"),
                                          ("p=dl19", "needs two or more datasets")])
def test_malformed_pools_fail_in_one_line(declared_env, data_dir, pool, message, capsys):
    from workbench.cli import main

    assert main(["eval", "--datasets", "dl19", "--systems", "official-bm25", "--pool", pool,
                 "--runs-dir", str(declared_env / "runs"), "--data-dir", str(data_dir)]) == 2
    assert message in capsys.readouterr().err
    assert not (declared_env / "runs" / "leaderboard.csv").exists()


def test_qrels_of_other_topics_are_left_out(declared_env, session_cache):
    """A qrels file shared by several topic sets (folds, rounds) judges only this set's topics."""
    from workbench.experiment import Workbench

    files = _write_tiny(declared_env / "src")
    files["qrels"].write_text(files["qrels"].read_text() + "q9 0 d2 1\nq9 0 d3 1\n")  # q9: no such topic here
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    dataset = get_dataset("tiny")
    assert set(dataset.qrels["qid"]) == {"q1", "q2"} and len(dataset.all_qrels) == len(dataset.qrels) + 2
    from workbench.core.files import sha256_file

    assert dataset.qrels_sha256 != sha256_file(files["qrels"])
    bench = Workbench(runs_dir=declared_env / "runs", leaderboard=declared_env / "runs" / "board.csv", progress=False)
    rows = bench.run_experiment(["tiny"], ["bm25"])
    assert rows.set_index("slice").loc["all", "n_queries"] == 2


def test_a_pool_name_on_the_board_with_other_datasets_is_refused(pool_bench, pooled, tmp_path, data_dir):
    copy = _dataset_file(tmp_path, "dl20-again", collection=str(data_dir / "collection.tsv"),
                         topics=str(data_dir / "topics" / "dl20.tsv"), qrels=str(data_dir / "qrels" / "dl20-passage.txt"),
                         relevance_level=2)
    before = os.environ.get("WORKBENCH_DATASET_FILES")
    try:
        declare_dataset_files([copy])
        with pytest.raises(WorkbenchError, match="pool 'dl19\\+dl20' is on the leaderboard over dl19\\+dl20"):
            pool_bench.run_experiment(["dl19"], ["official-bm25"], pools={"dl19+dl20": ["dl19", "dl20-again"]})
    finally:
        os.environ.pop("WORKBENCH_DATASET_FILES", None) if before is None else os.environ.update(
            WORKBENCH_DATASET_FILES=before)


def test_a_pool_is_the_same_whatever_order_its_datasets_are_named_in(pool_bench, pooled):
    again = pool_bench.run_experiment(["dl20"], ["official-bm25"], pools={"dl19+dl20": ["dl20", "dl19"]})
    mine = again[again["dataset"] == "dl19+dl20"].set_index("slice")
    assert mine.loc["all", "pooled"] == "dl19+dl20" and mine.loc["all", "n_queries"] == 97


def test_pooled_rows_say_what_they_compare_with(pooled):
    row = pooled[(pooled["dataset"] == "dl19+dl20") & (pooled["system"] == "official-bm25")].iloc[0]
    assert row["comparability"].startswith("pooled over dl19 + dl20: comparable with rows pooled over the same")


def test_compressed_tsv_collections_and_topics_are_read(declared_env, session_cache):
    import gzip

    files = _write_tiny(declared_env / "src")
    for key in ("collection", "topics"):
        packed = files[key].with_name(files[key].name + ".gz")
        packed.write_bytes(gzip.compress(files[key].read_bytes()))
        files[key] = packed
    declare_dataset_files([_dataset_file(declared_env, collection=str(files["collection"]),
                                     topics=str(files["topics"]), qrels=str(files["qrels"]))])
    dataset = get_dataset("tiny")
    assert dataset.collection().text("d3") == "quantum computing basics for beginners"
    assert list(dataset.judged_topics["qid"]) == ["q1", "q2"]


def test_unreadable_dataset_files_name_the_line(declared_env):
    bad = declared_env / "bad.toml"
    bad.write_bytes(b'name = "bad"\ndescription = "caf\xe9"\n')
    with pytest.raises(WorkbenchError, match="not UTF-8") as error:
        parse_declaration(bad)
    assert str(error.value).startswith(f"{bad}:2: ")
    bad.write_text('name = "bad"\ncollection = \n')
    with pytest.raises(WorkbenchError, match="malformed TOML") as error:
        parse_declaration(bad)
    assert str(error.value).startswith(f"{bad}:2: ")


def test_a_builtin_name_is_never_declared(declared_env, capsys):
    from workbench.cli import main

    files = _write_tiny(declared_env / "src")
    assert main(["dataset", "add", "dl19", "--collection", str(files["collection"]), "--topics",
                 str(files["topics"]), "--qrels", str(files["qrels"])]) == 2
    assert "built-in dataset name" in capsys.readouterr().err
    (declared_env / "datasets").mkdir()
    _dataset_file(declared_env / "datasets", "dl19", collection=str(files["collection"]), topics=str(files["topics"]),
                  qrels=str(files["qrels"]))
    _dataset_file(declared_env / "datasets", "fine", collection=str(files["collection"]), topics=str(files["topics"]),
                  qrels=str(files["qrels"]))
    assert get_dataset("fine").name == "fine"  # one ignored file does not break the others


def test_best_reranker_follows_the_dataset_headline(cacm_board):
    bench, _ = cacm_board
    from workbench.report.leaderboard import read_leaderboard

    board = read_leaderboard(bench.leaderboard)
    assert bench.best_reranker("cacm", board) == "bm25+tfidf"  # the only reranker: ranked by MAP, P@30


def test_only_rows_not_comparable_are_flagged_in_the_legend():
    from workbench.report.html import flagged_systems

    board = pd.DataFrame({"system": ["a", "b"], "comparability": [
        "comparable with published TREC DL 2019 passage figures", "not comparable with published figures: mini"],
        "candidates": ["official", "mini-collection BM25 (not comparable with full-collection figures)"]})
    assert [row["system"] for row in flagged_systems(board)] == ["b"]


def test_declared_metrics_in_ir_measures_notation(declared_env, session_cache, capsys):
    """A declaration's metrics may be ir_measures names; they reach the leaderboard as written,
    and a name that does not parse is refused naming the file and line."""
    from workbench.cli import main

    files = _write_tiny(declared_env / "src")
    path = declared_env / "datasets" / "named.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (f'collection = "{files["collection"]}"\ntopics = "{files["topics"]}"\nqrels = "{files["qrels"]}"\n')
    path.write_text(body + 'metrics = ["AP", "nDCG@10", "RR(rel=1)@10", "Judged@10"]\n')
    assert main(["eval", "--datasets", "named", "--systems", "bm25", "--runs-dir", str(declared_env / "runs"),
                 "--quiet"]) == 0
    board = pd.read_csv(declared_env / "runs" / "leaderboard.csv")
    row = board[(board["dataset"] == "named") & (board["slice"] == "all")].iloc[0]
    assert {"AP", "nDCG@10", "RR(rel=1)@10", "Judged@10"} <= set(board.columns) and row["Judged@10"] > 0
    path.write_text(body + 'metrics = ["nDCG@"]\n')
    assert main(["dataset", "show", "named"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"{path}:4:" in error and "does not parse" in error and len(error.splitlines()) == 1
