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
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import socket
from array import array
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, sha256_file
from .datasets import DATA_ENV, DATASETS
from .trec import read_qrels, read_run, read_topics, sort_run, truncate_run, write_run

MANIFEST_NAME = ".materialise.json"
DOCS_ID = "msmarco-passage"
# Bumped when the output format of any file changes, so old outputs are not reused.
_FORMAT_VERSION = 1

_OFFLINE_HINT = (
    "materialising the data needs internet access (ir_datasets downloads MS MARCO and TREC "
    f"files); run `workbench data` on a machine with internet, or point {DATA_ENV} "
    "(or --data-dir) at an existing copy of the data directory"
)


# --------------------------------------------------------------------------- helpers

def _collapse(text: str) -> str:
    """One line of text: tabs, newlines and runs of spaces become single spaces."""
    return " ".join(text.split())


def _pid_key(pid: str) -> tuple[int, int | str]:
    """Numeric order for numeric ids (MS MARCO pids), string order after them otherwise."""
    return (0, int(pid)) if pid.isdigit() else (1, pid)


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _source_key(source: Any) -> str | None:
    """A stable identity for an ir_datasets source: its id, or None for a dataset object
    (which cannot be fingerprinted, so files from it are always rewritten)."""
    return source if isinstance(source, str) else None


