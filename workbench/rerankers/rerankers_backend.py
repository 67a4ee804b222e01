"""``rerankers:<model>``: AnswerDotAI's ``rerankers`` library as a workbench reranker.

One spec reaches every backend the library has: cross-encoders, T5 (monoT5/InRanker), ColBERT,
FlashRank, layer-wise LLM rankers, and listwise LLM rankers (RankGPT through litellm, RankLLM),
with the workbench's batching across queries, score cache, precision/identity columns and
leakage guard around it::

    official-bm25+rerankers:/path/to/cross-encoder
    official-bm25+rerankers:castorini/monot5-base-msmarco,model_type=t5
    official-bm25+rerankers:colbert-ir/colbertv2.0,model_type=colbert
    official-bm25+rerankers:gpt-4o-mini,model_type=rankgpt     # needs OPENAI_API_KEY and internet

Scores are the library's: raw logits for a cross-encoder (``cross-encoder:<model>,activation=identity``
gives the same numbers within 1e-5; the ranking is the one the default sigmoid gives). A
listwise backend returns an order, not scores: a passage scores ``n - rank + 1`` and the whole
list is scored in one call and cached under the list (:attr:`Reranker.scores_whole_lists`).
``precision`` (alias ``dtype``) defaults to fp32 (the library would pick fp16 on a GPU): a faster dtype shows in the
leaderboard's precision column. API keys are read by the library from the environment and never
enter a spec, a manifest or the cache key.
"""
from __future__ import annotations

import contextlib
import io
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import WorkbenchError, first_line
from ..models.hub import resolve_model_dir
from ..models.identity import model_identity, scores_fingerprint
from .catalogue import RERANKERS_PRECISIONS
from .protocol import RerankContext, Reranker

#: rerankers' class names of the backends that rank a list as a whole (no per-pair scores)
LISTWISE = {"RankGPTRanker", "RankLLMRanker", "LiT5Ranker"}
#: the precision option's values (:data:`~workbench.rerankers.catalogue.RERANKERS_PRECISIONS`) -> the library's dtype
DTYPES = dict(zip(RERANKERS_PRECISIONS, ("float32", "bfloat16", "float16")))
#: what each backend needs beyond the library (docs/adapters.md has the table)
NEEDS = {"RankGPTRanker": "litellm, an API key (e.g. OPENAI_API_KEY) and internet",
         "RankLLMRanker": "rank_llm and a GPU", "FlashRankRanker": "flashrank",
         "LiT5Ranker": "the rerankers[lit5] extra", "APIRanker": "an API key and internet",
         "PyLateRanker": "pylate"}


def _library_version() -> str:
    try:
        return version("rerankers")
    except PackageNotFoundError:
        return ""


class RerankersLibraryReranker(Reranker):
    """A ``rerankers.Reranker`` behind the workbench's rerank protocol."""

    kind = "rerankers"

    def __init__(self, model: str, *, model_type: str | None = None, batch_size: int = 32,
                 device: str | None = None, dtype: str = "fp32", lang: str = "en"):
        try:
            import rerankers
            from rerankers.reranker import _get_model_type
        except ImportError:
            raise WorkbenchError("rerankers:<model> needs the rerankers library: pip install 'workbench[rerankers]'") from None
        self.model_name = str(model)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a warning when it has to guess
            self.library_class = _get_model_type(self.model_name, model_type)
        self.model_type = model_type or ""
        self.dtype = dtype
        self.batch_size = batch_size
        local = Path(self.model_name).expanduser()
        self.directory = local if local.is_dir() else None  # the session's leakage guard reads it
        self.identity = (model_identity(self.model_name, local) if self.directory is not None
                         else {"model": self.model_name})
        options: dict[str, Any] = {"verbose": 0, "lang": lang, "batch_size": batch_size}
        if model_type:
            options["model_type"] = model_type
        if device:
            options["device"] = device
        if dtype:
            options["dtype"] = DTYPES[dtype]
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):  # the library prints its warnings and errors
                self.ranker = rerankers.Reranker(self.model_name, **options)
        except Exception as error:  # noqa: BLE001 - any loading failure is one line naming the model
            raise WorkbenchError(f"rerankers could not load {self.model_name!r} as {self.library_class}: "
                                 f"{first_line(error, 300, with_type=True)}"
                                 + ("" if self.directory else "; offline, pass a local model directory")) from None
        if self.ranker is None:
            needs = NEEDS.get(self.library_class, "its optional dependencies")
            raise WorkbenchError(f"rerankers cannot run {self.model_name!r} as {self.library_class} here: it needs "
                                 f"{needs} (pip install 'rerankers[all]')")
        self.lang = lang
        # the model the library actually loaded (a family name such as "cross-encoder" resolves per language)
        model = getattr(self.ranker, "model", None)
        loaded = str(getattr(getattr(model, "config", None), "_name_or_path", "") or
                     getattr(self.ranker, "model_name", "") or "")
        if self.directory is None and loaded:
            try:  # a hub model in the local cache: identified by its files, as cross-encoder: does
                self.identity = model_identity(loaded, resolve_model_dir(loaded, "rerankers", download=False))
            except Exception:  # noqa: BLE001 - not on disk as a snapshot (an API model): its name
                self.identity = {"model": loaded}
        self.scores_whole_lists = (self.library_class in LISTWISE
                                   or getattr(self.ranker, "ranking_type", "pointwise") == "listwise")
        self.precision = dtype
        self.backend = "rerankers"

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        ranked = self.ranker.rank(query, list(passages), doc_ids=list(range(len(passages))))
        results = list(getattr(ranked, "results", ranked))
        scores = np.full(len(passages), np.nan)
        for position, result in enumerate(results):
            doc_id = int(result.document.doc_id)
            if self.scores_whole_lists or result.score is None:
                rank = result.rank if result.rank is not None else position + 1
                scores[doc_id] = float(len(passages) - rank + 1)
            else:
                scores[doc_id] = float(result.score)
        if np.isnan(scores).any():
            raise WorkbenchError(f"rerankers' {self.library_class} returned {len(results)} results for "
                                 f"{len(passages)} passages")
        return scores

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.identity, "library_class": self.library_class,
                "model_type": self.model_type, "dtype": self.dtype, "lang": self.lang, "rerankers": _library_version(),
                "scores": "ranks" if self.scores_whole_lists else "library scores"}

    @property
    def fingerprint(self) -> str:
        return scores_fingerprint(self.config(), hub_id=self.directory is None)

    @property
    def pairs_batch_size(self) -> int:
        return max(256, self.batch_size)


def make_rerankers(context: RerankContext, *, model: str | None, device: str | None, precision: str,
                   **options: Any) -> RerankersLibraryReranker:
    """The ``rerankers`` reranker (options: :data:`~workbench.rerankers.catalogue.RERANKERS_OPTIONS`)."""
    if not model:
        raise WorkbenchError("rerankers needs a model: rerankers:<hub id or local path>[,model_type=...]")
    return RerankersLibraryReranker(model, device=device or (context.device if context.device != "auto" else None),
                                    dtype=precision, **options)
