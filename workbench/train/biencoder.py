"""The bi-encoder as a list ranker: score = scale x cosine (or dot product) of the query's and the
passage's vectors, encoded apart by one sentence-transformers body.

:class:`BiEncoderRanker` has the interface the list trainer (:class:`~workbench.train.trainer.Trainer`)
trains every architecture through (``parameter_groups``, ``save``), plus ``embed`` and ``scores``:
the trainer encodes a batch's queries and sampled candidates, takes the ``[B, N]`` score matrix, and
applies any list loss to each query's own candidates, or InfoNCE (``loss = "infonce"``) to the whole
row: the query's own candidates plus every other list's candidates of the batch as in-batch
negatives (van den Oord et al., 2018; Karpukhin et al., 2020). One loop, whatever the architecture.

``score = scale * cos(q, p) + bias``: ``scale`` (1 / temperature; 20 as all-MiniLM-L6-v2 was trained
with) makes softmax losses sharp enough to learn from cosines in [-1, 1]; the learnt ``bias`` only
matters to the pointwise loss (every other loss is invariant to a shift of a list's scores), so that
BCE can put a passage at 0.5 without moving cosines below 0. Ranking uses the cosine alone.

The saved fold model is a sentence-transformers directory (masked mean + Normalize for
all-MiniLM-L6-v2) with ``ranker.json`` of kind ``bi-encoder``: ``finetuned:<name>`` reranks with it
and ``dense-mini:encoder=finetuned:<name>`` retrieves with it.

:func:`contrastive_examples` draws sentence-transformers style ``(query, positive, negatives)``
examples from the same lists; ``make bench`` trains with them through ``SentenceTransformerTrainer``
as the reference the list trainer's throughput is compared with.
"""
from __future__ import annotations

import contextlib
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.errors import WorkbenchError
from ..data.datasets import relevance_level_of
from ..models.hub import quiet_transformers
from ..models.ranker import RANKER_FILE
from .data import RankingList

#: sentence-transformers' pooling modes -> the DenseEncoder's names (the reranker must pool alike)
ST_POOLINGS = {"mean": "masked_mean", "cls": "cls", "lasttoken": "last"}
SIMILARITIES = ("cosine", "dot")


@dataclass(frozen=True)
class ContrastiveExample:
    """One training example: a query, one of its positives and its hard negatives."""

    source: str
    qid: str
    query: str
    positive: str
    negatives: tuple[str, ...]


def relevance_level(source: str) -> int:
    """The grade from which a candidate of ``source`` counts as relevant (1 for unknown sources)."""
    return relevance_level_of(source)


def contrastive_examples(lists: list[RankingList], max_positives: int = 4, hard_negatives: int = 1,
                         negative_depth: int = 30, seed: int = 0) -> list[ContrastiveExample]:
    """The ``(query, positive, negatives)`` examples of training lists (see the module docstring).

    A query without a positive, or with fewer than ``hard_negatives`` grade-0 candidates, gives
    none. Sampling is seeded per query (by source and id), so a list's examples do not depend on
    which other lists are present.
    """
    examples = []
    for lst in lists:
        rng = np.random.default_rng([seed, zlib.crc32(f"{lst.source}\t{lst.qid}".encode())])
        labels = np.asarray(lst.labels)
        positives = np.flatnonzero(labels >= relevance_level(lst.source))
        # candidates are in BM25 order (relevant passages BM25 missed are appended, never grade 0)
        pool = np.flatnonzero(labels == 0)[:negative_depth]
        if not len(positives) or len(pool) < hard_negatives:
            continue
        # highest grade first, a random order within a grade
        positives = positives[np.lexsort((rng.random(len(positives)), -labels[positives]))][:max_positives]
        drawn = rng.permutation(pool)
        for j, index in enumerate(positives):
            # consecutive slices of one permutation: a query's examples share no negative while the pool lasts
            negatives = tuple(lst.passages[drawn[(j * hard_negatives + t) % len(drawn)]]
                              for t in range(hard_negatives))
            examples.append(ContrastiveExample(lst.source, lst.qid, lst.query, lst.passages[index], negatives))
    return examples


