"""What a worker needs to rebuild the driver's model: a :class:`ModelRecipe` (the reranker spec,
dataset, device, backend=auto's exact path, thread count, and the fingerprint the model must come
out with) and :func:`settle_exact_path`, which fixes backend=auto's choice on the driver before
any recipe leaves it, so that every worker runs the very path the local run runs.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import WorkbenchError


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker builds the model the driver holds: a reranker spec on a dataset, and the
    fingerprint it must come out with (``role``: ``reranker`` scores pairs, ``encoder`` encodes)."""

    spec: str
    dataset: str | None
    data_dir: str | None
    device: str
    role: str
    fingerprint: str
    #: the driver's working directory: relative paths in a spec (models/<name>) resolve as there
    cwd: str | None = None
    #: backend=auto's exact path as the driver chose it: workers run it rather than measure their own
    exact_path: str | None = None
    #: intra-op threads the driver's model runs with: a worker runs the model with as many, since
    #: some kernels' last bits depend on the thread count (all-MiniLM-L6-v2 in torch, a batch of 4
    #: texts: 1e-7 between 1 and 2 threads on an Intel Xeon)
    threads: int | None = None

    @property
    def reuse_key(self) -> tuple[Any, ...]:
        """What a worker keeps a built model under between stages: the same model whatever the
        dataset (its fingerprint says so; one that depends on the collection, TF-IDF, has the
        collection in it)."""
        return (self.role, self.spec, self.device, self.fingerprint, self.cwd, self.exact_path, self.threads)

    def build(self) -> Any:
        """The reranker (``role="reranker"``) or its encoder (``role="encoder"``), checked."""
        if self.cwd and Path(self.cwd).is_dir():
            os.chdir(self.cwd)
        from ...data.datasets import get_dataset
        from ...rerankers.protocol import RerankContext
        from ...rerankers.registry import get_reranker

        dataset = get_dataset(self.dataset, self.data_dir) if self.dataset else None
        collection = dataset.collection() if dataset is not None else None
        reranker = get_reranker(self.spec, RerankContext(collection=collection, dataset=dataset, device=self.device))
        model = reranker if self.role == "reranker" else reranker.encoder
        if self.exact_path and hasattr(model, "pin"):
            model.pin(self.exact_path)
        if model.fingerprint != self.fingerprint:
            raise WorkbenchError(f"the worker on {socket.gethostname()} built {self.spec!r} with fingerprint "
                                 f"{model.fingerprint[:12]}, the driver has {self.fingerprint[:12]}: the model "
                                 "files, options or package versions differ between driver and worker")
        return model


def settle_exact_path(model: Any, dataset: Any) -> str | None:
    """The exact path backend=auto runs for ``model`` (a reranker, or its encoder), measured here on
    the dataset's real queries and passages if it has not been yet: workers then run that path, so
    a run computed on Ray is the run computed here."""
    target = model if getattr(model, "calibrating", None) is not None or getattr(model, "choice", None) else \
        getattr(model, "encoder", None)
    if target is None or (getattr(target, "calibrating", None) is None and getattr(target, "choice", None) is None):
        return None
    if target.calibrating:
        queries = list(dataset.judged_topics["query"])[:64] if dataset is not None else ["what is a query"]
        passages = list(dataset.collection().texts.values())[:192] if dataset is not None else queries
        if target is model and hasattr(model, "score_pairs"):
            model.score_pairs([queries[i % len(queries)] for i in range(len(passages))], passages)
        else:
            target.encode(passages)
        if target.calibrating:  # too few texts to measure on: the driver runs (and pins) its default path
            target.pin(target.backend)
    # the measured path names its batch size when it is not the default one (torch@16)
    return target.choice.path if getattr(target, "choice", None) is not None else target.backend
