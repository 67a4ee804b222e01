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

Everything is computed once under ``<cache>/train-sources/`` and keyed by what determines it:

* ``candidates/<key>/chunk-NNNNN.tsv`` (``qid<TAB>docno``, best first): up to twice
  ``negatives_depth`` candidates of :data:`CHUNK_QUERIES` training queries each (the first
  ``negatives_depth`` not judged positive become negatives), written atomically. A first stage searches one
  chunk at a time, so an interrupted run resumes at the first missing chunk; docpairs are read in
  one streamed pass (their file is one sequence) and their chunks published at its end.
* ``lists/<key>/shard-NNNNN.jsonl`` (one list a line) and ``queries-NNNNN.jsonl`` (its queries),
  one shard per chunk, written atomically (resumable the same way), then ``manifest.json``.

:class:`ShardedLists` gives the trainer the lists lazily (``len``, index access, a per-epoch order
that shuffles the shards and the lists within each) holding at most two shards in memory; the
validation lists (``validation_queries`` of them) are in memory.

Refused, each in one line: a training source without qrels, an unknown source or negatives spec,
negatives that yield nothing for the training queries, and a training query that is also a query
of a dataset in ``evaluate_on`` (by id or normalised text). Validation queries whose id or text is
a training query are left out of the validation sample.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write, sha256_file, text_lines
from ..data.collection import LazyTexts
from ..data.datasets import IRDS_PREFIX, Dataset, get_dataset
from ..data.leakage import normalise_query_text
from ..data.trec import sort_run
from .data import Fold, RankingList

#: training queries per candidate chunk and per list shard
CHUNK_QUERIES = 2000
#: the fold name of a model trained on named data (``<models>/<name>/train/``)
TRAIN_FOLD = "train"
#: shards :class:`ShardedLists` keeps decoded at once
SHARDS_IN_MEMORY = 2
VERSION = "train-sources/v1"


# ---------------------------------------------------------------------------- sources

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


class Negatives:
    """Where the negatives come from: ``irds:<id>`` docpairs or a first stage spec."""

    def __init__(self, spec: str | None, dataset: Dataset):
        self.dataset = dataset
        if spec is None:
            runs = dataset.candidate_runs
            if not runs:
                raise WorkbenchError(f"training source {dataset.name!r} ships no candidate run: give negatives = "
                                     "\"irds:<id with docpairs>\" or a first stage (\"bm25:index=...\")")
            spec = "official-" + ("bm25" if "bm25" in runs else runs[0])
        self.spec = spec
        self.docpairs = None
        self.stage = None
        if spec.startswith(IRDS_PREFIX):
            import ir_datasets

            irds_id = spec[len(IRDS_PREFIX):]
            try:
                self.docpairs = ir_datasets.load(irds_id)
            except KeyError:
                raise WorkbenchError(f"unknown negatives source {spec!r}: no such ir_datasets id") from None
            if not self.docpairs.has_docpairs():
                raise WorkbenchError(f"negatives source {spec!r} has no docpairs (e.g. "
                                     "irds:msmarco-passage/train/triples-small)")
            self.identity = {"docpairs": irds_id, "ir_datasets": ir_datasets.__version__}
        else:
            from ..first_stage import StageContext, get_first_stage

            try:
                self.stage = get_first_stage(spec, StageContext(collection=_collection_or_none(dataset),
                                                                dataset=dataset, progress=False))
            except WorkbenchError as error:
                raise WorkbenchError(f"unknown negatives source {spec!r} (irds:<id with docpairs> or a first stage): "
                                     f"{error}") from None
            self.identity = {"first_stage": self.stage.run_config(sha256_file(dataset.topics_path))}


def _collection_or_none(dataset: Dataset) -> Any:
    try:
        return dataset.collection()
    except WorkbenchError:
        return None


# ---------------------------------------------------------------------------- candidates

def _chunks(queries: pd.DataFrame) -> list[pd.DataFrame]:
    return [queries.iloc[i:i + CHUNK_QUERIES] for i in range(0, len(queries), CHUNK_QUERIES)] or [queries]


def _chunk_path(directory: Path, number: int) -> Path:
    return directory / f"chunk-{number:05d}.tsv"


