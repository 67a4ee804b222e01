"""``workbench similarity``: the cosine of each sentence pair of a TSV file, and pass/fail
against expected values.

The file has a header and one pair per line: ``name<TAB>a<TAB>b`` and optionally a fourth
column ``expected`` (the cosine another implementation gives). Expected values can instead be
computed live with ``reference="sentence-transformers"`` (``SentenceTransformer.encode`` on the
same model). Low-similarity pairs are the ones that expose a broken pooling: a mean that counts
padding lifts unrelated sentences while near-paraphrases barely move.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import WorkbenchError
from ..core.files import text_lines
from .embed import embedder, model_path

REFERENCES = ("sentence-transformers",)


@dataclass(frozen=True)
class SentencePair:
    name: str
    a: str
    b: str
    expected: float | None = None


def read_pairs(path: str | Path) -> list[SentencePair]:
    """Pairs from a TSV with a ``name, a, b[, expected]`` header; errors name the file and line."""
    lines = list(text_lines(path))
    if not lines:
        raise WorkbenchError("no sentence pairs: the file is empty", path)
    number, header = lines[0]
    columns = [c.strip().lower() for c in header.split("\t")]
    if columns[:3] != ["name", "a", "b"] or len(columns) > 4 or (len(columns) == 4 and columns[3] != "expected"):
        raise WorkbenchError("expected a header 'name<TAB>a<TAB>b' (and optionally '<TAB>expected')", path, number)
    pairs, names = [], set()
    for number, line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise WorkbenchError(f"expected {len(columns)} tab-separated fields, found {len(fields)}", path, number)
        name, a, b = (f.strip() for f in fields[:3])
        if not name or not a or not b:
            raise WorkbenchError("empty name or sentence", path, number)
        if name in names:
            raise WorkbenchError(f"duplicate pair name {name!r}", path, number)
        names.add(name)
        expected = None
        if len(fields) == 4 and fields[3].strip():
            try:
                expected = float(fields[3])
            except ValueError:
                raise WorkbenchError(f"expected value {fields[3]!r} is not a number", path, number) from None
        pairs.append(SentencePair(name, a, b, expected))
    if not pairs:
        raise WorkbenchError("no sentence pairs after the header", path)
    return pairs


def cosines(vectors_a: np.ndarray, vectors_b: np.ndarray) -> np.ndarray:
    a = vectors_a / np.maximum(np.linalg.norm(vectors_a, axis=1, keepdims=True), 1e-12)
    b = vectors_b / np.maximum(np.linalg.norm(vectors_b, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64))


def reference_cosines(pairs: list[SentencePair], model: str | os.PathLike, reference: str) -> np.ndarray:
    """Cosines from another implementation (``sentence-transformers``: ``SentenceTransformer.encode``)."""
    if reference not in REFERENCES:
        raise WorkbenchError(f"unknown reference {reference!r}; references: {', '.join(REFERENCES)}")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise WorkbenchError("the sentence-transformers reference needs the package: pip install "
                             "sentence-transformers") from None
    st = SentenceTransformer(model_path(model), device="cpu", local_files_only=True)
    return cosines(st.encode([p.a for p in pairs], show_progress_bar=False),
                   st.encode([p.b for p in pairs], show_progress_bar=False))


def check_pairs(pairs: list[SentencePair], model: str | os.PathLike, pooling: str = "masked_mean",
                tolerance: float = 1e-5, reference: str | None = None, **options: Any) -> pd.DataFrame:
    """``name, a, b, cosine, expected, difference, ok`` per pair (``ok`` None where nothing is
    expected); ``options`` go to the embedder (``pad_to``, ``normalize``, ``max_length``, ...)."""
    loaded = embedder(model, **options)
    ours = cosines(loaded.embed([p.a for p in pairs], pooling), loaded.embed([p.b for p in pairs], pooling))
    expected = (reference_cosines(pairs, model, reference) if reference
                else np.array([np.nan if p.expected is None else p.expected for p in pairs]))
    table = pd.DataFrame({"name": [p.name for p in pairs], "a": [p.a for p in pairs], "b": [p.b for p in pairs],
                          "cosine": ours, "expected": expected})
    table["difference"] = table["cosine"] - table["expected"]
    table["ok"] = [None if np.isnan(e) else bool(abs(d) <= tolerance)
                   for e, d in zip(table["expected"], table["difference"])]
    return table
