"""Every ranx fusion method by name, and tuning on other queries only.

The fused runs are checked against ``ranx.fuse`` run by the test on the stored TREC files; tuned
parameters against ``ranx.optimize_fusion`` / a direct evaluation of every grid point on the
tuning queries; the guard against tuning on evaluated queries in code."""
from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.experiment.fusion import FUSION_METHODS, NORMALISATIONS
from workbench.experiment.systems import parse_system
from workbench.experiment.tuning import check_tuning_queries, split_folds

PAIR = "[official-bm25|official-bm25+tfidf]"


# --- fast: the grammar, the guard and the folds ---

def test_every_ranx_method_and_normalisation_is_a_system_by_name():
    for name, method in FUSION_METHODS.items():
        head = f"{name}:tune=folds:5" if method.supervised else name
        needs = {"gamma": "gamma=0.5", "phi": "phi=0.8"}
        options = [needs[p] for p in method.params if p in needs and not method.supervised]
        if options:
            head = f"{name}:{','.join(options)}"
        system = parse_system(f"{head}[a|b]")
        assert system.spec.method.name == name
    for norm in NORMALISATIONS:
        system = parse_system(f"wsum:norm={norm},weights=0.2;0.8[a|b]")
        assert system.spec.norm == (None if norm == "none" else norm)
        assert system.spec.params == {"weights": [0.2, 0.8]}
    assert parse_system("rrf[a|b]").spec.params == {"k": 60}
    assert parse_system("combsum[a|b]").spec.method.name == "sum"


@pytest.mark.parametrize("name, message", [
    ("fusion9[a|b]", "unknown fusion method 'fusion9'"),
    ("wsum:norm=softmax[a|b]", "unknown normalisation 'softmax'"),
    ("wsum:weights=0.5[a|b]", "must be 2 non-negative numbers"),
    ("probfuse[a|b]", "is trained on judged queries"),
    ("sum:tune=other-year[a|b]", "has no parameter to tune"),
    ("wsum:step=0.1[a|b]", "only set how tune= searches"),
    ("rbc[a|b]", "needs phi="),
    ("wsum:tune=folds:1[a|b]", "K >= 2 folds"),
    ("bm25-mini:k1=;,tune=other-year", "empty parameter grid for k1"),
    ("bm25-mini:k1=0.9,tune=other-year", "nothing to tune"),
    ("wsum:tune=other-year[bm25-mini:k1=0.6;1.2,tune=other-year|official-bm25]", "nested tuning is refused"),
    ("wsum:tune=folds:3[official-bm25|rrf:tune=folds:3[a|b]]", "nested tuning is refused"),
    ("rrf:tune=folds:5,step=2.5[a|b]", "must be an integer"),
    ("rrf:tune=folds:5,min_k=200[a|b]", "empty parameter grid for rrf"),
    ("probfuse:tune=folds:3,max_n_segments=0[a|b]", "empty parameter grid for probfuse"),
])
def test_bad_fusion_and_tuning_specs_are_one_line(name, message):
    with pytest.raises(WorkbenchError) as raised:
        parse_system(name)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_tuning_on_evaluated_queries_is_refused_in_code():
    with pytest.raises(WorkbenchError, match="overlap the evaluated queries"):
        check_tuning_queries({"1", "2", "3"}, {"3", "4"}, "wsum[a|b]")
    check_tuning_queries({"1", "2"}, {"3", "4"}, "wsum[a|b]")


def test_folds_partition_the_queries_and_never_tune_on_the_held_out_fold():
    qids = [str(q) for q in range(43)]
    folds = split_folds(qids, 5, seed=3)
    held = [set(h) for h, _ in folds]
    assert sorted(q for h in held for q in h) == sorted(qids)
    assert max(map(len, held)) - min(map(len, held)) <= 1
    for held_out, tuning in folds:
        assert not set(held_out) & set(tuning) and set(held_out) | set(tuning) == set(qids)
    assert split_folds(qids, 5, seed=3) == folds and split_folds(qids, 5, seed=4) != folds


