"""ir_measures notation beside the workbench's names: each name resolves to one computation, and
every one equals trec_eval (the Anserini jar Pyserini ships) to 4 decimals on the official DL19
and DL20 BM25 runs and on an all-ties run."""
from __future__ import annotations


import pandas as pd
import pytest

from workbench.core.errors import WorkbenchError
from helpers_trec_eval import trec_eval
from workbench.data.trec import read_qrels, read_run, write_run
from workbench.core.measures import is_metric_column, resolve_measure
from workbench.evaluation.metrics import evaluate_run, judged_at

# ir_measures name -> (trec_eval arguments, trec_eval's measure name, qrels relabelled for Judged)
TREC_EVAL = {
    "nDCG@10": (["-m", "ndcg_cut.10"], "ndcg_cut_10"),
    "RR(rel=2)@10": (["-l", "2", "-M", "10", "-m", "recip_rank"], "recip_rank"),
    "RR@10": (["-M", "10", "-m", "recip_rank"], "recip_rank"),
    "AP": (["-m", "map"], "map"),
    "AP(rel=2)": (["-l", "2", "-m", "map"], "map"),
    "AP@100": (["-m", "map_cut.100"], "map_cut_100"),
    "P@30": (["-m", "P.30"], "P_30"),
    "P(rel=2)@10": (["-l", "2", "-m", "P.10"], "P_10"),
    "R@100": (["-m", "recall.100"], "recall_100"),
    "bpref": (["-m", "bpref"], "bpref"),
    # trec_eval has no Judged@k; it is P@k over the qrels with every judged document relevant
    "Judged@10": (["-m", "P.10"], "P_10"),
}


FILES = {"dl19": ("dl19-passage.txt", "bm25.dl19.trec"), "dl20": ("dl20-passage.txt", "bm25.dl20.trec"),
         "dev600": ("dev600.txt", "bm25-top20.dev600.trec")}  # dev600: no judged non-relevant passage at all


@pytest.mark.parametrize("dataset,kind", [("dl19", "bm25"), ("dl20", "bm25"), ("dl19", "ties"), ("dev600", "bm25")])
def test_every_ir_measures_name_equals_trec_eval(data_dir, tmp_path, dataset, kind):
    pytest.importorskip("ir_measures")
    qrels_name, run_name = FILES[dataset]
    qrels_path = data_dir / "qrels" / qrels_name
    run = read_run(data_dir / "runs" / run_name)
    if kind == "ties":
        run = run.assign(score=1.0)  # every document tied: trec_eval's order is docno descending
    run_path = write_run(run, tmp_path / "run.trec", tag=kind)
    qrels = read_qrels(qrels_path)
    judged_path = tmp_path / "judged.qrels"
    judged_path.write_text("".join(f"{q} 0 {d} 1\n" for q, d in zip(qrels["qid"], qrels["docno"])))
    # relevance level 2 (TREC DL) must not change any ir_measures name: rel is written in the name
    ours = evaluate_run(read_run(run_path), qrels, 2, list(TREC_EVAL)).means
    theirs = trec_eval(qrels_path, run_path, TREC_EVAL, judged_qrels=judged_path)
    for metric in TREC_EVAL:
        assert round(ours[metric], 4) == round(theirs[metric], 4), (dataset, kind, metric, ours[metric], theirs[metric])
    # the workbench's names on TREC DL are the rel=2 forms
    both = evaluate_run(read_run(run_path), qrels, 2, ["mrr@10", "RR(rel=2)@10", "map", "AP(rel=2)"]).means
    assert both["mrr@10"] == both["RR(rel=2)@10"] and both["map"] == both["AP(rel=2)"]


