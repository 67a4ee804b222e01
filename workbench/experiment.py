"""Systems by name, produced (or reused) as stored runs, evaluated onto the leaderboard.

A *system* is a string:

* ``bm25-mini`` — Pyserini BM25 over the Lucene index of the data directory's collection
  (options: ``bm25-mini:k1=0.82,b=0.68,k=1000``). Over the mini collection these numbers
  are NOT comparable with published full-collection figures.
* ``official-<name>`` — an official full-collection run shipped in the data directory
  (``official-bm25``, ``official-tasb``, ...).
* ``dense-mini`` — first-stage dense retrieval over the collection with faiss (default
  encoder ``dense-minilm``; options ``dense-mini:encoder=<reranker spec>,index=flat|ivf|hnsw,k=1000``);
  passage embeddings are cached on disk. ``splade-mini`` — the same with SPLADE-tiny
  sparse vectors. Mini-collection runs: not comparable with full-collection figures.
* ``run:<path>`` — any existing TREC run file as candidates.
* ``<system>+<reranker>`` — the top ``depth`` (default 100) of ``<system>`` reranked by a
  registered reranker (``official-bm25+tfidf``, ``bm25-mini+cross-encoder:<model>``);
  chains such as ``a+b+c`` rerank ``a+b`` by ``c``.
* ``rrf[<system>|<system>|...]`` — reciprocal-rank fusion (k=60) of systems with ranx
  ``fuse``; ``combsum[...]`` / ``combmnz[...]`` fuse min-max normalised scores.

Every system runs on the dataset's judged topics (unjudged ones cannot be evaluated).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import sha256_file
from .cache import fingerprint
from .collection import Collection
from .datasets import Dataset, get_dataset
from .errors import WorkbenchError
from .evaluate import DEFAULT_METRICS, Evaluation, evaluate_run
from .leaderboard import DEFAULT_LEADERBOARD, upsert_rows
from .runstore import DEFAULT_RUNS_DIR, StoredRun, load_reusable, save_run, update_manifest
from .trec import read_run

log = logging.getLogger(__name__)

DEFAULT_DATASETS = ["dl19", "dl20"]
# The foundation: BM25 over the mini collection and the official full-collection BM25 run,
# each reranked by TF-IDF.
FOUNDATION_SYSTEMS = ["bm25-mini", "official-bm25", "bm25-mini+tfidf", "official-bm25+tfidf"]
# Neural systems over the official BM25 top-100 (comparable with published reranking
# results), fusion of BM25 with the dense reranker, and a dense first stage over the mini collection.
NEURAL_SYSTEMS = ["official-bm25+dense-minilm", "official-bm25+splade-tiny",
                  "rrf[official-bm25|official-bm25+dense-minilm]", "dense-mini"]
DEFAULT_SYSTEMS = FOUNDATION_SYSTEMS + NEURAL_SYSTEMS
DEFAULT_RERANK_DEPTH = 100


FUSION_METHODS = {  # system prefix -> (ranx fuse method, ranx normalisation)
    "rrf": ("rrf", None),
    "combsum": ("sum", "min-max"),
    "combmnz": ("mnz", "min-max"),
}


def split_reranker(system: str) -> tuple[str, str] | None:
    """Split ``<candidates>+<reranker>`` at the last '+' outside brackets; None if not reranked."""
    depth = 0
    for position in range(len(system) - 1, -1, -1):
        char = system[position]
        if char == "]":
            depth += 1
        elif char == "[":
            depth -= 1
        elif char == "+" and depth == 0:
            return system[:position], system[position + 1:]
    return None


def split_fusion(system: str) -> tuple[str, list[str]] | None:
    """``rrf[a|b]`` -> ("rrf", ["a", "b"]); None if ``system`` is not a fusion."""
    name, bracket, rest = system.partition("[")
    if not bracket or not rest.endswith("]") or name not in FUSION_METHODS:
        return None
    parts, depth, current = [], 0, ""
    for char in rest[:-1]:
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "[") - (char == "]")
        current += char
    parts.append(current)
    parts = [part.strip() for part in parts]
    if len(parts) < 2 or not all(parts):
        raise WorkbenchError(f"fusion {system!r} needs at least two systems separated by '|'")
    return name, parts


def parse_options(text: str, spec: str) -> dict[str, str]:
    options = {}
    for part in filter(None, text.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise WorkbenchError(f"bad option {part!r} in system {spec!r}: expected key=value")
        options[key.strip()] = value.strip()
    return options


@dataclass
class SystemResult:
    """A system's run on a dataset, its evaluation, and what producing it cost."""

    dataset: str
    system: str
    stored: StoredRun
    evaluation: Evaluation
    seconds_this_time: float
    notes: list[str] = field(default_factory=list)