# --- on the shared data ---

def _ranx_run(path, qids=None):
    from ranx import Run

    run = Run.from_file(str(path), kind="trec")
    if qids is not None:
        run = Run({q: docs for q, docs in run.to_dict().items() if q in qids})
    return run


def _scores(frame):
    return {(q, d): s for q, d, s in frame[["qid", "docno", "score"]].itertuples(index=False)}


@pytest.mark.parametrize("dataset", ["dl19", "dl20"])
@pytest.mark.parametrize("head, norm, method, params", [
    ("wsum:norm=min-max,weights=0.3;0.7", "min-max", "wsum", {"weights": [0.3, 0.7]}),
    ("sum:norm=zmuv", "zmuv", "sum", {}),
    ("mnz:norm=max", "max", "mnz", {}),
    ("gmnz:norm=sum,gamma=0.5", "sum", "gmnz", {"gamma": 0.5}),
])
def test_a_fused_system_equals_ranx_fuse_on_the_same_two_runs(workbench, dataset, head, norm, method, params):
    from ranx import fuse

    a, b = (workbench.produce(name, dataset) for name in ("official-bm25", "official-bm25+tfidf"))
    fused = workbench.produce(f"{head}{PAIR}", dataset)
    config = fused.manifest["config"]
    assert (config["method"], config["norm"]) == (method, norm) and fused.manifest["config"]["fusion_params"] == params
    shared = set(a.run["qid"]) & set(b.run["qid"])
    expected = fuse([_ranx_run(a.path, shared), _ranx_run(b.path, shared)], norm=norm, method=method,
                    params=params).to_dict()
    ours = _scores(fused.run)
    assert set(ours) == {(q, d) for q, docs in expected.items() for d in docs}
    for (qid, docno), score in ours.items():
        assert score == pytest.approx(expected[qid][docno], abs=1e-6)


def test_interpolation_tuned_on_the_other_year(workbench):
    from ranx import Qrels, optimize_fusion

    name = f"wsum:norm=min-max,tune=other-year{PAIR}"
    fused = workbench.produce(name, "dl19")
    tuning = fused.manifest["config"]["tuning"]
    dl19, dl20 = workbench.dataset("dl19"), workbench.dataset("dl20")
    assert tuning["dataset"] == "dl20" and tuning["metric"] == "ndcg@10"
    assert set(tuning["queries"]) <= set(dl20.judged_topics["qid"])
    assert not set(tuning["queries"]) & set(dl19.judged_topics["qid"])
    # independently: ranx's optimiser on the DL20 files
    a, b = (workbench.produce(system, "dl20") for system in ("official-bm25", "official-bm25+tfidf"))
    qrels = Qrels.from_file(str(dl20.qrels_path), kind="trec")
    shared = set(tuning["queries"])
    qrels = Qrels({q: docs for q, docs in qrels.to_dict().items() if q in shared})
    best = optimize_fusion(qrels, [_ranx_run(a.path, shared), _ranx_run(b.path, shared)], norm="min-max",
                           method="wsum", metric="ndcg@10", show_progress=False)
    assert fused.manifest["config"]["fusion_params"]["weights"] == pytest.approx(best["weights"])
    again = workbench.produce(name, "dl19")
    assert again.reused


def test_tuning_on_the_evaluated_queries_is_refused(workbench):
    with pytest.raises(WorkbenchError, match="overlap the evaluated queries"):
        workbench.produce(f"wsum:norm=min-max,tune=dl19{PAIR}", "dl19")
    with pytest.raises(WorkbenchError, match="overlap the evaluated queries"):
        workbench.produce("bm25-mini:k1=0.6;1.2,tune=dl20", "dl20")
    with pytest.raises(WorkbenchError, match="empty parameter grid"):
        workbench.produce(f"wsum:norm=min-max,tune=other-year,step=0{PAIR}", "dl19")