def test_who_computes_each_name():
    assert resolve_measure("nDCG@10").ranx_name == "ndcg@10"
    assert resolve_measure("RR(rel=2)@10").ranx_name == "mrr@10-l2"
    assert resolve_measure("mrr@10", 2).ranx_name == "mrr@10-l2"
    assert resolve_measure("RR@10", 2).ranx_name == "mrr@10"  # ir_measures' rel=1, whatever the dataset
    assert resolve_measure("Judged@10").engine == "judged"
    pytest.importorskip("ir_measures")
    # ranx's bpref divides by min(R, N): 0/0 on a query without judged non-relevant passages
    assert (resolve_measure("bpref").name, resolve_measure("bpref").provider) == ("Bpref", "pytrec_eval")
    assert (resolve_measure("AP@100").engine, resolve_measure("AP@100").provider) == ("ir_measures", "pytrec_eval")


def test_integer_ids_are_ids():
    qrels = pd.DataFrame({"qid": [1, 1, 2], "docno": ["a", "b", "c"], "label": [2, 0, 1]})
    run = pd.DataFrame({"qid": [1, 1, 2], "docno": ["a", "x", "c"], "score": [2.0, 1.0, 1.0]})
    means = evaluate_run(run, qrels, 1, ["Judged@2", "mrr@10"]).means
    assert means == {"Judged@2": 0.75, "mrr@10": 1.0}


def test_judged_as_ir_measures_defines_it():
    qrels = pd.DataFrame({"qid": ["1", "1", "2"], "docno": ["a", "b", "c"], "label": [2, 0, 1]})
    run = pd.DataFrame({"qid": ["1", "1", "1", "2"], "docno": ["a", "x", "b", "c"], "score": [3.0, 2.0, 1.0, 1.0]})
    # ir_measures divides by the list's length when it is shorter than the cutoff
    assert judged_at(run, qrels, 2).to_dict() == {"1": 0.5, "2": 1.0}
    ir_measures = pytest.importorskip("ir_measures")
    theirs = {r.query_id: r.value for r in ir_measures.judged.iter_calc(
        [ir_measures.parse_measure("Judged@2")], qrels.rename(columns={"qid": "query_id", "docno": "doc_id",
                                                                      "label": "relevance"}),
        run.rename(columns={"qid": "query_id", "docno": "doc_id"}))}
    assert theirs == {"1": 0.5, "2": 1.0}


@pytest.mark.parametrize("name,message", [
    ("nDCG@", "does not parse"),
    ("RR(rel=)@10", "does not parse"),
    ("P", "needs a cutoff"),
    ("", "empty metric name"),
    ("RR(rel=2.0)@10", "rel must be a whole grade"),
    ("RR(rel=x)@10", "rel must be a whole grade"),
    ("P@0", "cutoff must be at least 1"),
    ("Bpref@10", "takes no cutoff"),
])
def test_bad_names_one_line(name, message):
    with pytest.raises(WorkbenchError, match=message) as error:
        resolve_measure(name)
    assert "\n" not in str(error.value)


def test_unknown_and_uncomputable_measures_one_line():
    pytest.importorskip("ir_measures")
    for name in ("Foo@10", "Judged(rel=2)@10"):  # unknown; a parameter Judged does not take
        with pytest.raises(WorkbenchError, match="does not parse as ir_measures notation") as error:
            resolve_measure(name)
        assert "\n" not in str(error.value)
    # alpha-nDCG needs ndeval (pyndeval), which neither ranx nor pytrec_eval has
    with pytest.raises(WorkbenchError, match="neither ranx nor an installed ir_measures provider") as error:
        resolve_measure("alpha_nDCG@10")
    assert "\n" not in str(error.value)


def test_leaderboard_columns_recognised():
    for column in ("mrr@10", "nDCG@10", "RR(rel=2)@10", "AP", "Judged@10", "Bpref", "precision@30", "ERR@20"):
        assert is_metric_column(column), column
    for column in ("precision", "dataset", "n_queries", "delta_ndcg@5", "sig_nDCG@10", "wall_time_s", "backend",
                   "mde_mrr@10", "wtl_Judged@10", "d_z_ci_low_map", "p_adj_ndcg@5", "Judged@10_ci_low"):
        assert not is_metric_column(column), column