def compute_candidates(negatives: Negatives, queries: pd.DataFrame, depth: int, progress: bool = False) -> Path:
    """The negatives of ``queries`` as chunk files under the cache (computed once; resumable)."""
    key = fingerprint(VERSION, "candidates", negatives.identity, list(queries["qid"]), depth, CHUNK_QUERIES)
    directory = cache_dir("train-sources", "candidates", key[:24])
    chunks = _chunks(queries)
    if negatives.docpairs is not None:
        if not all(_chunk_path(directory, n).is_file() for n in range(len(chunks))):
            _docpairs_chunks(negatives, chunks, depth, directory)
        return directory
    for number, chunk in enumerate(chunks):
        path = _chunk_path(directory, number)
        if path.is_file():
            continue  # done by an earlier (perhaps interrupted) run
        run = negatives.stage.search(chunk[["qid", "query"]]) if len(chunk) else pd.DataFrame()
        with atomic_write(path) as out:
            if len(run):
                top = sort_run(run)
                top = top[top["rank"] <= 2 * depth]  # room for the positives among them
                out.writelines(f"{q}\t{d}\n" for q, d in zip(top["qid"], top["docno"]))
    return directory


def _docpairs_chunks(negatives: Negatives, chunks: list[pd.DataFrame], depth: int, directory: Path) -> None:
    """One streamed pass over the docpairs: each training query's first negatives (up to twice
    ``depth`` pairs, de-duplicated when the lists are built) appended to its chunk's file."""
    chunk_of = {qid: n for n, chunk in enumerate(chunks) for qid in chunk["qid"]}
    taken: dict[str, int] = {}
    work = directory / f".docpairs.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    buffers: dict[int, list[str]] = {}
    pending = 0

    def flush() -> None:
        for number, lines in buffers.items():
            with open(_chunk_path(work, number), "a", encoding="utf-8") as out:
                out.writelines(lines)
        buffers.clear()

    try:
        for pair in negatives.docpairs.docpairs_iter():
            qid = str(pair.query_id)
            number = chunk_of.get(qid)
            if number is None or taken.get(qid, 0) >= 2 * depth:
                continue
            taken[qid] = taken.get(qid, 0) + 1
            buffers.setdefault(number, []).append(f"{qid}\t{pair.doc_id_b}\n")
            pending += 1
            if pending >= 100_000:
                flush()
                pending = 0
        flush()
    except WorkbenchError:
        raise
    except Exception as error:  # noqa: BLE001 - a download or a loader's failure: one line
        shutil.rmtree(work, ignore_errors=True)
        raise WorkbenchError(f"cannot read the docpairs of {negatives.spec!r} ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''}); with internet ir_datasets "
                             "downloads them on first use") from None
    for number in range(len(chunks)):
        source = _chunk_path(work, number)
        if not source.is_file():
            source.write_text("", encoding="utf-8")
        os.replace(source, _chunk_path(directory, number))
    shutil.rmtree(work, ignore_errors=True)


def read_candidates(path: Path) -> dict[str, list[str]]:
    """``qid -> docnos`` (best first, without repeats) of one chunk file."""
    found: dict[str, list[str]] = {}
    for _, line in text_lines(path):
        qid, _, docno = line.partition("\t")
        docnos = found.setdefault(qid, [])
        if docno not in docnos:
            docnos.append(docno)
    return found


# ---------------------------------------------------------------------------- lists

def _forget(collection: Any) -> None:
    """Drop the texts a lazy collection kept (a shard's texts are on disk now)."""
    texts = getattr(collection, "_texts", None)
    if isinstance(collection, LazyTexts) and isinstance(texts, dict):
        texts.clear()


def _texts(collection: Any, docnos: list[str]) -> tuple[list[str], list[str]]:
    """The docnos found in the collection and their texts (absent documents are skipped)."""
    try:
        return docnos, collection.texts_for(docnos)
    except WorkbenchError:
        kept = [d for d in docnos if d in collection]
        return kept, collection.texts_for(kept)


def build_list(source: str, qid: str, query: str, grades: dict[str, float], candidates: list[str], depth: int,
               collection: Any, negatives_only: bool = True) -> RankingList | None:
    """One list: the positive passages, then up to ``depth`` candidates (``negatives_only``: those
    not judged positive), labelled with the grades (unjudged: 0)."""
    positives = [d for d, g in grades.items() if g > 0]
    if negatives_only:
        ranked = [d for d in candidates if grades.get(d, 0.0) <= 0][:depth]
        docnos = positives + ranked
    else:
        docnos = candidates[:depth]
        docnos += [d for d in positives if d not in docnos]
    docnos, passages = _texts(collection, docnos)
    if not docnos:
        return None
    labels = np.array([grades.get(d, 0.0) for d in docnos], dtype=np.float32)
    return RankingList(source, qid, query, docnos, passages, labels)


def _grades(qrels: pd.DataFrame, qids: set[str]) -> dict[str, dict[str, float]]:
    rows = qrels[qrels["qid"].isin(qids)]
    grades: dict[str, dict[str, float]] = {}
    for qid, docno, label in rows[["qid", "docno", "label"]].itertuples(index=False):
        grades.setdefault(qid, {})[docno] = float(label)
    return grades


