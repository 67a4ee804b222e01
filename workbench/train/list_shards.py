"""Training lists built from candidates and kept on disk: :func:`build_list` makes one labelled
list (the judged-positive passages, then the candidates, graded by the qrels; unjudged: 0), and
:func:`build_shards` writes a source's lists under the cache as
``train-sources/lists/<key>/shard-NNNNN.jsonl`` (one list a line) with ``queries-NNNNN.jsonl`` (its
queries), one shard per candidate chunk, written atomically (an interrupted run resumes at the first
missing shard), then ``manifest.json``. :class:`ShardedLists` gives the trainer the lists lazily
(``len``, index access, a per-epoch order that shuffles the shards and the lists within each),
holding at most :data:`SHARDS_IN_MEMORY` shards decoded at once.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write, text_lines
from ..data.collection import LazyTexts
from ..data.datasets import Dataset
from .candidates import VERSION, chunk_path, query_chunks, read_candidates
from .data import RankingList

#: shards :class:`ShardedLists` keeps decoded at once
SHARDS_IN_MEMORY = 2


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


def qrels_grades(qrels: pd.DataFrame, qids: set[str]) -> dict[str, dict[str, float]]:
    """``qid -> docno -> grade`` of the queries ``qids``."""
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
    chunks = query_chunks(queries)
    manifest = directory / "manifest.json"
    for number, chunk in enumerate(chunks):
        shard = directory / f"shard-{number:05d}.jsonl"
        wanted = set(chunk["qid"]) & held_out
        if shard.is_file() and not wanted:
            continue
        found = read_candidates(chunk_path(candidates, number))
        grades = qrels_grades(dataset.qrels, set(chunk["qid"]))
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

