"""Where a training source's negatives come from, computed once: :class:`Negatives` reads a
configuration's ``negatives`` spec (``irds:<id>`` docpairs, a first stage spec, or the dataset's
own candidate run), and :func:`compute_candidates` writes each training query's candidates under
the cache as ``train-sources/candidates/<key>/chunk-NNNNN.tsv`` (``qid<TAB>docno``, best first): up
to twice ``negatives_depth`` candidates of :data:`CHUNK_QUERIES` queries each, keyed by what
determines them and written atomically. A first stage searches one chunk at a time, so an
interrupted run resumes at the first missing chunk; docpairs are read in one streamed pass (their
file is one sequence) and their chunks published at its end. :func:`read_candidates` reads a chunk back.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError, first_line
from ..core.files import atomic_write, sha256_file, text_lines
from ..data.datasets import IRDS_PREFIX, Dataset
from ..data.trec import sort_run

#: training queries per candidate chunk and per list shard
CHUNK_QUERIES = 2000
VERSION = "train-sources/v1"


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
            from importlib.metadata import version

            from ..data.irds_loading import load_irds

            irds_id = spec[len(IRDS_PREFIX):]
            try:
                self.docpairs = load_irds(irds_id)
            except WorkbenchError as error:
                raise WorkbenchError(f"unknown negatives source {spec!r}: {error}") from None
            if not self.docpairs.has_docpairs():
                raise WorkbenchError(f"negatives source {spec!r} has no docpairs (e.g. "
                                     "irds:msmarco-passage/train/triples-small)")
            self.identity = {"docpairs": irds_id, "ir_datasets": version("ir_datasets")}
        else:
            from ..first_stage import StageContext, get_first_stage

            try:
                self.stage = get_first_stage(spec, StageContext(collection=collection_or_none(dataset),
                                                                dataset=dataset, progress=False))
            except WorkbenchError as error:
                raise WorkbenchError(f"unknown negatives source {spec!r} (irds:<id with docpairs> or a first stage): "
                                     f"{error}") from None
            self.identity = {"first_stage": self.stage.run_config(sha256_file(dataset.topics_path))}


def collection_or_none(dataset: Dataset) -> Any:
    """The dataset's collection, None when it has none."""
    try:
        return dataset.collection()
    except WorkbenchError:
        return None


def query_chunks(queries: pd.DataFrame) -> list[pd.DataFrame]:
    """``queries`` in chunks of :data:`CHUNK_QUERIES` (one chunk, perhaps empty, at least)."""
    return [queries.iloc[i:i + CHUNK_QUERIES] for i in range(0, len(queries), CHUNK_QUERIES)] or [queries]


def chunk_path(directory: Path, number: int) -> Path:
    """The candidate file of chunk ``number``."""
    return directory / f"chunk-{number:05d}.tsv"


def compute_candidates(negatives: Negatives, queries: pd.DataFrame, depth: int, progress: bool = False) -> Path:
    """The negatives of ``queries`` as chunk files under the cache (computed once; resumable)."""
    key = fingerprint(VERSION, "candidates", negatives.identity, list(queries["qid"]), depth, CHUNK_QUERIES)
    directory = cache_dir("train-sources", "candidates", key[:24])
    chunks = query_chunks(queries)
    if negatives.docpairs is not None:
        if not all(chunk_path(directory, n).is_file() for n in range(len(chunks))):
            _docpairs_chunks(negatives, chunks, depth, directory)
        return directory
    for number, chunk in enumerate(chunks):
        path = chunk_path(directory, number)
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
            with open(chunk_path(work, number), "a", encoding="utf-8") as out:
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
                             f"{first_line(error)}); with internet ir_datasets downloads them on first use") from None
    for number in range(len(chunks)):
        source = chunk_path(work, number)
        if not source.is_file():
            source.write_text("", encoding="utf-8")
        os.replace(source, chunk_path(directory, number))
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
