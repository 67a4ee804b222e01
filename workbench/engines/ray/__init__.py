"""Run the expensive stages on a Ray cluster, with the same results as on one machine.

``workbench eval --engine ray [--ray-address ADDRESS]`` hands three kinds of work to one pool of
Ray actors per experiment: started at the first stage, kept for every later one, each actor
keeping the models (or Lucene searchers) it loaded, so start-up is paid once, not per system x
dataset:

* **reranking**: the pairs the score cache does not hold, cut into the very chunks the local
  path scores one after another (``Reranker.pairs_batch_size`` pairs), become rows dealt to
  the actors one at a time as each frees up; actors score the rows, the driver alone writes the score cache and the
  run (one writer: nothing lost, nothing written twice). A vector reranker (dense, SPLADE)
  sends its passage encoding instead (below) and then scores locally from the vector cache,
  which costs only query encodings and dot products.
* **collection encoding** (``dense-mini``, ``splade-mini``, a vector reranker's passages): the
  passages missing from the encoder's vector cache, grouped exactly as the local path would
  encode them (:meth:`~workbench.models.vector_cache.VectorCache.plan`), are encoded by actors;
  the driver stores each group as the same resumable segment the local path writes.
* **BM25** (``bm25-mini``): topics split across actors, each with its own Pyserini searcher over
  the index on shared storage; the driver orders the run as the local path does.

Why chunks and groups rather than single pairs: some models' outputs depend, in the last bits,
on which texts share a padded batch (SPLADE-tiny in torch moves by up to 4.5e-6 with the batch
composition), so the local batches are reproduced exactly and a run computed on Ray has the
same sha256 as the local one. Ray restarts an actor that dies and retries its call, and an
interrupted driver resumes from the score cache and the vector segments it wrote.

The model a worker builds is checked against the driver's: same reranker (or encoder)
fingerprint, or the worker refuses to score. Workers need the workbench installed, and the
data directory, models and index at the same paths (shared storage), as Ray's own docs assume.

Modules (none imports ``ray`` or ``torch`` until it is used):

* :mod:`~workbench.engines.ray.engine` — :class:`RayEngine` (the driver: cluster, pool size, the
  three stages) and :class:`BoundEngine` (the engine bound to one model);
* :mod:`~workbench.engines.ray.pool` — the actor pool: started once, rows dealt to it, ended;
* :mod:`~workbench.engines.ray.workers` — what runs in a worker: :class:`StageWorker` and the
  components it keeps (:class:`PairScorer`, :class:`PassageEncoder`, :class:`BM25Searcher`);
* :mod:`~workbench.engines.ray.recipes` — :class:`ModelRecipe` (how a worker rebuilds the
  driver's model) and :func:`settle_exact_path`;
* :mod:`~workbench.engines.ray.reports` — :class:`StageReport` and the manifest's engine fields;
* :mod:`~workbench.engines.ray.jvm_signals` — importing Ray without taking the JVM's signals.
"""
from .engine import FORWARDED_ENV, BoundEngine, RayEngine
from .engine import _assemble  # noqa: F401 - imported from here by tests/test_ray.py
from .jvm_signals import RAY_SIGNAL_HANDLER_OFF, leave_signals_to_the_jvm, require_ray
from .pool import ActorPool, close_pool
from .recipes import ModelRecipe, settle_exact_path
from .reports import StageReport, manifest_fields
from .workers import COMPONENTS, BM25Searcher, PairScorer, PassageEncoder, StageWorker

__all__ = [
    "ActorPool", "BM25Searcher", "BoundEngine", "COMPONENTS", "FORWARDED_ENV", "ModelRecipe", "PairScorer",
    "PassageEncoder", "RAY_SIGNAL_HANDLER_OFF", "RayEngine", "StageReport", "StageWorker", "close_pool",
    "leave_signals_to_the_jvm", "manifest_fields", "require_ray", "settle_exact_path",
]
