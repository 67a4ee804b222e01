"""Training lists and cross-year folds, with the leakage guard checked in code.

A training *list* is one query with its candidates and graded labels. TREC DL19 and DL20 share
no queries, so the folds cross years:

* fold ``dl19`` (evaluated on DL19) trains on DL20's judged queries (official BM25 top-100,
  NIST grades; unjudged candidates count as 0) plus dev600 (BM25 top-20, one relevant
  passage, added to the list when BM25 missed it);
* fold ``dl20`` the other way round.

A random ``validation`` share of the training queries (seeded, per source) is held out for
early stopping. :func:`fold_lists` refuses a fold whose training or validation queries
overlap the evaluation dataset by id or by normalised text.
For users with internet, :func:`msmarco_train_lists` builds lists from ir_datasets' MS MARCO
train qrels and BM25 candidates (a TREC run over the train queries).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.datasets import Dataset, get_dataset
from ..data.leakage import normalise_query_text
from ..data.trec import read_run, truncate_run

#: fold name (= the dataset it is evaluated on) -> the datasets it trains on
FOLDS = {"dl19": ("dl20", "dev600"), "dl20": ("dl19", "dev600")}


@dataclass
class RankingList:
    """One query, its candidates (passage ids and texts) and their graded labels."""

    source: str
    qid: str
    query: str
    docnos: list[str]
    passages: list[str]
    labels: np.ndarray  # float32 grades

    def __len__(self) -> int:
        return len(self.docnos)


@dataclass
class Fold:
    """Training and validation lists of one fold, and the dataset it is evaluated on."""

    name: str
    evaluate_on: str
    train: Sequence[RankingList]  # a list, or lists read lazily from disk (:class:`.sources.ShardedLists`)
    validation: list[RankingList]
    sources: tuple[str, ...] = field(default_factory=tuple)

    def queries(self) -> list[tuple[str, str, str]]:
        """``(dataset, qid, text)`` of every training and validation query (for the leakage record)."""
        records = getattr(self.train, "records", None)  # lazy lists: their queries without their passages
        train = records() if records else ((lst.source, lst.qid, lst.query) for lst in self.train)
        return [*train, *((lst.source, lst.qid, lst.query) for lst in self.validation)]

    def train_qids(self) -> list[str]:
        """The ids of the training queries."""
        records = getattr(self.train, "records", None)
        return [qid for _, qid, _ in records()] if records else [lst.qid for lst in self.train]


def dataset_lists(dataset: Dataset, collection: Collection, candidates: pd.DataFrame, depth: int = 100,
                  add_missing_relevant: bool = False) -> list[RankingList]:
    """A list per judged query: its top ``depth`` candidates with qrels grades (unjudged: 0).

    ``add_missing_relevant`` appends relevant passages the candidates missed (when their text is
    in the collection), so every list has something to learn from.
    """
    qrels = dataset.qrels
    grades = {(q, d): float(g) for q, d, g in qrels[["qid", "docno", "label"]].itertuples(index=False)}
    relevant = qrels[qrels["label"] >= dataset.relevance_level].groupby("qid")["docno"].apply(list).to_dict()
    queries = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    top = truncate_run(candidates, depth)
    lists = []
    for qid, group in top.groupby("qid", sort=True):
        if qid not in queries or qid not in set(qrels["qid"]):
            continue
        docnos = [d for d in group.sort_values("rank")["docno"] if d in collection]
        if add_missing_relevant:
            docnos += [d for d in relevant.get(qid, []) if d not in docnos and d in collection]
        if not docnos:
            continue
        labels = np.array([grades.get((qid, d), 0.0) for d in docnos], dtype=np.float32)
        lists.append(RankingList(dataset.name, qid, queries[qid], docnos, collection.texts_for(docnos), labels))
    return lists


def _source_lists(name: str, data_dir: str | Path | None, collections: dict[str, Collection]) -> list[RankingList]:
    """A training source's lists: any dataset with qrels and a candidate run (its official BM25 run,
    else the first it ships), over its own collection's texts (``collections``: loaded once per
    collection, by :attr:`~workbench.data.dataset.Dataset.collection_key`)."""
    dataset = get_dataset(name, data_dir)
    runs = dataset.candidate_runs
    if not runs:
        raise WorkbenchError(f"dataset {name!r} ships no candidate run to train on (declare one under [runs])")
    run = read_run(dataset.official_run_path("bm25" if "bm25" in runs else runs[0]))
    if dataset.collection_key not in collections:
        collections[dataset.collection_key] = dataset.collection()
    return dataset_lists(dataset, collections[dataset.collection_key], run, depth=100, add_missing_relevant=name.startswith("dev"))


def split_validation(lists: list[RankingList], share: float, seed: int) -> tuple[list[RankingList], list[RankingList]]:
    """Hold out ``share`` of the lists of each source (at least one when there are two or more)."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for source in sorted({lst.source for lst in lists}):
        members = [lst for lst in lists if lst.source == source]
        order = rng.permutation(len(members))
        held = max(1, round(share * len(members))) if share > 0 and len(members) > 1 else 0
        validation += [members[i] for i in order[:held]]
        train += [members[i] for i in order[held:]]
    return train, validation


