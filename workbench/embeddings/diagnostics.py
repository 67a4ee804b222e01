"""Embedding diagnostics on a dataset's judged pairs: does this model's cosine mean anything?

For each (model, pooling[, post-processing]) *row*, on the judged queries of a dataset and the
passages judged for them:

* **range**: min / mean / max off-diagonal cosine over a sample of queries and passages;
* **anisotropy**: mean cosine of random passage pairs (a narrow cone: high), and the share of
  the variance in the top principal component;
* **relevance**: mean cosine of relevant (grade >= the dataset's relevance level) vs
  non-relevant (grade 0) query-passage pairs, their gap, the gap in pooled standard deviations
  (comparable across anisotropy levels), and the AUC of cosine as a relevance classifier
  (over all pairs, and the mean of the per-query AUCs);
* **groups**: within- vs between-group mean cosine and their ratio (and difference) for queries
  grouped by query type and for passages grouped by the one query they are relevant to;
* **nearest neighbours** of a few sample queries among the judged passages.

The failures it catches: first-token pooling on an encoder without [CLS] (every vector alike:
range collapses to ~1, AUC near 0.5), mean pooling that counts padding (unrelated pairs lifted),
and anisotropy (cosines compressed; centering or whitening spreads them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..analysis.query_types import load_query_types
from ..core.errors import WorkbenchError
from ..data.collection import Collection
from ..data.datasets import Dataset
from ..data.leakage import check_no_leakage
from ..models.ranker import models_root, read_ranker_meta
from ..models.whitening import Whitening, fit_on_collection
from .embed import Embedder, model_label

RANDOM_PAIRS = 20_000
RANGE_SAMPLE = 1_000
GROUP_QUERIES = 8  # passage groups drawn in the projections


@dataclass
class JudgedSet:
    """The judged queries of a dataset, the passages judged for them, and the judged pairs."""

    dataset: str
    relevance_level: int
    qids: list[str]
    queries: list[str]
    query_types: list[str]
    docnos: list[str]
    passages: list[str]
    pairs: pd.DataFrame  # query (row in qids), passage (row in docnos), label

    def relevant_groups(self) -> np.ndarray:
        """Per passage: the query it is relevant to when exactly one, else -1."""
        relevant = self.pairs[self.pairs["label"] >= self.relevance_level]
        counts = relevant.groupby("passage")["query"].agg(["count", "first"])
        group = np.full(len(self.docnos), -1)
        single = counts[counts["count"] == 1]
        group[single.index.to_numpy()] = single["first"].to_numpy()
        return group


def judged_set(dataset: Dataset, collection: Collection | None = None, limit_queries: int | None = None,
               seed: int = 0) -> JudgedSet:
    """The judged queries (all, or a seeded sample of ``limit_queries``) and their judged passages."""
    collection = collection or Collection(dataset.collection_path)
    topics = dataset.judged_topics
    if limit_queries is not None and limit_queries < len(topics):
        topics = topics.sample(n=limit_queries, random_state=seed).sort_values("qid")
    if topics.empty:
        raise WorkbenchError(f"dataset {dataset.name!r} has no judged queries to diagnose")
    types = load_query_types(dataset).set_index("qid")["label"]
    qids = [str(q) for q in topics["qid"]]
    qrels = dataset.qrels[dataset.qrels["qid"].isin(qids) & dataset.qrels["docno"].isin(collection.texts.keys())]
    docnos = sorted(set(qrels["docno"]))
    query_row = {q: i for i, q in enumerate(qids)}
    passage_row = {d: i for i, d in enumerate(docnos)}
    pairs = pd.DataFrame({"query": qrels["qid"].map(query_row).to_numpy(),
                          "passage": qrels["docno"].map(passage_row).to_numpy(),
                          "label": qrels["label"].to_numpy()})
    return JudgedSet(dataset.name, dataset.relevance_level, qids, [str(q) for q in topics["query"]],
                     [str(types.get(q, "")) for q in qids], docnos, collection.texts_for(docnos), pairs)


@dataclass
class Embedded:
    """One row's vectors (unit length) and the distributions drawn in the plots."""

    model: str
    pooling: str
    postprocess: str
    queries: np.ndarray
    passages: np.ndarray
    distributions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} {self.pooling}" + (f"+{self.postprocess}" if self.postprocess else "")


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _within_between(vectors: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean cosine of pairs in the same group and in different groups (ungrouped rows: -1, left out)."""
    keep = groups >= 0
    vectors, groups = vectors[keep], groups[keep]
    if len(vectors) < 2:
        return float("nan"), float("nan")
    cosines = vectors @ vectors.T
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(len(vectors), dtype=bool)
    within = cosines[same & off]
    between = cosines[~same]
    return (float(within.mean()) if within.size else float("nan"),
            float(between.mean()) if between.size else float("nan"))


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a relevant pair scores above a non-relevant one), ties counted half (Mann-Whitney)."""
    if not len(positive) or not len(negative):
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))


