"""Datasets by ir_datasets id, spelled as PyTerrier spells them: ``irds:<id>``
(``irds:msmarco-passage/trec-dl-hard``, ``irds:beir/scifact/test``, ...).

* **Queries**: the query text is the queries' ``text`` field where they have one (MS MARCO, TREC
  DL, BEIR, most ids), else ``title`` (TREC ad hoc topics: the title, as Anserini searches them),
  else ``query``; :data:`QUERY_FIELD_OVERRIDES` names exceptions per family.
* **Qrels** as the dataset defines them; binary metrics count grade >= 2 on TREC DL ids (the
  official convention, as for ``dl19``/``dl20``) and >= 1 elsewhere.
* **Texts** come from ir_datasets' docs store, fetched only for the documents a system needs
  (never the whole 8.8M/138M collection in memory); a document's ``title`` and body are joined
  into one text, of which a reranker reads its first ``max_length`` tokens (FirstP).
* **Candidates**: the dataset's ``scoreddocs`` (where it has them) as the run ``official-scoreddocs``.
* **As every source**: empty documents are kept (one warning counts them), and the default headline
  metrics follow the collection (:func:`~.dataset.default_metrics`): MS MARCO's for MS MARCO ids
  (``msmarco-*``, TREC DL), else those a declared collection gets (MAP, P@30, NDCG@10).

Topics, qrels and scoreddocs are written once under the cache directory, so every run key and
evaluation is keyed by their checksums as for any other dataset. Offline, an id whose files were
never downloaded fails with one line naming it.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..core.cache import cache_dir, fingerprint
from ..core.errors import WorkbenchError
from ..core.files import atomic_write
from .collection import LazyTexts
from .dataset import Dataset, DatasetSpec, default_metrics
from .formats import collapse, warn_empty_documents, write_topics
from .irds_loading import import_ir_datasets, irds_failure, load_irds

QUERY_FIELDS = ("text", "title", "query")
#: id prefix -> query field, where the default order above picks the wrong one
QUERY_FIELD_OVERRIDES: dict[str, str] = {}
BODY_FIELDS = ("text", "body", "contents", "abstract", "passage")
#: ``texts`` is refused beyond this many documents: a collection that size is read through the docs store
MAX_IN_MEMORY_DOCS = 2_000_000
SCOREDDOCS = "scoreddocs"


def _version() -> str:
    return import_ir_datasets().__version__


def is_trec_dl(irds_id: str) -> bool:
    return "trec-dl" in irds_id or "dl-hard" in irds_id


def is_ms_marco(irds_id: str) -> bool:
    """An MS MARCO collection (passage or document, v1 or v2, TREC DL included): it keeps MS MARCO's metrics."""
    return irds_id.startswith("msmarco-") or is_trec_dl(irds_id)


def query_field(irds_id: str, fields: tuple[str, ...]) -> str:
    """Which field of a dataset's queries is the query text."""
    for prefix, field in QUERY_FIELD_OVERRIDES.items():
        if irds_id.startswith(prefix) and field in fields:
            return field
    for field in QUERY_FIELDS:
        if field in fields:
            return field
    return fields[1]


def document_text(doc: Any) -> str:
    """A document as one text: its ``title`` and body joined (body: the first of
    :data:`BODY_FIELDS`; else every text field but the id)."""
    fields = doc._fields
    body = next((f for f in BODY_FIELDS if f in fields), None)
    if body is None:
        parts = [getattr(doc, f) for f in fields[1:] if isinstance(getattr(doc, f), str) and f != "url"]
    else:
        parts = [getattr(doc, "title", "") if "title" in fields else "", getattr(doc, body)]
    return collapse(" ".join(p for p in parts if isinstance(p, str) and p))


