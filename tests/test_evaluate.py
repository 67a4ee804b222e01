"""Evaluation with ranx: published figures, an independent implementation, relevance levels."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.data.datasets import get_dataset
from workbench.core.errors import WorkbenchError
from workbench.evaluation.metrics import evaluate_run, ranx_metric
from workbench.data.trec import read_run


def test_ranx_metric_applies_relevance_level_to_binary_metrics_only():
    assert ranx_metric("mrr@10", 2) == "mrr@10-l2"
    assert ranx_metric("map", 2) == "map-l2"
    assert ranx_metric("recall@100", 2) == "recall@100-l2"
    assert ranx_metric("ndcg@10", 2) == "ndcg@10"
    assert ranx_metric("mrr@10", 1) == "mrr@10"
    with pytest.raises(WorkbenchError, match="unknown metric 'bleu'"):
        ranx_metric("bleu", 1)


def test_tiny_hand_computed_example():
    qrels = pd.DataFrame({"qid": ["q1", "q1", "q2"], "docno": ["a", "b", "c"], "label": [1, 3, 2]})
    run = pd.DataFrame({"qid": ["q1", "q1", "q1", "x"], "docno": ["z", "a", "b", "c"], "score": [3.0, 2, 1, 1]})
    evaluation = evaluate_run(run, qrels, relevance_level=2, metrics=["mrr@10", "recall@100"])
    # q1: first grade>=2 document 'b' at rank 3; q2 is judged but absent from the run (scores 0).
    assert evaluation.per_query.loc["q1", "mrr@10"] == pytest.approx(1 / 3)
    assert evaluation.per_query.loc["q2", "mrr@10"] == 0.0
    assert evaluation.means["mrr@10"] == pytest.approx(1 / 6)
    assert evaluation.n_queries == 2 and evaluation.n_run_queries_unjudged == 1 and evaluation.n_judged_missing == 1


@pytest.mark.parametrize("name, ndcg10", [("dl19", 0.5058), ("dl20", 0.4796)])
def test_official_bm25_runs_reproduce_published_anserini_ndcg(data_dir, name, ndcg10):
    dataset = get_dataset(name, data_dir)
    evaluation = evaluate_run(read_run(dataset.official_run_path("bm25")), dataset.qrels,
                              dataset.relevance_level)
    assert round(evaluation.means["ndcg@10"], 4) == ndcg10
    assert evaluation.n_queries == {"dl19": 43, "dl20": 54}[name]
    # MRR@10 counts only grade >= 2 as relevant on TREC DL, so it is lower than at level 1.
    lenient = evaluate_run(read_run(dataset.official_run_path("bm25")), dataset.qrels, 1, ["mrr@10"])
    assert evaluation.means["mrr@10"] < lenient.means["mrr@10"]


TREC_EVAL_MEASURES = {  # ranx metric -> (trec_eval measure, extra trec_eval options)
    "mrr@10": ("recip_rank", ["-M", "10", "-l", "2"]),
    "ndcg@5": ("ndcg_cut.5", []),
    "ndcg@10": ("ndcg_cut.10", []),
    "recall@100": ("recall.100", ["-l", "2"]),
    "map": ("map", ["-l", "2"]),
}


def test_ranx_agrees_with_pyserini_trec_eval(data_dir):
    from helpers_trec_eval import trec_eval

    dataset = get_dataset("dl19", data_dir)
    measures = {metric: ([*options, "-m", measure], measure.replace(".", "_"))
                for metric, (measure, options) in TREC_EVAL_MEASURES.items()}
    for system in ("bm25", "tasb"):
        run_path = dataset.official_run_path(system)
        ours = evaluate_run(read_run(run_path), dataset.qrels, dataset.relevance_level).means
        theirs = trec_eval(dataset.qrels_path, run_path, measures)
        for metric in TREC_EVAL_MEASURES:
            assert ours[metric] == pytest.approx(theirs[metric], abs=1e-4), (system, metric)


def test_cli_evaluate_json(data_dir, capsys):
    from workbench.cli import main

    dataset = get_dataset("dl20", data_dir)
    assert main(["evaluate", "--dataset", "dl20", "--data-dir", str(data_dir),
                 "--run", str(dataset.official_run_path("bm25")), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert list(values) == ["mrr@10", "ndcg@5", "mrr@10:judged", "ndcg@5:judged", "ndcg@10", "ndcg@10:judged",
                            "recall@100", "map", "Judged@10"]
    assert round(values["ndcg@10"], 4) == 0.4796


def test_run_for_another_dataset_is_rejected(data_dir):
    dl19, dl20 = get_dataset("dl19", data_dir), get_dataset("dl20", data_dir)
    with pytest.raises(WorkbenchError, match="none of the run's queries has judgments"):
        evaluate_run(read_run(dl19.official_run_path("bm25")), dl20.qrels, 2)
