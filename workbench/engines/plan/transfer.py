"""Data moved per item, estimated on the real data: what a worker is sent and sends back for a
reranking pair, an encoded passage and a BM25 query (:class:`~.arithmetic.Transfer`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...data.datasets import get_dataset
from ...data.trec import read_run
from .arithmetic import BM25_DEPTH, Transfer
from .measure import load_encoder
from .samples import collection_of, collection_sample, data_root

#: passages whose encoder output is measured for a passage's bytes back
OUTPUT_SAMPLE_PASSAGES = 64

#: bytes of one result: a float64 score, a float32 vector component, a sparse (int32 id, float32) entry
SCORE_BYTES = 8
VECTOR_VALUE_BYTES = 4
SPARSE_ENTRY_BYTES = 8


def mean_bytes(texts: Iterable[str]) -> float:
    """Mean UTF-8 length of ``texts`` (0 when there are none)."""
    lengths = [len(text.encode("utf-8")) for text in texts]
    return float(np.mean(lengths)) if lengths else 0.0


def pair_transfer(data_dir: str | Path | None = None) -> Transfer:
    """A pair: query text + passage text in (UTF-8, the mean over every DL19 official-BM25
    candidate), an 8-byte score back."""
    root = data_root(data_dir)
    dataset = get_dataset("dl19", root)
    run = read_run(dataset.official_run_path("bm25"))
    texts = dict(zip(dataset.topics["qid"], dataset.topics["query"]))
    run = run[run["qid"].isin(set(texts))]
    collection = collection_of(root)
    bytes_in = mean_bytes(texts[q] for q in run["qid"]) + mean_bytes(collection.texts_for(run["docno"]))
    return Transfer("rerank", bytes_in, SCORE_BYTES,
                    f"pair: query + passage text in (mean over {len(run):,} DL19 official-BM25 pairs), "
                    f"{SCORE_BYTES}-byte score back")


def output_bytes(output: Any) -> float:
    """Mean bytes of one encoder output row: dense ``dim * 4`` (float32), sparse ``nnz * 8``
    (int32 term id + float32 weight)."""
    rows = output.shape[0]
    if not rows:
        return 0.0
    if hasattr(output, "nnz"):  # scipy sparse (SPLADE)
        return output.nnz * SPARSE_ENTRY_BYTES / rows
    return float(output.shape[1] * VECTOR_VALUE_BYTES)


def encode_transfer(spec: str, data_dir: str | Path | None = None, sample_passages: int = OUTPUT_SAMPLE_PASSAGES,
                    threads: int | None = None) -> Transfer:
    """A passage: its text in (mean over the whole collection), its encoder output back (measured
    on ``sample_passages`` random passages, encoded on the CPU)."""
    from ...models.devices import torch_threads

    root = data_root(data_dir)
    collection = collection_of(root)
    encoder, loaded = load_encoder(spec, "cpu", threads, root)
    with torch_threads(loaded.threads):
        output = encoder.encode_passages_uncached(collection_sample(root, sample_passages, seed=2))
    back = output_bytes(output)
    kind = (f"sparse: mean {back / SPARSE_ENTRY_BYTES:,.0f} non-zero terms x {SPARSE_ENTRY_BYTES} B"
            if hasattr(output, "nnz") else f"dense: {output.shape[1]} x float32")
    return Transfer("encode", mean_bytes(collection.texts.values()), back,
                    f"passage: text in (mean over the {len(collection):,} collection passages), vector back "
                    f"({kind}, {sample_passages} passages)")


def bm25_transfer(data_dir: str | Path | None = None, k: int = BM25_DEPTH) -> Transfer:
    """A query: its text in (mean over dev-small), ``k`` (docno, 8-byte score) back; the docno
    length is the mean over the collection's passage ids."""
    root = data_root(data_dir)
    topics = get_dataset("dev-small", root).topics
    docno = mean_bytes(collection_of(root).texts.keys())
    return Transfer("bm25", mean_bytes(topics["query"]), k * (docno + SCORE_BYTES),
                    f"query: text in (mean over {len(topics):,} dev-small queries), {k} x (docno of mean "
                    f"{docno:.1f} B + {SCORE_BYTES}-byte score) back")
