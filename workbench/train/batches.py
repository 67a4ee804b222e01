"""A training step's view of the lists: each list tokenized once (:class:`Encoded`: its (query,
passage) pairs, or a bi-encoder's passages and query apart), the candidates drawn per step
(:func:`sample_candidates`: the relevant ones first), and :class:`ListBatcher`, which scores a batch
of lists through the model in length-sorted, dynamically padded chunks under autocast and returns
the ``[B, L]`` scores, labels and mask a list loss takes, or for InfoNCE every query against every
candidate of the batch. The autograd graph is kept from the pair scores to the matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..models.batching import length_sorted_batches, pad_batch, to_device
from ..models.precision import autocast
from ..models.ranker import pair_features
from .config import TrainConfig
from .data import RankingList


@dataclass
class Encoded:
    """One list, tokenized once: its (query, passage) pairs, or for a bi-encoder its passages
    (``features``) and its query (``query``) apart."""

    features: dict[str, list[list[int]]]
    labels: np.ndarray
    query: dict[str, list[list[int]]] | None = None
    docnos: tuple[str, ...] = ()


def sample_candidates(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` candidates: the relevant ones first (at most half), the rest at random."""
    n = len(labels)
    if not size or n <= size:
        return np.arange(n)
    positives = np.flatnonzero(labels > 0)
    negatives = np.flatnonzero(labels <= 0)
    keep_pos = rng.permutation(positives)[:max(1, size // 2)] if len(positives) else positives
    keep_neg = rng.permutation(negatives)[:size - len(keep_pos)]
    chosen = np.concatenate([keep_pos, keep_neg])
    if len(chosen) < size:  # few negatives: fill with more positives
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen = np.concatenate([chosen, rng.permutation(rest)[:size - len(chosen)]])
    return np.sort(chosen)


class ListBatcher:
    """Tokenizes lists for ``model`` and scores batches of them on ``device`` at ``precision``."""

    def __init__(self, config: TrainConfig, model: torch.nn.Module, tokenizer: Any, device: torch.device,
                 precision: str):
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.precision = precision
        self.bi_encoder = config.architecture == "bi-encoder"
        self.encoder_decoder = config.architecture == "encoder-decoder"
        self.pad_values = {"input_ids": tokenizer.pad_token_id or 0, "token_type_ids": 0}
        self.last_batch_pairs = 0  # labelled (query, passage) pairs of the last batch: the throughput's unit

    def encode(self, lst: RankingList) -> Encoded:
        """``lst`` tokenized (truncated to ``max_length``, unpadded)."""
        if self.bi_encoder:
            tokenize = dict(truncation=True, max_length=self.config.max_length, padding=False,
                            return_attention_mask=False)
            names = ("input_ids", "token_type_ids")
            passages = self.tokenizer(list(lst.passages), **tokenize)
            query = self.tokenizer([lst.query], **tokenize)
            return Encoded({n: passages[n] for n in names if n in passages}, lst.labels,
                           {n: query[n] for n in names if n in query}, tuple(lst.docnos))
        features = pair_features(self.tokenizer, [lst.query] * len(lst), lst.passages, self.config.max_length,
                                 self.encoder_decoder)
        return Encoded(features, lst.labels)

    def forward_chunks(self, features: dict[str, list[list[int]]], forward: Callable) -> torch.Tensor:
        """``forward`` over all rows of ``features`` in length-sorted chunks padded per chunk, the
        outputs back in row order (grad kept when training)."""
        lengths = [len(ids) for ids in features["input_ids"]]
        chunks = length_sorted_batches(lengths, self.config.pairs_per_forward)
        parts = []
        for indices in chunks:
            arrays = pad_batch(features, indices, self.pad_values, getattr(self.tokenizer, "padding_side", "right"))
            tensors = to_device(arrays, self.device)
            with autocast(self.device, self.precision):
                values = forward(**tensors).float()
            parts.append((torch.as_tensor(indices, device=self.device), values))
        order = torch.cat([i for i, _ in parts])
        values = torch.cat([v for _, v in parts])
        # scatter keeps the autograd graph (index_put on a fresh tensor)
        out = torch.zeros((len(lengths), *values.shape[1:]), device=self.device, dtype=values.dtype)
        return out.index_put((order,), values)

    def score_pairs(self, features: dict[str, list[list[int]]]) -> torch.Tensor:
        """Scores of all (query, passage) pairs of ``features``."""
        return self.forward_chunks(features, self.model)

    def batch(self, encoded: list[Encoded], rng: np.random.Generator | None,
              in_batch: bool = False, picks: list[np.ndarray] | None = None) -> tuple[torch.Tensor, ...]:
        """Scores, labels and mask ``[B, L]`` of a batch of lists (sampled when ``rng`` is given;
        ``picks``: the candidates already drawn, per list).

        ``in_batch`` (bi-encoder, InfoNCE): ``[B, N]`` over all N candidates of the batch, each
        query's own first; another list's candidates are its negatives (label 0), except copies of
        its own candidates (masked)."""
        features: dict[str, list[list[int]]] = {}
        drawn, picks = picks, []
        for position, item in enumerate(encoded):
            chosen = drawn[position] if drawn is not None else \
                sample_candidates(item.labels, self.config.list_size, rng) if rng is not None \
                else np.arange(len(item.labels))
            picks.append(chosen)
            for name, rows in item.features.items():
                features.setdefault(name, []).extend(rows[i] for i in chosen)
        sizes = [len(p) for p in picks]
        self.last_batch_pairs = sum(sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        if self.bi_encoder:
            queries: dict[str, list[list[int]]] = {}
            for item in encoded:
                for name, rows in item.query.items():
                    queries.setdefault(name, []).extend(rows)
            matrix = self.model.scores(self.forward_chunks(queries, self.model.embed),
                                       self.forward_chunks(features, self.model.embed))
            if in_batch:
                return self.in_batch(encoded, picks, matrix, starts)
            flat = torch.cat([matrix[row, start:start + size] for row, (start, size) in enumerate(zip(starts, sizes))])
        else:
            flat = self.score_pairs(features)
        rows = torch.cat([torch.full((len(p),), row, dtype=torch.long) for row, p in enumerate(picks)])
        columns = torch.cat([torch.arange(len(p)) for p in picks])
        width = max(sizes)
        # one scatter keeps the autograd graph from the pair scores to the [B, L] matrix
        scores = torch.zeros((len(encoded), width), device=self.device).index_put((rows, columns), flat)
        labels = torch.zeros((len(encoded), width), device=self.device)
        labels[rows, columns] = torch.as_tensor(np.concatenate([item.labels[p] for item, p in zip(encoded, picks)]),
                                                device=self.device)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool, device=self.device)
        mask[rows, columns] = True
        return scores, labels, mask

    def in_batch(self, encoded: list[Encoded], picks: list[np.ndarray], matrix: torch.Tensor,
                 starts: np.ndarray) -> tuple[torch.Tensor, ...]:
        """InfoNCE's view of a batch: every query against every candidate of the batch."""
        docnos = [item.docnos[i] for item, p in zip(encoded, picks) for i in p]
        labels = torch.zeros(matrix.shape, device=self.device)
        mask = torch.ones(matrix.shape, dtype=torch.bool, device=self.device)
        for row, (item, chosen) in enumerate(zip(encoded, picks)):
            own = set(item.docnos[i] for i in chosen)
            start = int(starts[row])
            for column, docno in enumerate(docnos):
                if docno in own and not start <= column < start + len(chosen):
                    mask[row, column] = False  # the same passage through another list: not a negative
            labels[row, start:start + len(chosen)] = torch.as_tensor(item.labels[chosen], device=self.device)
        return matrix, labels, mask

    def score_lists(self, encoded: list[Encoded]) -> list[np.ndarray]:
        """Every candidate's score of each list (the model in eval mode, no gradients)."""
        self.model.eval()
        out = []
        with torch.inference_mode():
            for item in encoded:
                out.append(self.batch([item], None)[0][0].double().cpu().numpy())
        return out