def _network_error(error: BaseException) -> BaseException | None:
    """The failed download / connection inside ``error`` (itself, a cause, or a wrapped one), if any."""
    network_types: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
    try:  # ir_datasets downloads through requests
        import requests

        network_types += (requests.exceptions.RequestException,)
    except ImportError:  # pragma: no cover - requests is an ir_datasets dependency
        pass
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        item = stack.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, network_types):
            return item
        if isinstance(item, BaseException):
            # RuntimeError('All download sources failed', [(mirror, exception), ...])
            stack.extend(a for a in item.args if isinstance(a, (BaseException, list, tuple)))
            stack.extend(e for e in (item.__cause__, item.__context__) if e is not None)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def _short(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: " + (text if len(text) <= limit else text[:limit] + "...")


@contextlib.contextmanager
def _fetching(what: str) -> Iterator[None]:
    """Turn ir_datasets' download failures into one clear WorkbenchError."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as error:  # noqa: BLE001 - re-raised with context below
        network = _network_error(error)
        if network is not None:
            raise WorkbenchError(
                f"could not download {what} through ir_datasets ({_short(network)}); " + _OFFLINE_HINT) from error
        raise WorkbenchError(f"ir_datasets failed while reading {what} ({_short(error)})") from error


def _ir_datasets():
    try:
        import ir_datasets
    except ImportError as error:
        raise WorkbenchError("ir_datasets is not installed (pip install ir-datasets); " + _OFFLINE_HINT) from error
    return ir_datasets


def _load(source: Any) -> Any:
    """An ir_datasets dataset from an id (``msmarco-passage/trec-dl-2019/judged``) or as given.

    Loading only builds the dataset object; nothing is downloaded until it is iterated.
    """
    if not isinstance(source, str):
        return source
    ir_datasets = _ir_datasets()
    try:
        return ir_datasets.load(source)
    except KeyError:
        raise WorkbenchError(f"unknown ir_datasets id {source!r}") from None


class _Manifest:
    """Which output files are complete, and from which inputs (``.materialise.json``)."""

    def __init__(self, target: Path):
        self.path = target / MANIFEST_NAME
        self.target = target
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                self.entries = dict(json.loads(self.path.read_text(encoding="utf-8")).get("files", {}))
            except (ValueError, AttributeError):
                self.entries = {}  # unreadable manifest: everything is redone

    def complete(self, rel: str, key: str | None) -> dict[str, Any] | None:
        """The recorded info of ``rel`` if it exists, was made from ``key`` and has its recorded size."""
        entry = self.entries.get(rel)
        path = self.target / rel
        if key is None or entry is None or entry.get("key") != key or not path.is_file():
            return None
        if path.stat().st_size != entry.get("size"):
            return None
        return dict(entry.get("info", {}))

    def record(self, rel: str, key: str | None, info: Mapping[str, Any]) -> None:
        self.entries[rel] = {"key": key, "size": (self.target / rel).stat().st_size, "info": dict(info)}
        with atomic_write(self.path) as handle:
            json.dump({"format": _FORMAT_VERSION, "files": self.entries}, handle, indent=1, sort_keys=True)
            handle.write("\n")


class _Plan:
    """Bookkeeping shared by the steps of one materialise call."""

    def __init__(self, target: Path, progress: bool, force: bool):
        self.target = target
        self.progress = progress
        self.force = force
        self.manifest = _Manifest(target)
        self.summary: dict[str, Any] = {"target_dir": str(target), "files": {}, "warnings": []}
        self._loaded: dict[int, Any] = {}

    def lazy(self, source: Any):
        """A function loading ``source`` on first call: a fully materialised target needs no
        ir_datasets access."""
        def get():
            if id(source) not in self._loaded:
                self._loaded[id(source)] = _load(source)
            return self._loaded[id(source)]
        return get

    def step(self, rel: str, key_obj: Any, build) -> dict[str, Any]:
        """Produce ``rel`` with ``build(path) -> info`` unless a matching complete copy exists."""
        key = None if key_obj is None else _fingerprint({"v": _FORMAT_VERSION, "file": rel, **key_obj})
        info = None if self.force else self.manifest.complete(rel, key)
        if info is not None:
            self.summary["files"][rel] = {"status": "skipped (already complete)", **info}
            return info
        info = build(self.target / rel)
        self.manifest.record(rel, key, info)
        self.summary["files"][rel] = {"status": "written", **info}
        return info

    def warn(self, message: str) -> None:
        self.summary["warnings"].append(message)

    def bar(self, iterable: Iterable, desc: str, total: int | None = None, unit: str = "it"):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not self.progress,
                    dynamic_ncols=True, leave=False)


# --------------------------------------------------------------------------- writers

def _write_topics(plan: _Plan, dataset: Any, label: str, path: Path) -> dict[str, Any]:
    count = 0
    with _fetching(f"the {label} queries"), atomic_write(path) as handle:
        for query in plan.bar(dataset.queries_iter(), f"{label} queries", unit="query"):
            text = _collapse(query.text)
            if not text:  # read_topics rejects empty queries; say which one instead of failing later
                raise WorkbenchError(f"ir_datasets gave an empty query for qid {query.query_id!r} ({label})")
            handle.write(f"{query.query_id}\t{text}\n")
            count += 1
    if count == 0:
        path.unlink()
        raise WorkbenchError(f"ir_datasets gave no queries for {label}")
    return {"queries": count}


def _write_qrels(plan: _Plan, dataset: Any, label: str, path: Path) -> dict[str, Any]:
    count, qids = 0, set()
    with _fetching(f"the {label} qrels"), atomic_write(path) as handle:
        for qrel in plan.bar(dataset.qrels_iter(), f"{label} qrels", unit="qrel"):
            iteration = getattr(qrel, "iteration", "0") or "0"
            handle.write(f"{qrel.query_id} {iteration} {qrel.doc_id} {int(qrel.relevance)}\n")
            count += 1
            qids.add(qrel.query_id)
    if count == 0:
        path.unlink()
        raise WorkbenchError(f"ir_datasets gave no qrels for {label}")
    return {"judgments": count, "judged_queries": len(qids)}


def _run_info(run: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    per_query = run.groupby("qid").size()
    return {"queries": int(per_query.size), "candidates": int(len(run)),
            "max_per_query": int(per_query.max()), **extra}


def _write_scoreddocs_run(plan: _Plan, dataset: Any, label: str, depth: int, path: Path) -> dict[str, Any]:
    """Top-``depth`` of the scoreddocs by score, or the whole pool when it has no scores."""
    qids, docnos, scores = [], [], []
    with _fetching(f"the {label} candidates (scoreddocs)"):
        for doc in plan.bar(dataset.scoreddocs_iter(), f"{label} candidates", unit="doc"):
            qids.append(doc.query_id)
            docnos.append(doc.doc_id)
            scores.append(float(doc.score))
    if not qids:
        raise WorkbenchError(f"ir_datasets gave no scoreddocs for {label}")
    run = pd.DataFrame({"qid": qids, "docno": docnos, "score": scores})
    run = run.drop_duplicates(["qid", "docno"], keep="first")
    # The official MS MARCO / TREC DL pools carry no scores (all 0, random order): any
    # top-depth cut of them would be arbitrary, so keep the whole pool in that case.
    scored = bool((run.groupby("qid")["score"].nunique() > 1).any())
    ranked = sort_run(run)
    if scored:
        ranked = truncate_run(ranked, depth)
    write_run(ranked, path, tag="ir_datasets-scoreddocs")
    return _run_info(ranked, source="scoreddocs", scored=scored, depth=depth if scored else None)


def _write_given_run(candidates: Path, topic_qids: set[str], label: str, depth: int, path: Path) -> dict[str, Any]:
    """A user-supplied TREC run restricted to the dataset's topics and cut to ``depth``."""
    run = read_run(candidates)
    run = run[run["qid"].isin(topic_qids)]
    if run.empty:
        raise WorkbenchError(f"the {label} candidate run has no query of the {label} topics", candidates)
    ranked = truncate_run(sort_run(run), depth)
    write_run(ranked, path, tag=f"{label}-candidates")
    return _run_info(ranked, source=str(candidates), scored=True, depth=depth)


# --------------------------------------------------------------------------- collection

def _needed_pids(target: Path) -> set[str]:
    """Every passage id judged or retrieved in the qrels/runs present in ``target``."""
    rels: set[str] = set()
    for spec in DATASETS.values():
        rels.add(spec.qrels)
        rels.update(spec.official_runs.values())
    pids: set[str] = set()
    for rel in sorted(rels):
        path = target / rel
        if not path.is_file():
            continue
        # qrels 'qid iter pid grade' and runs 'qid Q0 pid rank score tag': the pid is field 3
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 3:
                    pids.add(fields[2])
    return pids


def _docs_total(docs: Any) -> int | None:
    with contextlib.suppress(Exception):
        count = docs.docs_count()
        if count:
            return int(count)
    return None


def _write_needed_collection(plan: _Plan, docs: Any, needed: set[str], docstore: bool | None,
                             path: Path) -> dict[str, Any]:
    found: dict[str, str] = {}
    with _fetching("the MS MARCO passage collection"):
        store = docs.docs_store()
        # A built docs store answers get_many at once; building one for 8.8M passages
        # costs far more time and disk (several GB) than one streaming pass over the
        # collection, so by default stream unless the store already exists.
        use_store = store.built() if docstore is None else docstore
        if use_store:
            wanted = sorted(needed, key=_pid_key)
            chunk = 10_000
            with tqdm(total=len(wanted), desc="passages (docs store)", unit="doc",
                      disable=not plan.progress, dynamic_ncols=True, leave=False) as bar:
                for start in range(0, len(wanted), chunk):
                    batch = wanted[start:start + chunk]
                    for pid, doc in store.get_many(batch).items():
                        found[pid] = doc.text
                    bar.update(len(batch))
        else:
            for doc in plan.bar(docs.docs_iter(), "passages (scan)", total=_docs_total(docs), unit="doc"):
                if doc.doc_id in needed:
                    found[doc.doc_id] = doc.text
                    if len(found) == len(needed):
                        break
    if not found:
        raise WorkbenchError("none of the needed passages is in the ir_datasets collection")
    with atomic_write(path) as handle:
        for pid in sorted(found, key=_pid_key):
            handle.write(f"{pid}\t{_collapse(found[pid])}\n")
    missing = sorted(needed - found.keys(), key=_pid_key)
    info: dict[str, Any] = {"passages": len(found), "mode": "needed",
                            "lookup": "docstore" if use_store else "scan", "missing": len(missing)}
    if missing:
        info["missing_examples"] = missing[:20]
    return info


def _write_full_collection(plan: _Plan, docs: Any, path: Path) -> dict[str, Any]:
    # Keys and line offsets are kept in compact arrays (8.8M passages: about 140 MB), not the
    # texts, so the rare out-of-order source can be re-sorted by seeking to each line.
    positions = array("q")
    keys: Any = array("q")  # numeric pids; becomes a list of _pid_key tuples if one is not numeric
    in_order, last = True, None
    with _fetching("the MS MARCO passage collection"), atomic_write(path, "wb", encoding=None) as handle:
        position = 0
        for doc in plan.bar(docs.docs_iter(), "passages (all)", total=_docs_total(docs), unit="doc"):
            key = _pid_key(doc.doc_id)
            if last is not None and key <= last:
                in_order = False
            last = key
            if isinstance(keys, array) and key[0] != 0:
                keys = [(0, k) for k in keys]
            keys.append(key[1] if isinstance(keys, array) else key)
            positions.append(position)
            line = f"{doc.doc_id}\t{_collapse(doc.text)}\n".encode("utf-8")
            handle.write(line)
            position += len(line)
    if not positions:
        raise WorkbenchError("ir_datasets gave no passages")
    if not in_order:
        # MS MARCO is stored in pid order, so this is rare.
        if isinstance(keys, array):
            order = np.argsort(np.frombuffer(keys, dtype=np.int64), kind="stable")
        else:
            order = sorted(range(len(keys)), key=keys.__getitem__)
        with open(path, "rb") as source, atomic_write(path, "wb", encoding=None) as handle:
            for index in plan.bar(order, "sorting passages", unit="doc"):
                source.seek(positions[int(index)])
                handle.write(source.readline())
    return {"passages": len(positions), "mode": "full", "lookup": "scan", "resorted": not in_order}


# --------------------------------------------------------------------------- public API

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
    plan = _Plan(target, progress, force)
    _materialise_trec(plan, {"dl19": (dl19, dl19_candidates), "dl20": (dl20, dl20_candidates),
                             "dev-small": (dev, None)}, depth)
    _materialise_dev600(plan, dev, dev_candidates, depth)
    _materialise_collection(plan, docs, full_collection, docstore)  # last: it depends on every file above
    return plan.summary


def _materialise_trec(plan: _Plan, sources: dict[str, tuple[Any, str | Path | None]], depth: int) -> None:
    """Topics, qrels and BM25 candidates of each dataset (candidates from a given run or the scoreddocs)."""
    for name, (source, candidates) in sources.items():
        spec = DATASETS[name]
        get = plan.lazy(source)
        base = {"source": _source_key(source)} if _source_key(source) else None
        plan.step(spec.topics, base and {**base, "kind": "topics"},
                  lambda path, get=get, name=name: _write_topics(plan, get(), name, path))
        plan.step(spec.qrels, base and {**base, "kind": "qrels"},
                  lambda path, get=get, name=name: _write_qrels(plan, get(), name, path))
        if "bm25" not in spec.official_runs:
            continue
        rel = spec.official_runs["bm25"]
        if candidates is not None:
            qids = set(read_topics(plan.target / spec.topics)["qid"])
            key = base and {**base, "kind": "run", "candidates": sha256_file(candidates), "depth": depth}
            info = plan.step(rel, key, lambda path, c=Path(candidates), q=qids, name=name:
                             _write_given_run(c, q, name, depth, path))
        else:
            key = base and {**base, "kind": "scoreddocs", "depth": depth}
            info = plan.step(rel, key, lambda path, get=get, name=name:
                             _write_scoreddocs_run(plan, get(), name, depth, path))
        if not info.get("scored", True):
            plan.warn(f"{name}: the official scoreddocs have no scores (random order), so {rel} holds "
                      f"the whole pool (up to {info.get('max_per_query')} per query, score 0) instead of a "
                      f"top-{depth}; rerank it at depth >= {info.get('max_per_query')}, or pass "
                      f"{name}_candidates with a scored BM25 run")


def _materialise_dev600(plan: _Plan, dev: Any, dev_candidates: str | Path | None, depth: int) -> None:
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
    dev_key = _source_key(dev) and {"source": _source_key(dev), "candidates": sha256_file(dev_candidates),
                                    "depth": depth}
    topics = read_topics(target / small.topics)
    run_rel = dev600.official_runs["bm25"]
    run_info = plan.step(run_rel, dev_key and {**dev_key, "kind": "run"},
                         lambda path: _write_given_run(Path(dev_candidates), set(topics["qid"]),
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


def _materialise_collection(plan: _Plan, docs: Any, full_collection: bool, docstore: bool | None) -> None:
    """collection.tsv: every passage, or only those the qrels and runs written need."""
    docs_get = plan.lazy(docs)
    docs_base = {"source": _source_key(docs)} if _source_key(docs) else None
    if full_collection:
        plan.step("collection.tsv", docs_base and {**docs_base, "kind": "full"},
                  lambda path: _write_full_collection(plan, docs_get(), path))
        return
    needed = _needed_pids(plan.target)
    key = docs_base and {**docs_base, "kind": "needed", "pids": _fingerprint(sorted(needed, key=_pid_key))}
    info = plan.step("collection.tsv", key,
                     lambda path: _write_needed_collection(plan, docs_get(), needed, docstore, path))
    if info.get("missing"):
        plan.warn(f"{info['missing']} needed passages are not in the collection "
                  f"(e.g. {', '.join(info.get('missing_examples', [])[:5])})")
