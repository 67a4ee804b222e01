"""Local test collections declared in a small TOML file (one dataset per file)::

    # datasets/cacm.toml
    name = "cacm"
    description = "CACM: 3,204 abstracts, 64 topics (52 judged), binary qrels"
    collection = "../../shared/data/cacm/cacm.tar.gz"   # tsv, jsonl, trec (SGML) or html (directory / .tar.gz)
    topics = "../../shared/data/cacm/topics.cacm.txt"    # tsv, trec or cacm
    qrels = "../../shared/data/cacm/qrels.cacm.txt"      # TREC qrels
    metrics = ["map", "precision@30", "ndcg@10"]
    comparability = "..."

Paths are relative to the file's directory (``~`` and ``$VARIABLES`` expanded). Formats are
told from the file names unless ``collection_format`` / ``topics_format`` say; ``topic_field``
picks a TREC topic's ``title`` (default), ``desc`` or ``narr``. ``[runs]`` names candidate runs
(``name = "path"``, used as ``official-<name>``); ``query_types`` a label file overriding the
rules. ``workbench dataset add`` writes such a file.

A collection or topics file in another format than TSV is converted once into the workbench's
``id<TAB>text`` layout under the cache directory, keyed by the source's checksum, so the Lucene
index, the vector caches and every run key follow the source's content.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import sha256_file
from .dataset import Dataset, DatasetSpec, default_metrics
from .formats import (COLLECTION_FORMATS, TOPIC_FIELDS, TOPICS_FORMATS, guess_collection_format,
                      guess_topics_format, read_collection, read_topic_records, write_collection, write_topics)

LOCAL_COMPARABILITY = "a local collection: comparable with figures on the same collection, topics and qrels"
#: bumped when a conversion's output changes (v2: empty documents kept, a byte-order mark dropped)
CONVERTER_VERSION = "declared-collection/v2"

#: key -> (type, required, help): every key a dataset file may have
KEYS: dict[str, tuple[type | tuple[type, ...], bool, str]] = {
    "name": (str, False, "the dataset's name (default: the file name without .toml)"),
    "description": (str, False, "one line shown in reports"),
    "collection": (str, True, "the documents: TSV (id<TAB>text), JSONL, TREC SGML, or HTML files (dir / .tar.gz)"),
    "collection_format": (str, False, "tsv, jsonl, trec or html (default: from the file name)"),
    "topics": (str, True, "the queries: TSV (qid<TAB>query), TREC topics or CACM topics"),
    "topics_format": (str, False, "tsv, trec or cacm (default: from the file's first tag)"),
    "topic_field": (str, False, "title (default), desc or narr, for TREC topics"),
    "qrels": (str, True, "TREC qrels (qid iteration docid grade)"),
    "relevance_level": (int, False, "minimum grade counted relevant by binary metrics (default 1)"),
    "metrics": (list, False, "headline metrics (default map, precision@30, ndcg@10)"),
    "comparability": (str, False, "what this dataset's numbers can be compared with"),
    "query_types": (str, False, "a label file (qid<TAB>label[<TAB>reason]) overriding the rules"),
    "runs": (dict, False, "candidate runs: name = path (systems official-<name>)"),
}


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*{re.escape(key)}\s*=", text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise WorkbenchError(f"cannot read the dataset file ({error.strerror})", path) from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise WorkbenchError("the dataset file is not UTF-8 text", path, line) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+)", str(error))
        line = getattr(error, "lineno", None) or (int(found.group(1)) if found else None)
        message = str(error).split(" (at ")[0]
        raise WorkbenchError(f"malformed TOML: {message}", path, line) from None


def declared_name(path: Path) -> str:
    """The name a dataset file declares (cheap: no path is checked)."""
    values, _ = _read_toml(path)
    name = values.get("name", path.stem)
    return name if isinstance(name, str) and name else path.stem


def resolve_path(value: str, base: Path) -> Path:
    """A path from a dataset file: ``~`` and ``$VARIABLES`` expanded, relative to ``base``."""
    expanded = Path(os.path.expanduser(os.path.expandvars(value)))
    return (expanded if expanded.is_absolute() else base / expanded).resolve()


@dataclass(frozen=True)
class Declaration:
    """A validated dataset file."""

    path: Path
    name: str
    values: dict[str, Any]
    collection: Path
    collection_format: str
    topics: Path
    topics_format: str
    topic_field: str
    qrels: Path
    runs: dict[str, Path]
    query_types: Path | None


def parse_declaration(path: Path) -> Declaration:
    """Read and check a dataset file: known keys of the right types, existing paths, known
    formats; each problem one line naming the file and the key's line."""
    path = Path(path)
    values, text = _read_toml(path)
    for key, value in values.items():
        if key not in KEYS:
            raise WorkbenchError(f"unknown key {key!r} in the dataset file; known keys: {', '.join(KEYS)}",
                                 path, _line_of(text, key))
        kind = KEYS[key][0]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise WorkbenchError(f"{key} must be a {expected}, not {type(value).__name__}", path, _line_of(text, key))
    for key, (_, required, _) in KEYS.items():
        if required and key not in values:
            raise WorkbenchError(f"the dataset file lacks {key!r} ({KEYS[key][2]})", path)
    base = path.resolve().parent

    def existing(key: str, value: str) -> Path:
        resolved = resolve_path(value, base)
        if not resolved.exists():
            raise WorkbenchError(f"{key}: {resolved} does not exist", path, _line_of(text, key))
        return resolved

    collection = existing("collection", values["collection"])
    topics = existing("topics", values["topics"])
    qrels = existing("qrels", values["qrels"])
    collection_format = values.get("collection_format") or guess_collection_format(collection)
    if collection_format not in COLLECTION_FORMATS:
        raise WorkbenchError(f"unknown collection format {collection_format!r}; known: "
                             f"{', '.join(COLLECTION_FORMATS)}", path, _line_of(text, "collection_format"))
    topics_format = values.get("topics_format") or guess_topics_format(topics)
    if topics_format not in TOPICS_FORMATS:
        raise WorkbenchError(f"unknown topics format {topics_format!r}; known: {', '.join(TOPICS_FORMATS)}",
                             path, _line_of(text, "topics_format"))
    topic_field = values.get("topic_field", "title")
    if topic_field not in TOPIC_FIELDS:
        raise WorkbenchError(f"unknown topic field {topic_field!r}; known: {', '.join(TOPIC_FIELDS)}",
                             path, _line_of(text, "topic_field"))
    level = values.get("relevance_level", 1)
    if level < 1:
        raise WorkbenchError("relevance_level must be at least 1", path, _line_of(text, "relevance_level"))
    runs = {}
    for run_name, run_path in values.get("runs", {}).items():
        if not isinstance(run_path, str):
            raise WorkbenchError(f"runs.{run_name} must be a path", path, _line_of(text, run_name))
        runs[run_name] = existing(run_name, run_path)
    metrics = values.get("metrics")
    if metrics is not None:
        if not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise WorkbenchError("metrics must be a non-empty list of metric names", path, _line_of(text, "metrics"))
        from ..core.measures import resolve_measure

        for metric in metrics:
            try:
                resolve_measure(metric)
            except WorkbenchError as error:
                raise WorkbenchError(str(error), path, _line_of(text, "metrics")) from None
    query_types = existing("query_types", values["query_types"]) if "query_types" in values else None
    name = values.get("name") or path.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise WorkbenchError(f"dataset name {name!r}: use letters, digits, '.', '_' and '-'", path,
                             _line_of(text, "name"))
    return Declaration(path, name, values, collection, collection_format, topics, topics_format, topic_field,
                       qrels, runs, query_types)


