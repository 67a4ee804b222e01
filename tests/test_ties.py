"""Ties are ranked as trec_eval ranks them (score descending, then docno descending), checked
against the trec_eval of the Anserini jar that Pyserini ships, on tie-heavy runs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers_trec_eval import trec_eval
from workbench.data.trec import read_qrels, read_run, sort_run, write_run
from workbench.evaluation.metrics import evaluate_run

# workbench metric -> trec_eval arguments (binary metrics at relevance level 2, as on TREC DL)
TREC_EVAL_MEASURES = {
    "mrr@10": (["-l", "2", "-M", "10", "-m", "recip_rank"], "recip_rank"),
    "ndcg@5": (["-m", "ndcg_cut.5"], "ndcg_cut_5"),
    "ndcg@10": (["-m", "ndcg_cut.10"], "ndcg_cut_10"),
    "map": (["-l", "2", "-m", "map"], "map"),
    "recall@100": (["-l", "2", "-m", "recall.100"], "recall_100"),
}


def test_sort_run_breaks_ties_by_docno_descending():
    run = pd.DataFrame({"qid": ["1"] * 4, "docno": ["a", "c", "b", "d"], "score": [1.0, 1.0, 2.0, 1.0]})
    assert list(sort_run(run)["docno"]) == ["b", "d", "c", "a"]
    assert list(sort_run(run)["rank"]) == [1, 2, 3, 4]


def test_ties_change_the_metric_as_in_trec_eval():
    # the relevant document is "a": trec_eval ranks it last among the tied ones
    qrels = pd.DataFrame({"qid": ["1"], "docno": ["a"], "label": [1]})
    run = pd.DataFrame({"qid": ["1"] * 3, "docno": ["a", "b", "c"], "score": [1.0, 1.0, 1.0]})
    assert evaluate_run(run, qrels, 1, ["mrr@10"]).means["mrr@10"] == pytest.approx(1 / 3)


def _tie_heavy_runs(data_dir: Path) -> dict[str, pd.DataFrame]:
    bm25 = read_run(data_dir / "runs" / "bm25.dl19.trec")
    constant = bm25.assign(score=1.0)  # every document tied
    coarse = bm25.assign(score=bm25["score"].round(0))  # many ties, some order left
    return {"constant": constant, "coarse": coarse}


@pytest.mark.parametrize("kind", ["constant", "coarse"])
def test_evaluate_equals_trec_eval_on_tie_heavy_runs(data_dir, tmp_path, kind):
    qrels_path = data_dir / "qrels" / "dl19-passage.txt"
    run = _tie_heavy_runs(data_dir)[kind]
    run_path = write_run(run, tmp_path / f"{kind}.trec", tag=kind)
    # the file as written (ranks in trec_eval order) and the file re-read both evaluate the same
    ours = evaluate_run(read_run(run_path), read_qrels(qrels_path), 2, list(TREC_EVAL_MEASURES)).means
    theirs = trec_eval(qrels_path, run_path, TREC_EVAL_MEASURES)
    for metric in TREC_EVAL_MEASURES:
        assert round(ours[metric], 4) == round(theirs[metric], 4), (kind, metric, ours[metric], theirs[metric])
    lines = run_path.read_text().splitlines()
    first_query = [line.split() for line in lines if line.split()[0] == lines[0].split()[0]]
    docnos = [fields[2] for fields in first_query]
    if kind == "constant":
        assert docnos == sorted(docnos, reverse=True)
    assert [int(fields[3]) for fields in first_query] == list(range(1, len(first_query) + 1))
