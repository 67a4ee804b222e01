"""``collection.tsv`` from ir_datasets for :func:`~.materialise.materialise`: only the passages
the target's qrels and runs need (looked up in the docs store, or found in one scan), or the
whole collection in pid order.
"""
from __future__ import annotations

import contextlib
from array import array
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from .datasets import DATASETS
from .formats import collapse
from .materialise_plan import Plan, fetching_from_irds


def pid_key(pid: str) -> tuple[int, int | str]:
    """Numeric order for numeric ids (MS MARCO pids), string order after them otherwise."""
    return (0, int(pid)) if pid.isdigit() else (1, pid)


def needed_pids(target: Path) -> set[str]:
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


def write_needed_collection(plan: Plan, docs: Any, needed: set[str], docstore: bool | None,
                            path: Path) -> dict[str, Any]:
    found: dict[str, str] = {}
    with fetching_from_irds("the MS MARCO passage collection"):
        store = docs.docs_store()
        # A built docs store answers get_many at once; building one for 8.8M passages
        # costs far more time and disk (several GB) than one streaming pass over the
        # collection, so by default stream unless the store already exists.
        use_store = store.built() if docstore is None else docstore
        if use_store:
            wanted = sorted(needed, key=pid_key)
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
        for pid in sorted(found, key=pid_key):
            handle.write(f"{pid}\t{collapse(found[pid])}\n")
    missing = sorted(needed - found.keys(), key=pid_key)
    info: dict[str, Any] = {"passages": len(found), "mode": "needed",
                            "lookup": "docstore" if use_store else "scan", "missing": len(missing)}
    if missing:
        info["missing_examples"] = missing[:20]
    return info


def write_full_collection(plan: Plan, docs: Any, path: Path) -> dict[str, Any]:
    # Keys and line offsets are kept in compact arrays (8.8M passages: about 140 MB), not the
    # texts, so the rare out-of-order source can be re-sorted by seeking to each line.
    positions = array("q")
    keys: Any = array("q")  # numeric pids; becomes a list of pid_key tuples if one is not numeric
    in_order, last = True, None
    with fetching_from_irds("the MS MARCO passage collection"), atomic_write(path, "wb", encoding=None) as handle:
        position = 0
        for doc in plan.bar(docs.docs_iter(), "passages (all)", total=_docs_total(docs), unit="doc"):
            key = pid_key(doc.doc_id)
            if last is not None and key <= last:
                in_order = False
            last = key
            if isinstance(keys, array) and key[0] != 0:
                keys = [(0, k) for k in keys]
            keys.append(key[1] if isinstance(keys, array) else key)
            positions.append(position)
            line = f"{doc.doc_id}\t{collapse(doc.text)}\n".encode("utf-8")
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