class Workbench:
    """Produces, stores, evaluates and ranks systems; holds the expensive shared state.

    The collection, the Lucene index, the BM25 searcher and fitted rerankers are built once
    per process and shared across datasets and systems.
    """

    def __init__(self, data_dir: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR,
                 leaderboard: str | Path = DEFAULT_LEADERBOARD, rerank_depth: int = DEFAULT_RERANK_DEPTH,
                 threads: int = 0, device: str = "cpu", progress: bool = True, metrics: list[str] | None = None):
        self.data_dir = data_dir
        self.runs_dir = Path(runs_dir)
        self.leaderboard = Path(leaderboard)
        self.rerank_depth = rerank_depth
        self.threads = threads
        self.device = device
        self.progress = progress
        self.metrics = list(metrics or DEFAULT_METRICS)
        self._collection: Collection | None = None
        self._index = None
        self._searchers: dict[tuple[float, float], Any] = {}
        self._rerankers: dict[str, Any] = {}
        self._first_stage: dict[tuple[str, str, str], Any] = {}
        self._score_cache = None
        self._datasets: dict[str, Dataset] = {}

    # -- shared state -------------------------------------------------------------------
    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = get_dataset(name, self.data_dir)
        return self._datasets[name]

    def collection(self, dataset: Dataset) -> Collection:
        if self._collection is None or self._collection.path != dataset.collection_path:
            self._collection = Collection(dataset.collection_path)
        return self._collection

    def index(self, dataset: Dataset):
        from .index import build_index

        collection = self.collection(dataset)
        if self._index is None or self._index.fingerprint != self._index_key(collection):
            self._index = build_index(collection, threads=self.threads or None)
            state = "built in %.1f s" % self._index.seconds if self._index.built else "reused"
            log.info("Lucene index %s (%s)", self._index.path, state)
        return self._index

    @staticmethod
    def _index_key(collection: Collection) -> str:
        from .index import index_fingerprint

        return index_fingerprint(collection)

    def score_cache(self):
        if self._score_cache is None:
            from .scorecache import ScoreCache

            self._score_cache = ScoreCache()
        return self._score_cache

    def reranker(self, spec: str, dataset: Dataset):
        from .rerankers import RerankContext, get_reranker

        if spec not in self._rerankers:
            context = RerankContext(collection=self.collection(dataset), device=self.device)
            self._rerankers[spec] = get_reranker(spec, context)
        return self._rerankers[spec]

    # -- systems ---------------------------------------------------------------------------
    def produce(self, system: str, dataset_name: str) -> StoredRun:
        """The stored run of ``system`` on a dataset, computed unless an identical one is stored."""
        dataset = self.dataset(dataset_name)
        system = system.strip()
        if not system:
            raise WorkbenchError("empty system name")
        if system.startswith("run:") and Path(system[len("run:"):]).is_file():
            return self._produce_file(system, Path(system[len("run:"):]), dataset, source="user run file")
        reranked = split_reranker(system)
        if reranked:
            return self._produce_reranked(system, *reranked, dataset)
        fusion = split_fusion(system)
        if fusion:
            return self._produce_fusion(system, *fusion, dataset)
        if system.startswith("official-"):
            return self._produce_file(system, dataset.official_run_path(system[len("official-"):]), dataset,
                                      source="official full-collection run")
        if system.startswith("run:"):
            raise WorkbenchError("run file not found", system[len("run:"):])
        name, _, options = system.partition(":")
        if name == "bm25-mini":
            return self._produce_bm25(system, parse_options(options, system), dataset)
        if name in ("dense-mini", "splade-mini"):
            return self._produce_learned_first_stage(system, name, parse_options(options, system), dataset)
        raise WorkbenchError(f"unknown system {system!r}: expected bm25-mini, official-<name>, run:<path>, "
                             "<system>+<reranker> or rrf[<system>|<system>]")

    def _topics_key(self, dataset: Dataset) -> str:
        return sha256_file(dataset.topics_path)

    def _produce_file(self, system: str, path: Path, dataset: Dataset, source: str) -> StoredRun:
        config = {"type": "file", "source": source, "path": str(path), "sha256": sha256_file(path)}
        key = fingerprint(config)
        stored = load_reusable(self.runs_dir, dataset.name, system, key)
        if stored:
            return stored
        started = time.perf_counter()
        run = read_run(path)
        run = run[run["qid"].isin(set(dataset.judged_topics["qid"]))]
        if run.empty:
            raise WorkbenchError(f"run has no queries of dataset {dataset.name}", path)
        return save_run(run, self.runs_dir, dataset.name, system, config, key, candidates=source,
                        wall_time_s=round(time.perf_counter() - started, 3), pairs_scored=0)

    def _produce_bm25(self, system: str, options: dict[str, str], dataset: Dataset) -> StoredRun:
        from .retrieve import BM25Config, BM25Retriever

        try:
            config = BM25Config(k1=float(options.pop("k1", 0.9)), b=float(options.pop("b", 0.4)),
                                k=int(options.pop("k", 1000)), threads=self.threads)
        except ValueError as error:
            raise WorkbenchError(f"bad BM25 option in {system!r}: {error}") from None
        if options:
            raise WorkbenchError(f"unknown BM25 options {sorted(options)} in {system!r} (known: k1, b, k)")
        collection = self.collection(dataset)
        settings = {"type": "bm25", "k1": config.k1, "b": config.b, "k": config.k,
                    "collection": str(collection.path), "collection_sha256": collection.fingerprint,
                    "topics_sha256": self._topics_key(dataset)}
        key = fingerprint(settings, self._index_key(collection))
        stored = load_reusable(self.runs_dir, dataset.name, system, key)
        if stored:
            return stored
        index = self.index(dataset)
        searcher_key = (config.k1, config.b)
        if searcher_key not in self._searchers:
            self._searchers[searcher_key] = BM25Retriever(index.path, config)
        topics = dataset.judged_topics
        started = time.perf_counter()
        run = self._searchers[searcher_key].search(topics, k=config.k)
        seconds = time.perf_counter() - started
        return save_run(run, self.runs_dir, dataset.name, system, {**settings, "index": str(index.path)}, key,
                        candidates="mini-collection BM25 (not comparable with full-collection figures)",
                        wall_time_s=round(seconds, 3), threads=config.resolved_threads(), pairs_scored=0)

    def _produce_learned_first_stage(self, system: str, name: str, options: dict[str, str],
                                     dataset: Dataset) -> StoredRun:
        """Dense (faiss) or SPLADE retrieval over the whole collection, embeddings cached on disk."""
        dense = name == "dense-mini"
        encoder_spec = options.pop("encoder", "dense-minilm" if dense else "splade-tiny")
        index_kind = options.pop("index", "flat")
        try:
            k = int(options.pop("k", 1000))
        except ValueError as error:
            raise WorkbenchError(f"bad option in {system!r}: {error}") from None
        if options or (not dense and index_kind != "flat"):
            raise WorkbenchError(f"unknown options {sorted(options) or ['index']} in {system!r} "
                                 f"(known: encoder, k{', index' if dense else ''})")
        collection = self.collection(dataset)
        model = self.reranker(encoder_spec, dataset)
        encoder = getattr(model, "encoder", None)
        if encoder is None:
            raise WorkbenchError(f"{encoder_spec!r} is not an encoder-based reranker; {name} needs one")
        settings = {"type": name, "encoder": encoder_spec, "encoder_fingerprint": encoder.fingerprint,
                    "index": index_kind, "k": k, "collection_sha256": collection.fingerprint,
                    "topics_sha256": self._topics_key(dataset)}
        key = fingerprint(settings)
        stored = load_reusable(self.runs_dir, dataset.name, system, key)
        if stored:
            return stored
        started = time.perf_counter()
        cache_key = (name, encoder_spec, index_kind)
        if cache_key not in self._first_stage:
            if dense:
                from .dense_index import DenseIndex

                self._first_stage[cache_key] = DenseIndex.build(collection, encoder, kind=index_kind,
                                                                progress=self.progress)
            else:
                from .rerankers.splade import SpladeIndex

                self._first_stage[cache_key] = SpladeIndex.build(collection, encoder, progress=self.progress)
        index_seconds = time.perf_counter() - started
        search_started = time.perf_counter()
        run = self._first_stage[cache_key].search(dataset.judged_topics, k=k)
        search_seconds = time.perf_counter() - search_started
        return save_run(run, self.runs_dir, dataset.name, system, {**settings, "model": model.config()}, key,
                        candidates=f"mini-collection {'dense' if dense else 'SPLADE'} retrieval "
                                   "(not comparable with full-collection figures)",
                        model_ids=model.config(), wall_time_s=round(search_seconds, 3),
                        index_time_s=round(index_seconds, 3), pairs_scored=0)

    def _produce_fusion(self, system: str, method: str, parts: list[str], dataset: Dataset) -> StoredRun:
        from ranx import fuse

        from .evaluate import to_ranx_run
        from .trec import sort_run

        components = [self.produce(part, dataset.name) for part in parts]
        fuse_method, norm = FUSION_METHODS[method]
        settings = {"type": "fusion", "method": fuse_method, "norm": norm, "rrf_k": 60 if method == "rrf" else None,
                    "components": parts, "components_sha256": [c.manifest["sha256"] for c in components]}
        key = fingerprint(settings)
        stored = load_reusable(self.runs_dir, dataset.name, system, key)
        if stored:
            return stored
        started = time.perf_counter()
        common = set.intersection(*(set(c.run["qid"]) for c in components))
        runs = [to_ranx_run(sort_run(c.run[c.run["qid"].isin(common)]), name=part)
                for c, part in zip(components, parts)]
        fused = fuse(runs, norm=norm, method=fuse_method).to_dataframe()
        run = sort_run(fused.rename(columns={"q_id": "qid", "doc_id": "docno"}))
        return save_run(run, self.runs_dir, dataset.name, system, settings, key,
                        candidates=f"fusion of {', '.join(parts)}",
                        wall_time_s=round(time.perf_counter() - started, 3), pairs_scored=0)

    def _produce_reranked(self, system: str, candidate_name: str, reranker_spec: str,
                          dataset: Dataset) -> StoredRun:
        from .rerank import rerank_run

        candidates = self.produce(candidate_name, dataset.name)
        collection = self.collection(dataset)
        started = time.perf_counter()
        reranker = self.reranker(reranker_spec, dataset)
        model_seconds = time.perf_counter() - started
        # The reranker's fingerprint (model files, precision, options) is part of the key, so a
        # changed model or preset never reuses a stale run.
        settings = {"type": "rerank", "reranker": reranker_spec, "reranker_fingerprint": reranker.fingerprint,
                    "depth": self.rerank_depth, "candidates": candidate_name,
                    "candidates_sha256": candidates.manifest["sha256"],
                    "collection_sha256": collection.fingerprint, "topics_sha256": self._topics_key(dataset)}
        key = fingerprint(settings)
        stored = load_reusable(self.runs_dir, dataset.name, system, key)
        if stored:
            return stored
        started = time.perf_counter()
        run, stats = rerank_run(candidates.run, dataset.judged_topics, collection, reranker,
                                depth=self.rerank_depth, cache=self.score_cache(), progress=self.progress,
                                desc=f"{dataset.name} {system}")
        seconds = time.perf_counter() - started
        return save_run(run, self.runs_dir, dataset.name, system,
                        {**settings, "reranker_config": reranker.config()}, key,
                        candidates=candidates.manifest.get("candidates", candidate_name),
                        candidate_run=str(candidates.path), model_ids=reranker.config(),
                        reranker_fingerprint=reranker.fingerprint, wall_time_s=round(seconds, 3),
                        model_load_s=round(model_seconds, 3), pairs=stats.pairs, pairs_scored=stats.scored,
                        cache_hits=stats.cache_hits, cache_misses=stats.scored,
                        rerank_s=round(stats.seconds, 3))

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, stored: StoredRun, dataset_name: str, **manifest_fields: Any) -> Evaluation:
        """Evaluate a stored run; its manifest records the qrels and metrics (plus ``manifest_fields``)
        in one write."""
        dataset = self.dataset(dataset_name)
        evaluation = evaluate_run(stored.run, dataset.qrels, dataset.relevance_level, self.metrics)
        update_manifest(stored.path, qrels={"path": str(dataset.qrels_path),
                                            "sha256": sha256_file(dataset.qrels_path),
                                            "relevance_level": dataset.relevance_level},
                        evaluation={"metrics": evaluation.means, "n_queries": evaluation.n_queries},
                        **manifest_fields)
        return evaluation

    def run_system(self, system: str, dataset_name: str) -> SystemResult:
        """Produce (or reuse) a system's run, evaluate it, and record this invocation in its manifest."""
        import datetime as _dt

        started = time.perf_counter()
        stored = self.produce(system, dataset_name)
        # The creation fields (pairs_scored, wall_time_s) describe the run's first computation;
        # last_invocation says what this call cost: 0 pairs scored when the run was reused.
        last_invocation = {
            "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "reused": stored.reused,
            "pairs_scored": 0 if stored.reused else int(stored.manifest.get("pairs_scored") or 0),
            "produce_seconds": round(time.perf_counter() - started, 3)}
        evaluation = self.evaluate(stored, dataset_name, last_invocation=last_invocation)
        return SystemResult(dataset_name, system, stored, evaluation, time.perf_counter() - started)

    def leaderboard_row(self, result: SystemResult, sliced: dict[str, Any] | None = None) -> dict[str, Any]:
        """A leaderboard row: metrics (of a slice, with CIs and significance if ``sliced``), cost, provenance."""
        manifest = result.stored.manifest
        dataset = self.dataset(result.dataset)
        wall = float(manifest.get("wall_time_s") or 0.0)
        queries = int(manifest.get("queries") or 0)
        sliced = dict(sliced or {"slice": "all", "n_queries": result.evaluation.n_queries, **result.evaluation.means})
        row: dict[str, Any] = {"dataset": result.dataset, "system": result.system, "slice": sliced.pop("slice")}
        row.update({metric: sliced.pop(metric) for metric in self.metrics})
        row["n_queries"] = sliced.pop("n_queries")
        row["n_unjudged_excluded"] = dataset.n_unjudged
        sliced.pop("system", None)
        row.update(sliced)  # baseline, deltas, p-values, markers, wins/ties/losses, CIs
        row.update({
            "candidates": manifest.get("candidates", ""),
            "wall_time_s": round(wall, 3),
            "queries_per_s": round(queries / wall, 2) if wall > 0 else None,
            "pairs_scored": manifest.get("pairs_scored", 0),
            "cache_hits": manifest.get("cache_hits", 0),
            "run_path": str(result.stored.path),
            "fingerprint": manifest["sha256"],
        })
        return row

    def run_experiment(self, datasets: list[str], systems: list[str], baseline: str | None = None,
                       query_types: str | Path | None = None) -> pd.DataFrame:
        """Produce and evaluate every (dataset, system), sliced by query type, with significance
        against a baseline (default: each reranked system's candidate run); upsert the
        leaderboard and return the new rows."""
        from .querytypes import load_query_types
        from .slices import default_baseline, sliced_table

        for dataset_name in datasets:
            self.dataset(dataset_name)  # fail fast on an unknown dataset
        rows = []
        for dataset_name in datasets:
            results = {}
            for system in systems:
                result = self.run_system(system, dataset_name)
                state = "reused" if result.stored.reused else "computed"
                log.info("%s %s: %s in %.1f s (%s)", dataset_name, system, state, result.seconds_this_time,
                         ", ".join(f"{m}={v:.4f}" for m, v in result.evaluation.means.items()))
                results[system] = result
            baselines = {system: (baseline if baseline and baseline != system else default_baseline(system))
                         for system in systems}
            per_query = {system: result.evaluation.per_query for system, result in results.items()}
            for extra in {b for b in baselines.values() if b is not None} - per_query.keys():
                per_query[extra] = self.run_system(extra, dataset_name).evaluation.per_query
            labels = load_query_types(self.dataset(dataset_name), override_path=query_types)
            table = sliced_table(per_query, labels, baselines, self.metrics)
            for sliced in table.to_dict("records"):
                rows.append(self.leaderboard_row(results[sliced["system"]], sliced))
        upsert_rows(rows, self.leaderboard)
        return pd.DataFrame(rows)