def check_disjoint(lists: list[RankingList], dataset: Dataset) -> None:
    """Raise if any list's query is a query of ``dataset`` (same id or same normalised text)."""
    qids = set(dataset.topics["qid"])
    texts = {normalise_query_text(q) for q in dataset.topics["query"]}
    for lst in lists:
        if lst.qid in qids or normalise_query_text(lst.query) in texts:
            raise WorkbenchError(f"leakage: training query {lst.source} qid {lst.qid} {lst.query!r} is also a query "
                                 f"of {dataset.name}, which this fold is evaluated on")


def fold_lists(fold: str, data_dir: str | Path | None = None, validation: float = 0.1, seed: int = 0,
               sources: tuple[str, ...] | None = None, limit: int | None = None) -> Fold:
    """The lists of a cross-year fold (``dl19``: train on DL20 + dev600, evaluate on DL19)."""
    if fold not in FOLDS:
        raise WorkbenchError(f"unknown fold {fold!r}; folds: {', '.join(FOLDS)}")
    evaluate_on = get_dataset(fold, data_dir)
    collections: dict[str, Collection] = {}
    sources = tuple(sources or FOLDS[fold])
    lists = []
    for name in sources:
        members = _source_lists(name, data_dir, collections)
        lists += members[:limit] if limit else members
    check_disjoint(lists, evaluate_on)
    train, held = split_validation(lists, validation, seed)
    return Fold(fold, fold, train, held, sources)


def msmarco_train_lists(queries: Any, qrels: Any, candidates: str | Path, collection: Collection,
                        depth: int = 30) -> list[RankingList]:
    """Lists from MS MARCO train: ``queries`` and ``qrels`` are ir_datasets iterables
    (``msmarco-passage/train``: ``queries_iter()``, ``qrels_iter()``), ``candidates`` a TREC run of
    BM25 over the train queries; each list is the top ``depth`` plus the relevant passages."""
    texts = {str(q.query_id): q.text for q in queries}
    grades: dict[str, dict[str, float]] = {}
    for row in qrels:
        grades.setdefault(str(row.query_id), {})[str(row.doc_id)] = float(row.relevance)
    run = truncate_run(read_run(candidates), depth)
    lists = []
    for qid, group in run.groupby("qid", sort=True):
        if qid not in texts or qid not in grades:
            continue
        docnos = [d for d in group.sort_values("rank")["docno"] if d in collection]
        docnos += [d for d, g in grades[qid].items() if g > 0 and d not in docnos and d in collection]
        if not docnos:
            continue
        labels = np.array([grades[qid].get(d, 0.0) for d in docnos], dtype=np.float32)
        lists.append(RankingList("msmarco-train", qid, texts[qid], docnos, collection.texts_for(docnos), labels))
    return lists