class DocsStoreCollection(LazyTexts):
    """Document texts read through an ir_datasets docs store, only those asked for (kept once read)."""

    def __init__(self, irds_id: str, handle: Any):
        self.irds_id = irds_id
        self.handle = handle
        self.docs_id = import_ir_datasets().docs_parent_id(irds_id) or irds_id
        self.path = Path(f"irds-{self.docs_id.replace('/', '--')}")
        self.fingerprint = fingerprint("irds-docs/v1", self.docs_id, _version())
        self._texts: dict[str, str] = {}
        self._complete = False  # every text in _texts
        self._store = None

    def _docs_store(self):
        if self._store is None:
            try:
                self._store = self.handle.docs_store()
            except Exception as error:  # noqa: BLE001 - any failure of a third-party loader: one line
                raise irds_failure(self.irds_id, error) from None
        return self._store

    def texts_for(self, pids: Iterable[str]) -> list[str]:
        pids = [str(p) for p in pids]
        missing = [p for p in dict.fromkeys(pids) if p not in self._texts]
        if missing:
            try:
                found = self._docs_store().get_many(missing)
            except WorkbenchError:
                raise
            except Exception as error:  # noqa: BLE001
                raise irds_failure(self.irds_id, error) from None
            for pid, doc in found.items():
                self._texts[pid] = document_text(doc)
            absent = [p for p in missing if p not in self._texts]
            if absent:
                raise WorkbenchError(f"document {absent[0]!r} is not in the collection of {self.irds_id!r}")
        return [self._texts[p] for p in pids]

    def text(self, pid: str) -> str:
        return self.texts_for([pid])[0]

    def __len__(self) -> int:
        try:
            count = self.handle.docs_count()  # None where ir_datasets has no count recorded
        except Exception as error:  # noqa: BLE001
            raise irds_failure(self.irds_id, error) from None
        return int(count) if count is not None else sum(1 for _ in self)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Every document, streamed (for indexing): never all in memory. Empty documents are kept,
        counted in one warning at the end (as for every source)."""
        empty = 0
        try:
            for doc in self.handle.docs_iter():
                text = document_text(doc)
                empty += not text
                yield doc.doc_id, text
        except Exception as error:  # noqa: BLE001
            raise irds_failure(self.irds_id, error) from None
        warn_empty_documents(f"irds:{self.docs_id}", empty)

    @property
    def texts(self) -> dict[str, str]:
        """Every text in memory: only for collections small enough (TF-IDF fits on it)."""
        if not self._complete:
            try:
                count = self.handle.docs_count()
            except Exception as error:  # noqa: BLE001
                raise irds_failure(self.irds_id, error) from None
            if count is not None and count > MAX_IN_MEMORY_DOCS:
                raise WorkbenchError(f"the collection of {self.irds_id!r} has {count:,} documents: too many to hold "
                                     "in memory (TF-IDF and whitening fit on the whole collection); use a reranker "
                                     "that reads only the candidates' texts")
            for number, (docid, text) in enumerate(self, 1):
                if number > MAX_IN_MEMORY_DOCS:
                    raise WorkbenchError(f"the collection of {self.irds_id!r} has over {MAX_IN_MEMORY_DOCS:,} "
                                         "documents: too many to hold in memory")
                self._texts[docid] = text
            self._complete = True
        return self._texts


class IrdsDataset(Dataset):
    """A dataset read through ir_datasets; topics, qrels and scoreddocs cached as files."""

    def __init__(self, irds_id: str, handle: Any):
        self.irds_id = irds_id
        self.handle = handle
        trec_dl = is_trec_dl(irds_id)
        self.directory = cache_dir("irds", irds_id.replace("/", "--") + "-" + fingerprint(irds_id, _version())[:8])
        runs = {SCOREDDOCS: "scoreddocs.trec"} if handle.has_scoreddocs() else {}
        spec = DatasetSpec(
            name=f"irds:{irds_id}", topics="topics.tsv", qrels="qrels.txt", relevance_level=2 if trec_dl else 1,
            description=f"ir_datasets {irds_id}", official_runs=runs, ir_datasets_id=irds_id,
            metrics=default_metrics(ms_marco=is_ms_marco(irds_id), trec_dl=trec_dl),
            comparability=(f"comparable with published figures on {irds_id} when the candidates come from its full "
                           "collection (scoreddocs, a prebuilt index)"),
            texts=("title and body joined; a reranker reads the first max_length tokens (FirstP)"
                   if handle.has_docs() and "title" in handle.docs_cls()._fields else ""),
            source="ir_datasets", complete_collection=True)
        super().__init__(spec, self.directory)

    def _materialise(self, name: str, write) -> Path:
        path = self.directory / name
        if not path.is_file():
            try:
                write(path)
            except WorkbenchError:
                raise
            except Exception as error:  # noqa: BLE001 - network, missing files, a loader's own error
                raise irds_failure(self.irds_id, error) from None
        return path

    @cached_property
    def topics_path(self) -> Path:  # type: ignore[override]
        if not self.handle.has_queries():
            raise WorkbenchError(f"ir_datasets {self.irds_id!r} has no queries")
        fields = self.handle.queries_cls()._fields
        field = query_field(self.irds_id, fields)
        source = Path(f"ir_datasets:{self.irds_id}")
        return self._materialise("topics.tsv", lambda path: write_topics(
            ((q.query_id, getattr(q, field), n) for n, q in enumerate(self.handle.queries_iter(), 1)), source, path))

    @cached_property
    def qrels_path(self) -> Path:  # type: ignore[override]
        if not self.handle.has_qrels():
            raise WorkbenchError(f"ir_datasets {self.irds_id!r} has no qrels: it cannot be evaluated")

        def write(path: Path) -> None:
            with atomic_write(path) as out:
                for qrel in self.handle.qrels_iter():
                    out.write(f"{qrel.query_id} 0 {qrel.doc_id} {int(qrel.relevance)}\n")
        return self._materialise("qrels.txt", write)

    def _run_path(self, system: str) -> Path:
        def write(path: Path) -> None:
            with atomic_write(path) as out:
                for sd in self.handle.scoreddocs_iter():
                    out.write(f"{sd.query_id} Q0 {sd.doc_id} 0 {float(sd.score):.6f} scoreddocs\n")
        return self._materialise("scoreddocs.trec", write)

    def collection(self) -> DocsStoreCollection:  # type: ignore[override]
        if not self.handle.has_docs():
            raise WorkbenchError(f"ir_datasets {self.irds_id!r} has no documents")
        return DocsStoreCollection(self.irds_id, self.handle)

    @property
    def collection_path(self) -> Path:  # type: ignore[override]
        raise WorkbenchError(f"ir_datasets {self.irds_id!r} has no collection file: its texts come from the docs store")

    @property
    def collection_key(self) -> str:
        return "irds:" + (import_ir_datasets().docs_parent_id(self.irds_id) or self.irds_id)


def irds_dataset(irds_id: str) -> IrdsDataset:
    """The dataset of an ir_datasets id (nothing is read until it is used)."""
    return IrdsDataset(irds_id, load_irds(irds_id))