def st_pooling(model: Any) -> tuple[str, bool]:
    """(pooling as the DenseEncoder names it, whether a Normalize module follows) of a SentenceTransformer."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model.children())
    poolings = [m for m in modules if isinstance(m, Pooling)]
    if len(poolings) != 1 or not isinstance(poolings[0].pooling_mode, str) \
            or poolings[0].pooling_mode not in ST_POOLINGS:
        found = [getattr(m, "pooling_mode", None) for m in poolings]
        raise WorkbenchError(f"the bi-encoder backbone needs one mean, cls or lasttoken Pooling module (found {found}) "
                             "so that the dense reranker pools as it was trained")
    return ST_POOLINGS[poolings[0].pooling_mode], any(isinstance(m, Normalize) for m in modules)


def load_biencoder(directory: Path, pooling: str, max_length: int, device: str = "cpu") -> Any:
    """A SentenceTransformer on ``directory``: a sentence-transformers directory keeps its modules
    (all-MiniLM-L6-v2: masked mean + Normalize); a plain transformer gets ``pooling`` + Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if (directory / "modules.json").is_file():
        with _quiet():
            model = SentenceTransformer(str(directory), device=device, local_files_only=True)
        found, _ = st_pooling(model)
        if found != pooling:
            raise WorkbenchError(f"pooling = {pooling!r} disagrees with the backbone's sentence-transformers "
                                 f"pooling ({found!r}); set pooling = {found!r} or use a plain transformer "
                                 "backbone", directory)
    else:
        body = Transformer(str(directory), max_seq_length=max_length,
                           model_kwargs={"local_files_only": True}, processor_kwargs={"local_files_only": True},
                           config_kwargs={"local_files_only": True})
        mode = {"masked_mean": "mean", "cls": "cls"}[pooling]
        model = SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), pooling_mode=mode),
                                             Normalize()], device=device)
    # saved as the tokenizer's model_max_length, which the DenseEncoder reads back
    model.max_seq_length = max_length
    return model


@contextlib.contextmanager
def _quiet() -> Any:
    """transformers' and sentence-transformers' chatter off (a "Writing model shards" bar and a
    "Saving model" line at every checkpoint): the progress bar is the training's one line."""
    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    st_logger.setLevel(logging.WARNING)
    try:
        with quiet_transformers():
            yield
    finally:
        st_logger.setLevel(level)




class BiEncoderRanker(nn.Module):
    """A sentence-transformers body scoring ``scale * cos(q, p) + bias`` (or the dot product).

    ``embed`` turns a padded batch of texts into vectors (unit length for ``cosine``); ``scores``
    gives the ``[B, N]`` matrix of B queries against N passages.
    """

    kind = "bi-encoder"

    def __init__(self, directory: Path, pooling: str = "masked_mean", max_length: int = 256,
                 similarity: str = "cosine", scale: float = 20.0):
        super().__init__()
        if similarity not in SIMILARITIES:
            raise WorkbenchError(f"similarity must be one of {', '.join(SIMILARITIES)}, not {similarity!r}")
        self.st = load_biencoder(Path(directory), pooling, max_length)
        self.pooling, self.normalize = st_pooling(self.st)
        self.similarity = similarity
        self.scale = float(scale)
        # pointwise BCE needs scores around 0 for a cosine in the middle of its range (see the module doc)
        self.bias = nn.Parameter(torch.tensor(-0.5 * self.scale if similarity == "cosine" else 0.0))

    @property
    def tokenizer(self) -> Any:
        return self.st.tokenizer

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        vectors = self.st(features)["sentence_embedding"].float()
        return torch.nn.functional.normalize(vectors, dim=-1) if self.similarity == "cosine" else vectors

    def scores(self, queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
        """``[B, N]``: ``scale * <q, p> + bias`` (``<q, p>`` a cosine when ``similarity`` is cosine)."""
        return self.scale * queries @ passages.T + self.bias

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``embeddings`` (token and position embeddings), ``encoder`` (the layers), ``head`` (the bias)."""
        groups: dict[str, list[nn.Parameter]] = {"embeddings": [], "encoder": [], "head": [self.bias]}
        for name, parameter in self.st.named_parameters():
            groups["embeddings" if "embeddings" in name else "encoder"].append(parameter)
        return groups

    def save(self, directory: str | Path, tokenizer: Any, meta: dict[str, Any]) -> None:
        """A sentence-transformers directory plus ``ranker.json`` (kind ``bi-encoder``: the dense
        reranker's pooling, normalisation, similarity and length)."""
        directory = Path(directory)
        with _quiet():
            self.st.save(str(directory), create_model_card=False)
        values = {**meta, "kind": "bi-encoder", "architecture": "bi-encoder", "pooling": self.pooling,
                  "normalize": self.normalize, "similarity": self.similarity, "scale": self.scale,
                  "bias": float(self.bias.detach())}
        (directory / RANKER_FILE).write_text(json.dumps(values, indent=1, sort_keys=True, default=str),
                                             encoding="utf-8")
