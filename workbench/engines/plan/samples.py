"""The real data a plan measures on: DL19 official-BM25 reranking pairs and random collection
passages of the data directory (the collection read once per process)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ...core.errors import WorkbenchError
from ...data.collection import Collection
from ...data.datasets import get_dataset, resolve_data_dir
from ...data.trec import read_run

#: pairs (and passages) timed per measurement
SAMPLE_PAIRS = 256
PAIRS_PER_QUERY = 64        # candidates per query in the reranking sample (a real list has 1,000)


@functools.lru_cache(maxsize=4)
def _collection(path: str) -> Collection:
    return Collection(path)


def data_root(data_dir: str | Path | None) -> Path:
    """The data directory (``$WORKBENCH_DATA`` or the default when None)."""
    return resolve_data_dir(data_dir)


def collection_of(root: Path) -> Collection:
    """The data directory's collection, read once per process."""
    return _collection(str(root / "collection.tsv"))


def candidate_pairs(data_dir: str | Path | None = None, pairs: int = SAMPLE_PAIRS,
                    per_query: int = PAIRS_PER_QUERY, seed: int = 0) -> tuple[list[str], list[str]]:
    """(queries, passages) of ``pairs`` real reranking pairs: ``per_query`` candidates at random
    ranks of the DL19 official BM25 top-1000 of each of a seeded random choice of queries."""
    root = data_root(data_dir)
    dataset = get_dataset("dl19", root)
    run = read_run(dataset.official_run_path("bm25"))
    texts = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    collection = collection_of(root)
    rng = np.random.default_rng(seed)
    groups = {qid: group["docno"].tolist() for qid, group in run.groupby("qid", sort=True) if qid in texts}
    order = rng.permutation(sorted(groups))
    queries: list[str] = []
    docnos: list[str] = []
    for qid in order:
        if len(docnos) >= pairs:
            break
        candidates = groups[qid]
        take = min(per_query, len(candidates), pairs - len(docnos))
        for position in np.sort(rng.choice(len(candidates), size=take, replace=False)):
            queries.append(texts[qid])
            docnos.append(candidates[position])
    if len(docnos) < pairs:
        raise WorkbenchError(f"the DL19 official BM25 run has only {len(docnos)} pairs; asked for {pairs}")
    return queries, collection.texts_for(docnos)


def collection_sample(data_dir: str | Path | None = None, passages: int = SAMPLE_PAIRS,
                      seed: int = 0) -> list[str]:
    """``passages`` collection passages chosen at random (seeded)."""
    texts = list(collection_of(data_root(data_dir)).texts.values())
    if passages > len(texts):
        raise WorkbenchError(f"the collection has {len(texts)} passages; asked for {passages}")
    chosen = np.random.default_rng(seed).choice(len(texts), size=passages, replace=False)
    return [texts[i] for i in chosen]
