"""Training data named by a configuration, for large judged datasets such as MS MARCO train::

    train = ["irds:msmarco-passage/train/judged"]            # datasets with qrels (built-in, declared, irds:)
    negatives = "irds:msmarco-passage/train/triples-small"    # docpairs' negatives, or a first stage spec
    negatives_depth = 30
    validation_source = "irds:msmarco-passage/dev/small"      # else a held-out share of the training queries
    validation_queries = 500

There are no cross-year folds then: one model (fold ``train``). A training list is one query with
its judged-positive passages and up to ``negatives_depth`` negatives: the docpairs' second
documents for that query (``irds:<id>`` with docpairs), or the top of a first stage's run over the
training queries (``bm25:index=msmarco-v1-passage``, ``official-<run>``, any registered stage);
labels are the qrels grades (unjudged: 0). Without ``negatives``, the dataset's candidate run
(``official-<run>``, which reads the whole run file per chunk: for a run as large as MS MARCO
train's top-1000, name docpairs or a first stage instead).

This module picks the queries: the training sources' judged queries, refused when one is a query of
a dataset the model is evaluated on, and the validation sample; then :func:`training_fold` builds
the one fold. Everything else is computed once under ``<cache>/train-sources/`` and keyed by what
determines it: the candidates (:mod:`.candidates`), then the lists, written in shards that
:class:`~.list_shards.ShardedLists` gives the trainer lazily (:mod:`.list_shards`). The validation
lists (``validation_queries`` of them) are in memory.

Refused, each in one line: a training source without qrels, an unknown source or negatives spec,
negatives that yield nothing for the training queries, and a training query that is also a query
of a dataset in ``evaluate_on`` (by id or normalised text). Validation queries whose id or text is
a training query are left out of the validation sample.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..data.datasets import IRDS_PREFIX, Dataset, get_dataset
from ..data.leakage import normalise_query_text
from .candidates import Negatives, chunk_path, collection_or_none, compute_candidates, query_chunks, read_candidates
from .data import Fold, RankingList
from .list_shards import ShardedLists, build_list, build_shards, qrels_grades

#: the fold name of a model trained on named data (``<models>/<name>/train/``)
TRAIN_FOLD = "train"


def source_dataset(name: str, data_dir: str | Path | None, role: str) -> Dataset:
    """The dataset ``name``, which must have qrels (``role`` names it in errors)."""
    dataset = get_dataset(name, data_dir)
    handle = getattr(dataset, "handle", None)
    if handle is not None and not handle.has_qrels():
        raise WorkbenchError(f"{role} {name!r} has no qrels: training and validation data need relevance judgments")
    if dataset.qrels.empty:
        raise WorkbenchError(f"{role} {name!r} has no qrels for its queries: training and validation data need "
                             "relevance judgments")
    return dataset


def judged_queries(dataset: Dataset) -> pd.DataFrame:
    """``qid, query`` of the queries with at least one positive grade, in topic order."""
    positive = set(dataset.qrels.loc[dataset.qrels["label"] > 0, "qid"])
    topics = dataset.topics
    return topics[topics["qid"].isin(positive)].reset_index(drop=True)


def _sample(queries: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    order = np.random.default_rng(seed).permutation(len(queries))[:count]
    return queries.iloc[np.sort(order)].reset_index(drop=True)


def validation_lists(name: str, data_dir: str | Path | None, count: int, depth: int, seed: int, negatives: str | None,
                     seen_qids: set[str], seen_texts: set[str], progress: bool = False) -> list[RankingList]:
    """``count`` judged queries of dataset ``name`` (seeded, none a training query), each with its
    top ``depth`` candidates plus the relevant passages they missed: the dataset's candidate run, else
    the ``negatives`` first stage over them."""
    dataset = source_dataset(name, data_dir, "validation source")
    queries = judged_queries(dataset)
    fresh = [q not in seen_qids and normalise_query_text(t) not in seen_texts
             for q, t in zip(queries["qid"], queries["query"])]
    sample = _sample(queries[fresh].reset_index(drop=True), count, seed)
    if sample.empty:
        raise WorkbenchError(f"validation source {name!r} has no judged query that is not a training query")
    if dataset.candidate_runs:
        spec = "official-" + ("bm25" if "bm25" in dataset.candidate_runs else dataset.candidate_runs[0])
    elif negatives and not negatives.startswith(IRDS_PREFIX):
        spec = negatives
    else:
        raise WorkbenchError(f"validation source {name!r} ships no candidate run, and negatives {negatives!r} are no "
                             "first stage to search its queries with: give negatives = \"bm25:...\" or another "
                             "validation_source")
    candidates = compute_candidates(Negatives(spec, dataset), sample, depth, progress)
    collection = dataset.collection()
    grades = qrels_grades(dataset.qrels, set(sample["qid"]))
    lists = []
    for number, chunk in enumerate(query_chunks(sample)):
        found = read_candidates(chunk_path(candidates, number))
        for qid, query in chunk[["qid", "query"]].itertuples(index=False):
            built = build_list(dataset.name, qid, query, grades.get(qid, {}), found.get(qid, []), depth, collection,
                               negatives_only=False)
            if built is not None:
                lists.append(built)
    return lists


def _leakage_guard(data_dir: str | Path | None, names: Sequence[str]) -> list[tuple[str, set[str], set[str]]]:
    guards = []
    for name in names:
        dataset = get_dataset(name, data_dir)
        guards.append((dataset.name, set(dataset.topics["qid"]),
                       {normalise_query_text(q) for q in dataset.topics["query"]}))
    return guards


def training_fold(config: Any, data_dir: str | Path | None = None, progress: bool = False) -> Fold:
    """The one fold of a configuration with ``train``: lazily read training lists, validation lists."""
    guards = _leakage_guard(data_dir, config.evaluate_on or [])
    directories, held_lists = [], []
    seen_qids: set[str] = set()
    seen_texts: set[str] = set()
    prepared = []
    for name in config.train:
        dataset = source_dataset(name, data_dir, "training source")
        negatives = Negatives(config.negatives, dataset)
        queries = judged_queries(dataset)
        texts = [normalise_query_text(q) for q in queries["query"]]
        for evaluated, qids, evaluated_texts in guards:
            for qid, query, text in zip(queries["qid"], queries["query"], texts):
                if qid in qids or text in evaluated_texts:
                    raise WorkbenchError(f"leakage: training query {name} qid {qid} {query!r} is also a query of "
                                         f"{evaluated}, which this model is evaluated on (evaluate_on)")
        seen_qids.update(queries["qid"])
        seen_texts.update(texts)
        prepared.append((dataset, negatives, queries))
    for dataset, negatives, queries in prepared:
        candidates = compute_candidates(negatives, queries, config.negatives_depth, progress)
        if not any(p.stat().st_size for p in candidates.glob("chunk-*.tsv")):
            raise WorkbenchError(f"negatives {negatives.spec!r} yield no candidates for the "
                                 f"{len(queries)} training queries of {dataset.name}")
        held: set[str] = set()
        if not config.validation_source and config.validation > 0 and len(queries) > 1:
            size = min(config.validation_queries, max(1, round(config.validation * len(queries))))
            held = set(_sample(queries, size, config.seed)["qid"])
        collection_id = str(getattr(collection_or_none(dataset), "fingerprint", dataset.collection_key))
        directory, validation = build_shards(dataset, queries, candidates, config.negatives_depth, held,
                                             collection_id)
        directories.append(directory)
        held_lists += validation
    train = ShardedLists(directories)
    if not len(train):
        raise WorkbenchError(f"no training list could be built from {', '.join(config.train)} (no candidate or "
                             "positive passage text found)")
    if config.validation_source:
        held_lists = validation_lists(config.validation_source, data_dir, config.validation_queries,
                                      config.negatives_depth, config.seed, config.negatives, seen_qids, seen_texts,
                                      progress)
    return Fold(TRAIN_FOLD, TRAIN_FOLD, train, held_lists, tuple(config.train))