def measure(row: Embedded, judged: JudgedSet, seed: int = 0) -> dict[str, Any]:
    """The diagnostics of one row (see the module docstring); fills ``row.distributions``."""
    rng = np.random.default_rng(seed)
    queries, passages = unit(row.queries), unit(row.passages)
    # range over a sample of items
    items = np.concatenate([queries, passages[rng.permutation(len(passages))[:RANGE_SAMPLE]]])
    cosines = items @ items.T
    off = cosines[~np.eye(len(items), dtype=bool)]
    # anisotropy
    first, second = rng.integers(0, len(passages), (2, RANDOM_PAIRS))
    distinct = first != second
    random_pairs = np.einsum("ij,ij->i", passages[first[distinct]], passages[second[distinct]])
    variances = np.linalg.eigvalsh(np.cov(passages, rowvar=False))
    # relevance
    pairs = judged.pairs
    pair_cosines = np.einsum("ij,ij->i", queries[pairs["query"].to_numpy()], passages[pairs["passage"].to_numpy()])
    is_positive = (pairs["label"] >= judged.relevance_level).to_numpy()
    is_negative = (pairs["label"] <= 0).to_numpy()
    positive, negative = pair_cosines[is_positive], pair_cosines[is_negative]
    pooled_sd = float(np.sqrt((positive.var() + negative.var()) / 2)) if len(positive) and len(negative) else np.nan
    per_query = [_auc(pair_cosines[is_positive & (pairs["query"] == q).to_numpy()],
                      pair_cosines[is_negative & (pairs["query"] == q).to_numpy()]) for q in range(len(judged.qids))]
    per_query = [a for a in per_query if not np.isnan(a)]
    # groups
    type_codes = pd.factorize(pd.Series(judged.query_types))[0]
    type_within, type_between = _within_between(queries, type_codes)
    passage_within, passage_between = _within_between(passages, judged.relevant_groups())
    row.distributions = {"random pairs": random_pairs, "relevant": positive, "non-relevant": negative}
    gap = float(positive.mean() - negative.mean()) if len(positive) and len(negative) else float("nan")
    return {
        "model": row.model, "pooling": row.pooling, "postprocess": row.postprocess or "none",
        "dim": int(row.queries.shape[1]),
        "sim_min": float(off.min()), "sim_mean": float(off.mean()), "sim_max": float(off.max()),
        "random_pair_cos": float(random_pairs.mean()), "pc1_share": float(variances[-1] / variances.sum()),
        "relevant_cos": float(positive.mean()) if len(positive) else float("nan"),
        "nonrelevant_cos": float(negative.mean()) if len(negative) else float("nan"),
        "gap": gap, "gap_sd": gap / pooled_sd if pooled_sd else float("nan"),
        "auc": _auc(positive, negative), "query_auc": float(np.mean(per_query)) if per_query else float("nan"),
        "qtype_within": type_within, "qtype_between": type_between,
        "qtype_ratio": type_within / type_between if type_between else float("nan"),
        "qtype_diff": type_within - type_between,
        "passage_within": passage_within, "passage_between": passage_between,
        "passage_ratio": passage_within / passage_between if passage_between else float("nan"),
        "passage_diff": passage_within - passage_between,
        "relevant_pairs": int(is_positive.sum()), "nonrelevant_pairs": int(is_negative.sum()),
    }


