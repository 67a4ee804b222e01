"""Materialise the data directory from ir_datasets (for users with internet access).

``workbench data --target data/msmarco-passage-mini`` (the CLI over :func:`materialise`)
writes the layout that :mod:`workbench.data.datasets` reads::

    topics/dl19-passage.tsv  qrels/dl19-passage.txt  runs/bm25.dl19.trec
    topics/dl20.tsv          qrels/dl20-passage.txt  runs/bm25.dl20.trec
    topics/dev-subset.tsv    qrels/dev-subset.txt
    topics/dev600.tsv        qrels/dev600.txt        runs/bm25-top20.dev600.trec  (only with dev candidates)
    collection.tsv

File names come from :data:`workbench.data.datasets.DATASETS`; nothing is duplicated here.

What differs from the shared ``msmarco-passage-mini`` directory, and why:

* **Candidate runs.** ir_datasets' ``scoreddocs`` for TREC DL are the organisers' official
  BM25 top-1000 pools (``msmarco-passagetest20XX-top1000.tsv``). The MS MARCO organisers
  publish them *without scores and in random order* (ir_datasets gives every candidate a
  score of 0), so a top-``depth`` cut of them would be an arbitrary sample. When a pool has
  no usable scores the whole pool is written (up to 1000 per query, all with score 0: the
  classic TREC DL "rerank the top-1000" setting) and the summary says so; rerank such a run
  at a depth that covers the whole pool. When the scoreddocs do carry scores, the top
  ``depth`` by score are kept. The mini directory's ``runs/bm25.*.trec`` instead are
  Anserini BM25 (k1=0.9, b=0.4) top-100 runs over the full collection; to reproduce them
  exactly pass such runs as ``dl19_candidates`` / ``dl20_candidates`` (e.g. written by
  ``python -m pyserini.search.lucene --index msmarco-v1-passage --topics dl19-passage --bm25
  --hits 100``), which then replace the scoreddocs.
* **dev600** cannot be reproduced from ir_datasets: its 600 queries and BM25 top-20
  candidates came from elsewhere. It is written only when ``dev_candidates`` (a TREC run
  over dev-small queries) is given: its queries that are dev-small topics become
  ``topics/dev600.tsv``, their dev-small judgments ``qrels/dev600.txt``, and its top
  ``depth`` candidates the dev600 run. Otherwise dev600 is skipped and the summary says so.
* **collection.tsv** holds only the passages needed (every judged passage and every candidate
  in the qrels and runs of the layout present in the target, which includes dev-small's judged
  passages), unless ``full_collection=True``. Needed passages that ir_datasets does not have are
  counted in the summary, not an error.

Everything is written atomically (temporary file, then rename) and the run is resumable:
a manifest (``.materialise.json``) records, for every finished file, a key of the inputs
that produced it and its size; a file whose entry matches is skipped without touching
ir_datasets, so an interrupted run picks up where it stopped (ir_datasets keeps its own
downloads in ``$IR_DATASETS_HOME``, default ``~/.ir_datasets``).

This module says what is written from what; the manifest and steps are in
:mod:`.materialise_plan`, the topics, qrels and run writers in :mod:`.materialise_writers`, the
collection in :mod:`.materialise_collection`, and loading ir_datasets ids in :mod:`.irds_loading`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, sha256_file
from .datasets import DATASETS
from .materialise_collection import needed_pids, pid_key, write_full_collection, write_needed_collection
from .materialise_plan import MANIFEST_NAME, Plan, key_fingerprint, source_key
from .materialise_writers import materialise_topics, write_given_run, write_qrels, write_scoreddocs_run
from .trec import read_qrels, read_run, read_topics

__all__ = ["DOCS_ID", "MANIFEST_NAME", "materialise"]

DOCS_ID = "msmarco-passage"


def materialise(
    target_dir: str | Path,
    *,
    dl19: Any = DATASETS["dl19"].ir_datasets_id,
    dl20: Any = DATASETS["dl20"].ir_datasets_id,
    dev: Any = DATASETS["dev-small"].ir_datasets_id,
    docs: Any = DOCS_ID,
    depth: int = 100,
    full_collection: bool = False,
    dev_candidates: str | Path | None = None,
    dl19_candidates: str | Path | None = None,
    dl20_candidates: str | Path | None = None,
    docstore: bool | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the ``msmarco-passage-mini`` layout into ``target_dir`` from ir_datasets.

    Needs internet the first time (ir_datasets downloads about 1 GB for the collection and
    small files for topics, qrels and candidate pools); raises a one-line
    :class:`~workbench.core.errors.WorkbenchError` when a download fails, saying so.

    Args:
        target_dir: directory to fill (created if needed).
        dl19, dl20, dev: ir_datasets ids (or ir_datasets dataset objects) for TREC DL 2019
            (judged topics), TREC DL 2020 (all 200 topics; qrels cover 54) and MS MARCO dev
            small (written as ``dev-subset``). dl19/dl20 also provide the candidate pools
            (``scoreddocs``).
        docs: ir_datasets id (or object) of the passage collection.
        depth: candidates kept per query from scored runs (scoreddocs with scores, or the
            ``*_candidates`` runs). The official MS MARCO pools have no scores and are kept
            whole (see the module docstring).
        full_collection: write all 8.8M passages (``docs_iter``) instead of only the
            passages judged or retrieved in the files written.
        dev_candidates: a TREC run over dev-small queries; when given, dev600 (topics, qrels
            and the ``runs/bm25-top20.dev600.trec`` candidates) is written from it, else
            dev600 is skipped (it cannot be derived from ir_datasets).
        dl19_candidates, dl20_candidates: TREC runs used instead of the scoreddocs as the
            ``bm25`` candidates (e.g. Anserini BM25 top-100 runs, as in the shared data).
        docstore: how the needed passages are looked up: True = ``docs_store().get_many``
            (builds the ir_datasets store on first use), False = one scan of ``docs_iter``,
            None = the store if it is already built, else a scan.
        force: rewrite every file even if the manifest says it is complete.
        progress: show tqdm progress bars.

    Returns:
        A summary: ``files`` (per relative path: status ``written`` / ``skipped (already
        complete)`` and counts), ``dev600`` (what happened to it), ``warnings``.
    """
    target = Path(target_dir).expanduser()
    if target.exists() and not target.is_dir():
        raise WorkbenchError("target exists and is not a directory", target)
    if depth < 1:
        raise WorkbenchError(f"depth must be at least 1, got {depth}")
    for name, given in (("dev_candidates", dev_candidates), ("dl19_candidates", dl19_candidates),
                        ("dl20_candidates", dl20_candidates)):
        if given is not None and not Path(given).is_file():
            raise WorkbenchError(f"{name} run not found", given)
    target.mkdir(parents=True, exist_ok=True)
    plan = Plan(target, progress, force)
    _materialise_trec(plan, {"dl19": (dl19, dl19_candidates), "dl20": (dl20, dl20_candidates),
                             "dev-small": (dev, None)}, depth)
    _materialise_dev600(plan, dev, dev_candidates, depth)
    _materialise_collection(plan, docs, full_collection, docstore)  # last: it depends on every file above
    return plan.summary


