"""Post-hoc whitening and mean-centering of embeddings, fitted on a collection.

Anisotropic embeddings crowd into a narrow cone: every cosine is high, so raw cosines are
compressed. Subtracting the collection's mean vector (``center``) removes the shared direction;
``whiten`` also rotates onto the principal axes and scales each to unit variance (BERT-whitening,
Su et al. 2021), optionally keeping only the top ``dims`` axes. Both are linear maps fitted once
on the passage vectors of a collection (no relevance labels: nothing about the evaluated queries
leaks in) and applied to queries and passages alike; the fit is cached per (encoder, collection).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from .options import WHITENINGS  # noqa: F401 - declared (torch-free) there


@dataclass(frozen=True)
class Whitening:
    """A fitted linear post-processing: ``(x - mean) @ matrix`` (``matrix`` None: centering only)."""

    kind: str
    mean: np.ndarray
    matrix: np.ndarray | None = None
    fitted_on: int = 0

    @classmethod
    def fit(cls, vectors: np.ndarray, kind: str = "whiten", dims: int | None = None,
            epsilon: float = 1e-6) -> "Whitening":
        """Fit on ``vectors`` (n, d): ``center`` keeps the mean; ``whiten`` also the map to the top
        ``dims`` (default all) principal axes scaled to unit variance."""
        if kind not in ("center", "whiten"):
            raise WorkbenchError(f"unknown whitening {kind!r}; choose center or whiten")
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) < 2:
            raise WorkbenchError(f"whitening needs at least two vectors to fit on, got {len(vectors)}")
        mean = vectors.mean(0)
        if kind == "center":
            return cls(kind, mean.astype(np.float32), None, len(vectors))
        dims = vectors.shape[1] if dims is None else int(dims)
        if not 1 <= dims <= vectors.shape[1]:
            raise WorkbenchError(f"whitening dims must be between 1 and {vectors.shape[1]}, not {dims}")
        covariance = np.cov(vectors - mean, rowvar=False)
        values, axes = np.linalg.eigh(covariance)  # ascending
        order = np.argsort(values)[::-1][:dims]
        matrix = axes[:, order] / np.sqrt(np.maximum(values[order], 0.0) + epsilon)
        return cls(kind, mean.astype(np.float32), matrix.astype(np.float32), len(vectors))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """The post-processed vectors (float32; not normalised: cosine normalises)."""
        shifted = np.asarray(vectors, dtype=np.float32) - self.mean
        return shifted if self.matrix is None else shifted @ self.matrix

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"kind": np.array(self.kind), "mean": self.mean, "fitted_on": np.array(self.fitted_on)}
        if self.matrix is not None:
            arrays["matrix"] = self.matrix
        with atomic_write(path, "wb", encoding=None) as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Whitening":
        with np.load(Path(path)) as saved:
            return cls(str(saved["kind"]), saved["mean"], saved["matrix"] if "matrix" in saved else None,
                       int(saved["fitted_on"]))


def fit_on_collection(encode: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], key: dict[str, Any],
                      kind: str = "whiten", dims: int | None = None) -> Whitening:
    """The whitening of ``kind`` fitted on the vectors ``encode(texts)`` of a collection's passages,
    cached under ``cache_dir('whitening')`` by ``key`` (the encoder's fingerprint and the collection's)."""
    path = cache_dir("whitening") / f"{fingerprint(key, kind, dims)[:32]}.npz"
    if path.is_file():
        try:
            return Whitening.load(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # damaged: fit again
    whitening = Whitening.fit(encode(texts), kind, dims)
    whitening.save(path)
    return whitening