def test_fold_tuning_fuses_each_fold_with_weights_tuned_without_it(workbench):
    from ranx import fuse

    from ranx import Qrels, optimize_fusion

    fused = workbench.produce(f"wsum:norm=min-max,tune=folds:3{PAIR}", "dl19")
    folds = fused.manifest["config"]["tuning"]["folds"]
    dl19 = workbench.dataset("dl19")
    judged = set(dl19.judged_topics["qid"])
    assert sorted(q for fold in folds for q in fold["evaluated_queries"]) == sorted(judged)
    a, b = (workbench.produce(name, "dl19") for name in ("official-bm25", "official-bm25+tfidf"))
    all_qrels = Qrels.from_file(str(dl19.qrels_path), kind="trec").to_dict()
    for fold in folds:
        held = set(fold["evaluated_queries"])
        assert not held & set(fold["tuning_queries"]) and held | set(fold["tuning_queries"]) == judged
        # the weights are what ranx's optimiser finds on the other folds' queries alone
        others = set(fold["tuning_queries"])
        best = optimize_fusion(Qrels({q: d for q, d in all_qrels.items() if q in others}),
                               [_ranx_run(a.path, others), _ranx_run(b.path, others)], norm="min-max",
                               method="wsum", metric="ndcg@10", show_progress=False)
        assert fold["params"]["weights"] == pytest.approx(best["weights"])
        expected = fuse([_ranx_run(a.path, held), _ranx_run(b.path, held)], norm="min-max", method="wsum",
                        params=fold["params"]).to_dict()
        ours = _scores(fused.run[fused.run["qid"].isin(held)])
        for (qid, docno), score in ours.items():
            assert score == pytest.approx(expected[qid][docno], abs=1e-6)


def test_bm25_grid_tuned_on_the_other_year_picks_the_best_point_there(workbench):
    from ranx import Qrels, evaluate

    name = "bm25-mini:k1=0.6;1.2,b=0.4;0.75,tune=other-year"
    tuned = workbench.produce(name, "dl19")
    dl20 = workbench.dataset("dl20")
    qrels = Qrels.from_file(str(dl20.qrels_path), kind="trec")
    points = [f"bm25-mini:k1={k1},b={b}" for k1 in ("0.6", "1.2") for b in ("0.4", "0.75")]
    means = {}
    for point in points:
        stored = workbench.produce(point, "dl20")
        run = _ranx_run(stored.path)
        run = type(run)({q: run.to_dict().get(q, {}) for q in qrels.keys()})
        means[point] = evaluate(qrels, run, "ndcg@10", make_comparable=True)
    best = max(points, key=lambda point: (round(means[point], 10), -points.index(point)))
    assert tuned.manifest["config"]["chosen"] == [best]
    assert tuned.manifest["config"]["tuned_params"][0] == dict(part.split("=") for part in best.split(":")[1].split(","))
    chosen = workbench.produce(best, "dl19")
    assert _scores(tuned.run) == _scores(chosen.run)


def test_rrf_k_tuned_on_the_other_year_is_ranx_optimisers(workbench):
    from ranx import Qrels, Run, optimize_fusion

    fused = workbench.produce("rrf:tune=other-year,metric=mrr@10,step=20[official-bm25|official-tasb]", "dl20")
    tuning = fused.manifest["config"]["tuning"]
    assert tuning["dataset"] == "dl19" and tuning["metric"] == "mrr@10"
    dl19 = workbench.dataset("dl19")
    shared = set(tuning["queries"])
    qrels = Qrels({q: d for q, d in Qrels.from_file(str(dl19.qrels_path), kind="trec").to_dict().items() if q in shared})
    runs = []
    for name in ("official-bm25", "official-tasb"):  # ranks as the TREC files give them
        frame = workbench.produce(name, "dl19").run
        frame = frame[frame["qid"].isin(shared)]
        runs.append(Run.from_df(frame.assign(score=-frame["rank"].astype(float)), q_id_col="qid",
                                doc_id_col="docno", score_col="score"))
    best = optimize_fusion(qrels, runs, norm=None, method="rrf", metric="mrr@10-l2", step=20, show_progress=False)
    assert fused.manifest["config"]["fusion_params"] == {"k": best["k"]}