def _list_record(lst: RankingList) -> str:
    return json.dumps({"source": lst.source, "qid": lst.qid, "query": lst.query, "docnos": lst.docnos,
                       "passages": lst.passages, "labels": [float(x) for x in lst.labels]}) + "\n"


def _from_record(line: str) -> RankingList:
    row = json.loads(line)
    return RankingList(row["source"], row["qid"], row["query"], row["docnos"], row["passages"],
                       np.asarray(row["labels"], dtype=np.float32))


def build_shards(dataset: Dataset, queries: pd.DataFrame, candidates: Path, depth: int, held_out: set[str],
                 collection_id: str) -> tuple[Path, list[RankingList]]:
    """The training lists of ``dataset`` as shards (one per candidate chunk; resumable), and the
    held-out queries' lists (in memory)."""
    key = fingerprint(VERSION, "lists", str(candidates.name), collection_id, depth, sorted(held_out))
    directory = cache_dir("train-sources", "lists", key[:24])
    collection = dataset.collection()
    validation: list[RankingList] = []
    chunks = _chunks(queries)
    manifest = directory / "manifest.json"
    for number, chunk in enumerate(chunks):
        shard = directory / f"shard-{number:05d}.jsonl"
        wanted = set(chunk["qid"]) & held_out
        if shard.is_file() and not wanted:
            continue
        found = read_candidates(_chunk_path(candidates, number))
        grades = _grades(dataset.qrels, set(chunk["qid"]))
        lists = []
        for qid, query in chunk[["qid", "query"]].itertuples(index=False):
            if shard.is_file() and qid not in held_out:
                continue
            built = build_list(dataset.name, qid, query, grades.get(qid, {}), found.get(qid, []), depth, collection)
            if built is None:
                continue
            (validation if qid in held_out else lists).append(built)
        if not shard.is_file():
            with atomic_write(directory / f"queries-{number:05d}.jsonl") as out:
                out.writelines(json.dumps([lst.source, lst.qid, lst.query]) + "\n" for lst in lists)
            with atomic_write(shard) as out:  # last: a shard file means the shard is done
                out.writelines(_list_record(lst) for lst in lists)
        _forget(collection)
    if not manifest.is_file():
        counts = [sum(1 for _ in text_lines(directory / f"shard-{n:05d}.jsonl")) for n in range(len(chunks))]
        with atomic_write(manifest) as out:
            json.dump({"source": dataset.name, "shards": [f"shard-{n:05d}.jsonl" for n in range(len(chunks))],
                       "counts": counts, "depth": depth}, out, indent=1)
    return directory, validation


class ShardedLists(Sequence[RankingList]):
    """Training lists read from shard files (``manifest.json`` per directory), a shard at a time:
    ``len``, index access, iteration, :meth:`epoch_order` and :meth:`records` (queries only)."""

    def __init__(self, directories: Sequence[str | Path]):
        self.shards: list[Path] = []
        counts: list[int] = []
        for directory in map(Path, directories):
            manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
            self.shards += [directory / name for name in manifest["shards"]]
            counts += manifest["counts"]
        self.counts = np.asarray(counts, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self._cache: OrderedDict[int, list[RankingList]] = OrderedDict()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _shard(self, number: int) -> list[RankingList]:
        if number in self._cache:
            self._cache.move_to_end(number)
        else:
            self._cache[number] = [_from_record(line) for _, line in text_lines(self.shards[number])]
            while len(self._cache) > SHARDS_IN_MEMORY:
                self._cache.popitem(last=False)
        return self._cache[number]

    def __getitem__(self, index: int) -> RankingList:  # type: ignore[override]
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        number = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self._shard(number)[index - int(self.offsets[number])]

    def __iter__(self) -> Iterator[RankingList]:
        for number in range(len(self.shards)):
            yield from self._shard(number)

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """The lists' order for one epoch: the shards shuffled, and the lists within each (so a
        pass reads every shard once)."""
        rng = np.random.default_rng([seed, epoch])
        return np.concatenate([self.offsets[n] + rng.permutation(int(self.counts[n]))
                               for n in rng.permutation(len(self.shards))] or [np.zeros(0, dtype=np.int64)])

    def records(self) -> Iterator[tuple[str, str, str]]:
        """``(dataset, qid, text)`` of every list, from the queries files (no passages read)."""
        for shard in self.shards:
            queries = shard.with_name(shard.name.replace("shard-", "queries-"))
            for _, line in text_lines(queries):
                source, qid, query = json.loads(line)
                yield source, qid, query


# ---------------------------------------------------------------------------- validation and leakage

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
    grades = _grades(dataset.qrels, set(sample["qid"]))
    lists = []
    for number, chunk in enumerate(_chunks(sample)):
        found = read_candidates(_chunk_path(candidates, number))
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
        collection_id = str(getattr(_collection_or_none(dataset), "fingerprint", dataset.collection_key))
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
