"""The passage collection: ``pid<TAB>text`` lines, loaded into memory for reranking."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..core.errors import WorkbenchError
from ..core.files import sha256_file, text_lines


class Collection:
    """Passage texts by id, read from a TSV file; duplicate ids and malformed lines are errors."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise WorkbenchError("collection file not found", self.path)
        self._texts: dict[str, str] | None = None
        self._fingerprint: str | None = None
        #: where the texts came from when ``path`` is a conversion of another file (a dataset file's source)
        self.source: Path | None = None

    @property
    def texts(self) -> dict[str, str]:
        if self._texts is None:
            from .formats import check_document, warn_empty_documents

            texts: dict[str, str] = {}
            lines: dict[str, int] = {}
            empty = 0
            for number, line in text_lines(self.path):
                pid, sep, text = line.partition("\t")
                if not sep or not pid.strip():
                    raise WorkbenchError("malformed collection line: expected 'pid<TAB>text'", self.path, number)
                empty += check_document(pid, text, lines, self.path, number, noun="passage")
                texts[pid] = text
            if not texts:
                raise WorkbenchError("collection is empty", self.path)
            warn_empty_documents(self.source or self.path, empty)
            self._texts = texts
        return self._texts

    @property
    def fingerprint(self) -> str:
        """sha256 of the collection file, the key of every cache derived from it."""
        if self._fingerprint is None:
            self._fingerprint = sha256_file(self.path)
        return self._fingerprint

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.texts.items())

    def text(self, pid: str) -> str:
        try:
            return self.texts[pid]
        except KeyError:
            raise WorkbenchError(f"passage {pid!r} is not in the collection", self.path) from None

    def get(self, pid: str, default: str = "") -> str:
        return self.texts.get(pid, default)

    def __contains__(self, pid: object) -> bool:
        return pid in self.texts

    def texts_for(self, pids: Iterable[str]) -> list[str]:
        return [self.text(pid) for pid in pids]


class LazyTexts:
    """Texts read on demand from a store too large to load (an ir_datasets docs store, a Lucene
    index's stored documents): subclasses implement :meth:`text`; the rest follows."""

    def text(self, pid: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def texts_for(self, pids: Iterable[str]) -> list[str]:
        return [self.text(str(pid)) for pid in pids]

    def get(self, pid: str, default: str = "") -> str:
        try:
            return self.text(pid)
        except WorkbenchError:
            return default

    def __contains__(self, pid: object) -> bool:
        if not isinstance(pid, str):
            return False
        try:
            self.text(pid)
        except WorkbenchError:
            return False
        return True  # an empty document is in the collection too