def _materialise_trec(plan: Plan, sources: dict[str, tuple[Any, str | Path | None]], depth: int) -> None:
    """Topics, qrels and BM25 candidates of each dataset (candidates from a given run or the scoreddocs)."""
    for name, (source, candidates) in sources.items():
        spec = DATASETS[name]
        get = plan.lazy(source)
        base = {"source": source_key(source)} if source_key(source) else None
        plan.step(spec.topics, base and {**base, "kind": "topics"},
                  lambda path, get=get, name=name: materialise_topics(plan, get(), name, path))
        plan.step(spec.qrels, base and {**base, "kind": "qrels"},
                  lambda path, get=get, name=name: write_qrels(plan, get(), name, path))
        if "bm25" not in spec.official_runs:
            continue
        rel = spec.official_runs["bm25"]
        if candidates is not None:
            qids = set(read_topics(plan.target / spec.topics)["qid"])
            key = base and {**base, "kind": "run", "candidates": sha256_file(candidates), "depth": depth}
            info = plan.step(rel, key, lambda path, c=Path(candidates), q=qids, name=name:
                             write_given_run(c, q, name, depth, path))
        else:
            key = base and {**base, "kind": "scoreddocs", "depth": depth}
            info = plan.step(rel, key, lambda path, get=get, name=name:
                             write_scoreddocs_run(plan, get(), name, depth, path))
        if not info.get("scored", True):
            plan.warn(f"{name}: the official scoreddocs have no scores (random order), so {rel} holds "
                      f"the whole pool (up to {info.get('max_per_query')} per query, score 0) instead of a "
                      f"top-{depth}; rerank it at depth >= {info.get('max_per_query')}, or pass "
                      f"{name}_candidates with a scored BM25 run")


