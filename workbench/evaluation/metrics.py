"""Evaluation with ranx: headline MRR@10 and NDCG@5, plus NDCG@10, R@100, MAP (and Judged@10 on TREC DL).

Metric names are ranx's (``"mrr@10"``, ``"ndcg@5"``, ...) or ir_measures notation
(``"nDCG@10"``, ``"RR(rel=2)@10"``, ``"Judged@10"``; :mod:`.measures` says who computes
each). Binary metrics in the workbench's names (MRR, MAP, recall, precision) count a passage as
relevant only at the dataset's relevance level (grade >= 2 on TREC DL, following the official
convention): internally they become ranx's ``-l2`` variants. NDCG uses the grades as gains
(trec_eval's formula).

Only judged queries are evaluated; a judged query missing from the run scores 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..core.measures import BINARY_METRICS, KNOWN_METRICS, Measure, ranx_metric, resolve_measure  # noqa: F401 (re-exported)

HEADLINE_METRICS = ["mrr@10", "ndcg@5"]
DEFAULT_METRICS = ["mrr@10", "ndcg@5", "ndcg@10", "recall@100", "map"]


@dataclass
class Evaluation:
    """Mean and per-query metric values of one run on one set of qrels."""

    metrics: list[str]
    means: dict[str, float]
    per_query: pd.DataFrame  # index: qid; columns: metrics
    n_queries: int
    n_run_queries_unjudged: int = 0  # queries in the run without judgments (excluded)
    n_judged_missing: int = 0  # judged queries absent from the run (scored 0)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def to_ranx_run(run: pd.DataFrame, name: str = "run", trec_eval_order: bool = True):
    """A ranx Run ranking each query's documents exactly as trec_eval does (with
    ``trec_eval_order=False``: the run's own scores, for score-based fusion).

    ranx leaves the order of tied scores to its sort; trec_eval breaks ties by docno
    descending. The run is ordered the trec_eval way (:func:`~workbench.data.trec.sort_run`)
    and each document's score replaced by a strictly decreasing one (minus its rank), so
    ranx sees no ties and computes trec_eval's numbers."""
    from ranx import Run

    from ..data.trec import sort_run

    ordered = sort_run(run)
    scores = -ordered["rank"].astype(float) if trec_eval_order else ordered["score"].astype(float)
    frame = pd.DataFrame({"qid": ordered["qid"].astype(object), "docno": ordered["docno"].astype(object),
                          "score": scores})
    ranx_run = Run.from_df(frame, q_id_col="qid", doc_id_col="docno", score_col="score")
    ranx_run.name = name
    return ranx_run