def _source_fingerprint(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return fingerprint([(str(p.relative_to(path)), sha256_file(p)) for p in files])


class DeclaredDataset(Dataset):
    """A local test collection from a dataset file; collection and topics in other formats than
    TSV are converted once into the cache (keyed by the source's checksum)."""

    def __init__(self, declaration: Declaration):
        values = declaration.values
        spec = DatasetSpec(
            name=declaration.name, topics=str(declaration.topics), qrels=str(declaration.qrels),
            relevance_level=int(values.get("relevance_level", 1)),
            description=values.get("description", f"local collection declared in {declaration.path.name}"),
            official_runs={name: str(path) for name, path in declaration.runs.items()},
            collection=str(declaration.collection), metrics=tuple(values.get("metrics") or default_metrics()),
            comparability=values.get("comparability", LOCAL_COMPARABILITY), source=f"declared in {declaration.path}",
            query_types=str(declaration.query_types or ""), complete_collection=True)
        super().__init__(spec, declaration.path.parent)
        self.declaration = declaration

    def _converted(self, kind: str, source: Path, fmt: str, convert) -> Path:
        key = fingerprint(CONVERTER_VERSION, kind, fmt, self.declaration.topic_field if kind == "topics" else "",
                          _source_fingerprint(source))
        target = cache_dir("datasets", f"{self.slug}-{key[:16]}") / f"{kind}.tsv"
        if not target.is_file():
            convert(target)
        return target

    @cached_property
    def collection_path(self) -> Path:  # type: ignore[override]
        d = self.declaration
        if d.collection_format == "tsv" and d.collection.is_file() and not d.collection.name.endswith(".gz"):
            return d.collection
        return self._converted("collection", d.collection, d.collection_format, lambda target: write_collection(
            read_collection(d.collection, d.collection_format), d.collection, target))

    @cached_property
    def topics_path(self) -> Path:  # type: ignore[override]
        d = self.declaration
        if d.topics_format == "tsv" and not d.topics.name.endswith(".gz"):
            return d.topics
        return self._converted("topics", d.topics, d.topics_format, lambda target: write_topics(
            read_topic_records(d.topics, d.topics_format, d.topic_field), d.topics, target))

    @property
    def qrels_path(self) -> Path:
        return self.declaration.qrels

    def collection(self):
        """The documents as a collection file (converted into the cache if need be), named by its source."""
        from .collection import Collection

        collection = Collection(self.collection_path)
        collection.source = self.declaration.collection
        return collection

    def _run_path(self, system: str) -> Path:
        return self.declaration.runs[system]


def load_declared(path: Path) -> DeclaredDataset:
    """The dataset a dataset file declares (its paths and keys checked)."""
    return DeclaredDataset(parse_declaration(path))


def write_declaration(path: Path, values: dict[str, Any]) -> Path:
    """Write a dataset file (after checking it parses back: nothing is left behind otherwise)."""
    from ..core.files import atomic_write

    lines = []
    for key, value in values.items():
        if key == "runs" or value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    if values.get("runs"):
        lines.append("\n[runs]")
        lines += [f"{_toml_key(name)} = {_toml_value(run)}" for name, run in values["runs"].items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)
    with atomic_write(path) as handle:
        handle.write(text)
    return path


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is a JSON string