def _materialise_dev600(plan: Plan, dev: Any, dev_candidates: str | Path | None, depth: int) -> None:
    """dev600: only from user-supplied candidates (see the module docstring)."""
    dev600 = DATASETS["dev600"]
    summary, target = plan.summary, plan.target
    if dev_candidates is None:
        summary["dev600"] = {"status": "skipped",
                             "reason": "its candidates do not come from ir_datasets; pass dev_candidates "
                                       "(a TREC run over dev-small queries) to write it"}
        plan.warn("dev600 skipped: " + summary["dev600"]["reason"])
        return
    small = DATASETS["dev-small"]
    dev_key = source_key(dev) and {"source": source_key(dev), "candidates": sha256_file(dev_candidates),
                                    "depth": depth}
    topics = read_topics(target / small.topics)
    run_rel = dev600.official_runs["bm25"]
    run_info = plan.step(run_rel, dev_key and {**dev_key, "kind": "run"},
                         lambda path: write_given_run(Path(dev_candidates), set(topics["qid"]),
                                                       "dev600", depth, path))
    qids = set(read_run(target / run_rel)["qid"])

    def write_dev_topics(path: Path) -> dict[str, Any]:
        with atomic_write(path) as handle:
            kept = topics[topics["qid"].isin(qids)]
            for qid, query in kept.itertuples(index=False):
                handle.write(f"{qid}\t{query}\n")
        return {"queries": int(len(kept))}

    def write_dev_qrels(path: Path) -> dict[str, Any]:
        qrels = read_qrels(target / small.qrels)
        kept = qrels[qrels["qid"].isin(qids)]
        if kept.empty:
            raise WorkbenchError("no dev-small judgments for the queries of dev_candidates", dev_candidates)
        with atomic_write(path) as handle:
            for qid, docno, label in kept.itertuples(index=False):
                handle.write(f"{qid} 0 {docno} {label}\n")
        return {"judgments": int(len(kept)), "judged_queries": int(kept["qid"].nunique())}

    plan.step(dev600.topics, dev_key and {**dev_key, "kind": "topics"}, write_dev_topics)
    plan.step(dev600.qrels, dev_key and {**dev_key, "kind": "qrels"}, write_dev_qrels)
    summary["dev600"] = {"status": "written", "queries": run_info["queries"]}


def _materialise_collection(plan: Plan, docs: Any, full_collection: bool, docstore: bool | None) -> None:
    """collection.tsv: every passage, or only those the qrels and runs written need."""
    docs_get = plan.lazy(docs)
    docs_base = {"source": source_key(docs)} if source_key(docs) else None
    if full_collection:
        plan.step("collection.tsv", docs_base and {**docs_base, "kind": "full"},
                  lambda path: write_full_collection(plan, docs_get(), path))
        return
    needed = needed_pids(plan.target)
    key = docs_base and {**docs_base, "kind": "needed", "pids": key_fingerprint(sorted(needed, key=pid_key))}
    info = plan.step("collection.tsv", key,
                     lambda path: write_needed_collection(plan, docs_get(), needed, docstore, path))
    if info.get("missing"):
        plan.warn(f"{info['missing']} needed passages are not in the collection "
                  f"(e.g. {', '.join(info.get('missing_examples', [])[:5])})")