def ranx_lists(run: pd.DataFrame, qrels: pd.DataFrame, qids: list[str]):
    """(qrels, run) in ranx's own internal form, one entry per query of ``qids``, aligned: a numba
    typed list of ``[document id, value]`` float arrays, each sorted by value descending, which
    ranx's ``evaluate`` takes as it is.

    The same numbers as ``Qrels.from_df``/``Run.from_df`` with ``make_comparable`` (a query absent
    from the run gets an empty list), without building ranx's typed dictionaries: numba compiles
    those in every new process (seconds before the first number), and only their lists reach the
    metric kernels. Documents get exact integer ids shared by the qrels and the run instead of
    ranx's hashes of their names, so no two documents can collide. The run is in trec_eval's order
    with strictly decreasing scores (as :func:`to_ranx_run` gives it)."""
    from numba.typed import List

    from ..data.trec import sort_run

    ordered = sort_run(run)
    codes, _ = pd.factorize(pd.concat([qrels["docno"], ordered["docno"]], ignore_index=True))
    judged = pd.DataFrame({"qid": qrels["qid"].to_numpy(), "doc": codes[:len(qrels)].astype(np.float64),
                           "value": qrels["label"].astype(np.float64).to_numpy()})
    ranked = pd.DataFrame({"qid": ordered["qid"].to_numpy(), "doc": codes[len(qrels):].astype(np.float64),
                           "value": -ordered["rank"].astype(np.float64).to_numpy()})
    empty = np.empty((0, 2), dtype=np.float64)

    def by_query(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        frame = frame.sort_values(["qid", "value"], ascending=[True, False], kind="stable")
        pairs = frame[["doc", "value"]].to_numpy(dtype=np.float64)
        starts = np.flatnonzero(np.r_[True, frame["qid"].to_numpy()[1:] != frame["qid"].to_numpy()[:-1]])
        ends = np.r_[starts[1:], len(frame)]
        keys = frame["qid"].to_numpy()
        return {keys[start]: np.ascontiguousarray(pairs[start:end]) for start, end in zip(starts, ends)}

    qrels_by_query, run_by_query = by_query(judged), by_query(ranked)
    return (List([qrels_by_query.get(qid, empty) for qid in qids]),
            List([run_by_query.get(qid, empty) for qid in qids]))


def evaluate_run(run: pd.DataFrame, qrels: pd.DataFrame, relevance_level: int = 1,
                 metrics: list[str] | None = None) -> Evaluation:
    """Evaluate ``run`` against ``qrels`` with ranx; keeps per-query values for later analysis."""
    from ranx import evaluate

    metrics = list(dict.fromkeys(metrics or DEFAULT_METRICS))
    measures = {metric: resolve_measure(metric, relevance_level) for metric in metrics}
    started = time.perf_counter()
    if run["qid"].dtype != object or qrels["qid"].dtype != object:  # ids are strings everywhere (1 != "1")
        run = run.astype({"qid": str, "docno": str})
        qrels = qrels.astype({"qid": str, "docno": str})
    judged = pd.unique(qrels["qid"])
    judged_set = set(judged)
    run_qids = set(run["qid"])
    in_judged = run[run["qid"].isin(judged_set)]
    n_unjudged = len(run_qids - judged_set)
    n_missing = len(judged_set - run_qids)
    if in_judged.empty:
        raise WorkbenchError("none of the run's queries has judgments in the qrels: "
                             "is the run for this dataset?")
    order = sorted(judged, key=str)
    columns: dict[str, pd.Series] = {}
    ranx_names = sorted({m.ranx_name for m in measures.values() if m.engine == "ranx"})
    if ranx_names:
        qids = sorted(judged_set)
        ranx_qrels, ranx_run = ranx_lists(in_judged, qrels, qids)
        # ranx 0.3.21 returns one metric's values under its short name's key (and fails on it) when
        # given typed lists and a single metric: a list of two names always returns the dictionary
        scores = evaluate(ranx_qrels, ranx_run, ranx_names * (2 if len(ranx_names) == 1 else 1), return_mean=False)
        for metric, measure in measures.items():
            if measure.engine == "ranx":
                columns[metric] = pd.Series(np.asarray(scores[measure.ranx_name], dtype=float), index=qids)
    for metric, measure in measures.items():
        if measure.engine == "judged":
            columns[metric] = judged_at(in_judged, qrels, measure.cutoff)
    others = {metric: measure for metric, measure in measures.items() if measure.engine == "ir_measures"}
    if others:
        columns.update(_ir_measures_values(in_judged, qrels, others))
    condensed = {metric: measure for metric, measure in measures.items() if measure.engine == "condensed"}
    if condensed:  # judged-only variants: the base measures over the run's condensed list
        from .condensed import condensed_values

        columns.update(condensed_values(in_judged, qrels, relevance_level, condensed, evaluate_run))
    in_run = pd.Index(order).isin(set(in_judged["qid"]))
    for metric in metrics:
        values = columns[metric].reindex(order)
        undefined = values.isna().to_numpy() & in_run
        if undefined.any():  # an engine that could not compute a query it was given: never a silent 0
            raise WorkbenchError(f"metric {metric} is undefined for query {order[int(np.argmax(undefined))]!r} "
                                 f"({int(undefined.sum())} queries)")
        columns[metric] = values.fillna(0.0).astype(float)  # judged queries missing from the run score 0
    per_query = pd.DataFrame({metric: columns[metric].to_numpy() for metric in metrics},
                             index=pd.Index(order, name="qid"))
    means = {metric: float(per_query[metric].mean()) for metric in metrics}
    notes = []
    if n_unjudged:
        notes.append(f"{n_unjudged} run queries have no judgments and were excluded")
    if n_missing:
        notes.append(f"{n_missing} judged queries are missing from the run and score 0")
    return Evaluation(metrics, means, per_query, n_queries=len(judged_set), n_run_queries_unjudged=n_unjudged,
                      n_judged_missing=n_missing, seconds=time.perf_counter() - started, notes=notes)


def judged_at(run: pd.DataFrame, qrels: pd.DataFrame, cutoff: int) -> pd.Series:
    """``Judged@k`` per query: the fraction of the top ``cutoff`` (trec_eval's order) that has a
    judgment of any grade, over ``cutoff`` or the list's length when shorter (ir_measures'
    definition; on lists of at least ``cutoff`` documents it is trec_eval's P@k over qrels in which
    every judged document is relevant). A low value says the metrics treat many retrieved documents as
    non-relevant only because nobody judged them."""
    from ..data.trec import sort_run

    top = sort_run(run)
    top = top[top["rank"] <= cutoff]
    judged_pairs = pd.MultiIndex.from_arrays([qrels["qid"].astype(str), qrels["docno"].astype(str)])
    hits = pd.MultiIndex.from_arrays([top["qid"].astype(str), top["docno"].astype(str)]).isin(judged_pairs)
    grouped = pd.Series(hits, index=top["qid"].to_numpy()).groupby(level=0)
    return grouped.sum().astype(float) / grouped.size().astype(float)


def _ir_measures_values(run: pd.DataFrame, qrels: pd.DataFrame, measures: dict[str, Measure]) -> dict[str, pd.Series]:
    """Per-query values of measures ir_measures computes, each by its provider; the run is given
    in trec_eval's order as strictly decreasing scores, as ranx gets it."""
    import ir_measures

    from ..data.trec import sort_run

    ordered = sort_run(run)
    run_frame = pd.DataFrame({"query_id": ordered["qid"].astype(str), "doc_id": ordered["docno"].astype(str),
                              "score": -ordered["rank"].astype(float)})
    qrels_frame = pd.DataFrame({"query_id": qrels["qid"].astype(str), "doc_id": qrels["docno"].astype(str),
                                "relevance": qrels["label"].astype(int)})
    providers = {provider.NAME: provider for provider in ir_measures.DefaultPipeline.providers}
    by_provider: dict[str, dict[str, Measure]] = {}
    for metric, measure in measures.items():
        by_provider.setdefault(measure.provider, {})[metric] = measure
    values: dict[str, dict[str, float]] = {metric: {} for metric in measures}
    for provider_name, group in by_provider.items():
        parsed = {ir_measures.parse_measure(m.ir_measures_name): metric for metric, m in group.items()}
        for result in providers[provider_name].iter_calc(list(parsed), qrels_frame, run_frame):
            values[parsed[result.measure]][str(result.query_id)] = float(result.value)
    return {metric: pd.Series(found, dtype=float) for metric, found in values.items()}


def evaluate_cached(run: pd.DataFrame, run_sha256: str, qrels: pd.DataFrame, qrels_sha256: str,
                    relevance_level: int = 1, metrics: list[str] | None = None) -> Evaluation:
    """:func:`evaluate_run` through a small on-disk cache keyed by the run's and the qrels' sha256,
    the relevance level, the metrics and the ranx version: re-evaluating an unchanged stored run
    (every run of a warm ``make eval``) then costs neither ranx nor numba's per-process compilation
    of its typed containers (about 8 s)."""
    import json
    from importlib.metadata import version

    from ..core.cache import cache_dir, fingerprint
    from ..core.files import atomic_write

    metrics = list(metrics or DEFAULT_METRICS)
    resolved = [resolve_measure(metric, relevance_level) for metric in metrics]
    engines = {m.engine for m in resolved} | {m.base.engine for m in resolved if m.base is not None}
    versions = [version("ranx")] + ([version("ir_measures"), version("pytrec_eval-terrier")]
                                     if "ir_measures" in engines else [])
    key = fingerprint("evaluation/v2", run_sha256, qrels_sha256, relevance_level, metrics, *versions)
    path = cache_dir("evaluations") / f"{key[:40]}.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        per_query = pd.DataFrame(saved["per_query"], index=pd.Index(saved["qids"], name="qid"), dtype=float)
        return Evaluation(metrics, {m: float(saved["means"][m]) for m in metrics}, per_query[metrics],
                          n_queries=int(saved["n_queries"]), n_run_queries_unjudged=int(saved["unjudged"]),
                          n_judged_missing=int(saved["missing"]), notes=list(saved["notes"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet, or a damaged entry: evaluate again and overwrite it
    evaluation = evaluate_run(run, qrels, relevance_level, metrics)
    record = {"qids": [str(q) for q in evaluation.per_query.index],
              "per_query": {m: evaluation.per_query[m].tolist() for m in metrics}, "means": evaluation.means,
              "n_queries": evaluation.n_queries, "unjudged": evaluation.n_run_queries_unjudged,
              "missing": evaluation.n_judged_missing, "notes": evaluation.notes}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        json.dump(record, handle)  # floats as repr: they read back bit for bit
    return evaluation
