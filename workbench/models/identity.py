"""What identifies a model's outputs: its hub id or path plus the sha256 of the files that
determine its scores (weights, config, tokenizer, sentence-transformers modules), hashed once
per file version (size + mtime) and remembered. Caches are keyed by those hashes, never by the
directory a local model is installed in."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write, sha256_file

# Files whose bytes determine a model's scores; everything else in a model directory
# (README, other frameworks' weights, ONNX exports, training logs) is ignored.
_MODEL_FILE_PATTERNS = (
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json",
    "config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
    "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "*.tiktoken",
)


def _module_dirs(directory: Path) -> list[Path]:
    """The folders of the sentence-transformers modules listed in ``modules.json`` (pooling, dense
    layers), inside ``directory``; the transformer itself lives at the top level."""
    try:
        modules = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    root = directory.resolve()
    folders = []
    for module in modules if isinstance(modules, list) else []:
        sub = module.get("path", "") if isinstance(module, dict) else ""
        if isinstance(sub, str) and sub not in ("", ".") and (directory / sub).resolve().is_relative_to(root):
            folders.append(directory / sub)
    return folders


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory that determine its outputs, sorted by path."""
    found: set[Path] = set()
    for folder in [directory, *_module_dirs(directory)]:
        for pattern in _MODEL_FILE_PATTERNS:
            found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


_FILE_HASHES: dict[str, str] = {}


def hash_file_cached(path: Path) -> str:
    """sha256 of a file, remembered (in memory and under the cache dir) by real path, size and mtime."""
    real = path.resolve()
    stat = real.stat()
    key = f"{real}\x00{stat.st_size}\x00{stat.st_mtime_ns}"
    if key in _FILE_HASHES:
        return _FILE_HASHES[key]
    record = cache_dir("file-hashes") / (hashlib.sha1(key.encode("utf-8")).hexdigest() + ".json")
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            _FILE_HASHES[key] = stored["sha256"]
            return stored["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(real)
    try:
        with atomic_write(record) as handle:
            json.dump({"key": key, "sha256": digest}, handle)
    except OSError:
        pass  # a read-only cache only costs re-hashing
    _FILE_HASHES[key] = digest
    return digest


def model_file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of each file of ``model_files``, by path relative to ``directory``, in path order."""
    files = model_files(directory)
    if not files:
        raise WorkbenchError("model directory has no config, weights or tokenizer files", directory)
    return {p.relative_to(directory).as_posix(): hash_file_cached(p) for p in files}


def model_identity(model: str, directory: Path) -> dict[str, Any]:
    """What identifies a model: its hub id or absolute path (for manifests) and its files' sha256."""
    source = str(directory) if Path(model).expanduser().is_dir() else model
    return {"model": source, "files": model_file_hashes(directory)}


def files_digest(files: Mapping[str, str]) -> str:
    """One ``sha256:`` digest of ``model_file_hashes`` (relative paths and file hashes, in order)."""
    digest = hashlib.sha256()
    for name, file_hash in files.items():
        digest.update(f"{name}\0{file_hash}\0".encode())
    return "sha256:" + digest.hexdigest()


def scores_fingerprint(config: Mapping[str, Any], hub_id: bool = True) -> str:
    """Key of the scores (or vectors) of a model with this ``config``, which records the model's
    files' hashes and, under ``model``, its hub id or local path.

    The files' hashes identify the model, so where a local model is installed is left out: a
    copy elsewhere shares the cache. A hub id stays in the key unless ``hub_id=False``.
    """
    source = config.get("model")
    if source is not None and (not hub_id or Path(str(source)).is_absolute()):
        config = {key: value for key, value in config.items() if key != "model"}
    return fingerprint(dict(config))
