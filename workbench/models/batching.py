"""Length-sorted batches with dynamic padding: texts or pairs are tokenized once, sorted by
token length (longest first) and padded per batch only to that batch's longest sequence."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int,
                          max_tokens: int | None = None) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (OOM shows up at once).

    A batch holds at most ``batch_size`` sequences and, when ``max_tokens`` is set, at most
    ``max_tokens`` padded tokens (but always at least one sequence).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_tokens:
            size = max(1, min(batch_size, max_tokens // max(1, int(lengths[order[start]]))))
        batches.append(order[start:start + size])
        start += size
    return batches


def contiguous_parts(batches: Sequence[np.ndarray], parts: int) -> list[np.ndarray]:
    """``batches`` cut into ``parts`` runs of consecutive whole batches with about as many texts
    each; each run as one index array (in batch order; empty when there are fewer batches).

    Encoding the texts of one run, in this order, forms exactly the run's batches again (the
    length sort is stable and each run starts where a batch starts), so a corpus can be shared
    out between workers at batch boundaries without a text's vector changing by one bit."""
    sizes = np.cumsum([len(batch) for batch in batches])
    total = int(sizes[-1]) if len(sizes) else 0
    runs, start = [], 0
    for part in range(1, parts + 1):
        # the first batch boundary at or past this part's share of the texts
        end = int(np.searchsorted(sizes, total * part / parts - 1e-9, side="left")) + 1 if total else 0
        end = min(max(end, start), len(batches))
        chosen = list(batches[start:end])
        runs.append(np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64))
        start = end
    return runs


def pad_batch(encoded: Mapping[str, Sequence[Sequence[int]]], indices: np.ndarray,
              pad_values: Mapping[str, int], padding_side: str = "right") -> dict[str, np.ndarray]:
    """Pad the rows ``indices`` of tokenized features to the batch's longest row.

    Builds ``attention_mask`` (1 on tokens) and pads every other feature with its value from
    ``pad_values``; the same arrays the tokenizer's own ``padding=True`` would produce.
    """
    rows = [encoded["input_ids"][i] for i in indices]
    width = max((len(row) for row in rows), default=0)
    names = [name for name in encoded if name != "attention_mask"]
    arrays = {name: np.full((len(rows), width), pad_values.get(name, 0), dtype=np.int64) for name in names}
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for row_number, index in enumerate(indices):
        length = len(encoded["input_ids"][index])
        span = slice(width - length, width) if padding_side == "left" else slice(0, length)
        mask[row_number, span] = 1
        for name in names:
            arrays[name][row_number, span] = encoded[name][index]
    arrays["attention_mask"] = mask
    return arrays


def to_device(arrays: Mapping[str, np.ndarray], device: torch.device,
              names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """``arrays`` (all, or ``names``) as tensors on ``device``."""
    return {name: torch.from_numpy(arrays[name]).to(device, non_blocking=True)
            for name in (arrays if names is None else names)}


def scatter(n: int, batches: Sequence[np.ndarray], results: Sequence[np.ndarray]) -> np.ndarray:
    """Put per-batch results back in input order."""
    scores = np.empty(n, dtype=np.float64)
    for indices, values in zip(batches, results):
        scores[indices] = values
    return scores


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` texts (a no-op one unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", leave=False, disable=not enabled)