def nearest_neighbours(row: Embedded, judged: JudgedSet, queries: int = 3, k: int = 3, seed: int = 0
                       ) -> list[dict[str, Any]]:
    """For a few seeded sample queries: their ``k`` nearest judged passages and those passages' grades."""
    grades = {(q, p): int(g) for q, p, g in judged.pairs[["query", "passage", "label"]].itertuples(index=False)}
    chosen = np.random.default_rng(seed).permutation(len(judged.qids))[:queries]
    passages = unit(row.passages)
    found = []
    for q in sorted(chosen):
        cosines = passages @ unit(row.queries[q:q + 1])[0]
        top = np.argsort(-cosines, kind="stable")[:k]
        found.append({"qid": judged.qids[q], "query": judged.queries[q], "neighbours": [
            {"docno": judged.docnos[p], "cosine": round(float(cosines[p]), 4),
             "grade": grades.get((q, int(p))), "text": judged.passages[p][:160]} for p in top]})
    return found


# ------------------------------------------------------------------ which model, which vectors

def resolve_model(model: str, dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """A model name as the diagnostics take it, and the encoder settings it implies:
    ``finetuned:<name>`` is the fold model that never saw ``dataset``'s queries (leakage checked),
    at the max length it was trained with; anything else goes to :func:`~.embed.model_path`."""
    if not model.startswith("finetuned:"):
        return model, {}
    name = model.split(":", 1)[1]
    directory = models_root() / name / dataset.name / "model"
    meta = read_ranker_meta(directory) if directory.is_dir() else None
    if meta is None:
        raise WorkbenchError(f"no fold model of {name!r} for {dataset.name} (train it: workbench train)", directory)
    if meta.get("kind") != "bi-encoder":
        raise WorkbenchError(f"{model} is a {meta.get('kind')} ranker, not a bi-encoder: it has no embeddings",
                             directory)
    check_no_leakage(directory, dataset)
    return str(directory), {"max_length": meta.get("max_length")}


def embed_rows(model: str, judged: JudgedSet, dataset: Dataset, poolings: Sequence[str],
               whiten: Sequence[str] = (), fit_sample: int | None = None, collection: Collection | None = None,
               progress: bool = True, **options: Any) -> list[Embedded]:
    """The rows of one model: one per pooling, plus one per whitening (fitted on the collection's
    passages, under the model's own pooling)."""
    path, implied = resolve_model(model, dataset)
    embedder = Embedder(path, **{**options, **{k: v for k, v in implied.items() if options.get(k) is None}})
    label = model.split(":", 1)[1] if model.startswith("finetuned:") else model_label(model)
    queries = embedder.embed_poolings(judged.queries, poolings, progress=progress, desc=f"{label} queries")
    passages = embedder.embed_poolings(judged.passages, poolings, progress=progress, desc=f"{label} passages")
    pad_to = options.get("pad_to")
    # only mean pooling sees the padding: its row says how long every text was padded
    rows = [Embedded(label, f"mean-pad{pad_to}" if p == "mean" and pad_to else p, "", queries[p], passages[p])
            for p in queries]
    if whiten:
        encoder = embedder.encoder  # its own pooling: the one the collection's vectors are cached under
        collection = collection or Collection(dataset.collection_path)
        texts = list(collection.texts.values())
        if fit_sample is not None and fit_sample < len(texts):
            texts = [texts[i] for i in sorted(np.random.default_rng(0).permutation(len(texts))[:fit_sample])]
        own_queries = encoder.encode_queries(judged.queries)
        own_passages = encoder.encode_passages(judged.passages)
        for kind in whiten:
            whitening: Whitening = fit_on_collection(
                lambda batch: encoder.encode_passages(batch, progress=progress, desc=f"{label} collection"),
                texts, {"encoder": encoder.fingerprint, "collection": collection.fingerprint,
                        "sample": fit_sample}, kind)
            rows.append(Embedded(label, encoder.pooling, kind, whitening.apply(own_queries),
                                 whitening.apply(own_passages)))
    return rows
