"""Reading a user's collection and topics in the formats test collections ship in.

Collections (``collection_format``): ``tsv`` (``id<TAB>text``), ``jsonl`` (Pyserini's
``{"id": ..., "contents": ...}``; BEIR's ``_id``/``title``/``text`` too), ``trec`` (TREC SGML
``<DOC><DOCNO>..</DOCNO>..</DOC>``) and ``html`` (a directory or ``.tar.gz`` of HTML files, one
document per file named by its file name without extension, as Anserini's ``HtmlCollection``
reads them: CACM ships so). Topics (``topics_format``): ``tsv`` (``qid<TAB>query``), ``trec``
(``<top><num>..<title>..``; ``topic_field`` picks title, desc or narr) and ``cacm`` (CACM's
``<DOC><DOCNO> n </DOCNO> text </DOC>`` blocks, read as Anserini's Cacm topic reader does).

Every reader yields ``(id, text, line)`` and the writers below turn them into the one layout the
rest of the workbench reads (a ``pid<TAB>text`` collection, a ``qid<TAB>query`` topics file),
refusing duplicate ids and ids with whitespace (and empty queries) with one line naming file and
line. Whitespace inside a text is collapsed to single spaces: Lucene's analyzer and every tokenizer
here split on it anyway, so no term changes.

Empty documents are kept, whichever source a collection comes from (a file, a dataset file,
ir_datasets): real collections hold some (Cranfield's 471 and 995). They stay in the collection
(its count, the texts a reranker reads) and BM25 never retrieves them (no term matches; Anserini
leaves them out of the Lucene index); one warning per collection names it and counts them
(:func:`warn_empty_documents`).
"""
from __future__ import annotations

import json
import logging
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

from ..core.errors import WorkbenchError
from ..core.files import atomic_write, text_lines

COLLECTION_FORMATS = ("tsv", "jsonl", "trec", "html")
TOPICS_FORMATS = ("tsv", "trec", "cacm")
TOPIC_FIELDS = ("title", "desc", "narr")

log = logging.getLogger(__name__)

Record = tuple[str, str, int]  # (id, text, line or document number for errors)


def collapse(text: str) -> str:
    """One line of text: tabs, newlines and runs of whitespace become single spaces, none at the ends."""
    return " ".join(text.split())


def guess_collection_format(path: Path) -> str:
    """The format a collection path's name suggests (``tsv``, ``jsonl``, ``trec``, ``html``)."""
    name = path.name.lower()
    if path.is_dir() or name.endswith((".tar.gz", ".tgz")):
        return "html"
    if name.endswith((".jsonl", ".json", ".jsonl.gz")):
        return "jsonl"
    if name.endswith((".tsv", ".tsv.gz", ".txt")):
        return "tsv"
    if name.endswith((".trec", ".sgml", ".xml")):
        return "trec"
    raise WorkbenchError("cannot tell the collection's format from its name: set collection_format to one of "
                         + ", ".join(COLLECTION_FORMATS), path)


def guess_topics_format(path: Path) -> str:
    """``trec`` or ``cacm`` when the file starts with such a tag, else ``tsv``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096).lstrip().lower()
    except OSError as error:
        raise WorkbenchError(f"cannot read the topics ({error.strerror})", path) from None
    if head.startswith("<top>"):
        return "trec"
    if head.startswith("<doc>"):
        return "cacm"
    return "tsv"


# --- collections -------------------------------------------------------------------------------

def read_collection(path: Path, fmt: str) -> Iterator[Record]:
    """The documents of a collection in ``fmt`` as ``(id, text, line)``."""
    readers = {"tsv": _tsv_documents, "jsonl": _jsonl_documents, "trec": _trec_documents,
               "html": _html_documents}
    if fmt not in readers:
        raise WorkbenchError(f"unknown collection format {fmt!r}; known: {', '.join(COLLECTION_FORMATS)}", path)
    if not path.exists():
        raise WorkbenchError("collection not found", path)
    return readers[fmt](path)


def _tsv_records(path: Path, what: str, layout: str) -> Iterator[Record]:
    """``(id, rest, line)`` of each non-blank ``id<TAB>rest`` line of a ``what`` file (collection,
    topics); a line without a tab is an error naming the ``layout`` expected."""
    for number, line in text_lines(path):
        key, sep, rest = line.partition("\t")
        if not sep:
            raise WorkbenchError(f"malformed {what} line: expected '{layout}'", path, number)
        yield key, rest, number


def _tsv_documents(path: Path) -> Iterator[Record]:
    return _tsv_records(path, "collection", "id<TAB>text")


def _jsonl_documents(path: Path) -> Iterator[Record]:
    for number, line in text_lines(path):
        try:
            record = json.loads(line)
        except ValueError as error:
            raise WorkbenchError(f"malformed JSON line ({error.msg})", path, number) from None
        if not isinstance(record, dict):
            raise WorkbenchError("malformed JSON line: expected an object with 'id' and 'contents'", path, number)
        docid = next((record[k] for k in ("id", "docid", "_id") if k in record), None)
        if "contents" in record:
            text = record["contents"]
        elif "text" in record or "title" in record:  # BEIR's corpus.jsonl: title and body joined
            text = " ".join(str(record.get(k) or "") for k in ("title", "text")).strip()
        else:
            text = None
        if docid is None or text is None:
            raise WorkbenchError("malformed JSON line: expected 'id' and 'contents' (Pyserini's JsonCollection)",
                                 path, number)
        yield str(docid), str(text), number


_DOC = re.compile(r"<DOC>(.*?)</DOC>", re.S | re.I)
_DOCNO = re.compile(r"<DOCNO>(.*?)</DOCNO>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")


class _LineCounter:
    """Line numbers of increasing offsets into a text, counted once (linear, not quadratic)."""

    def __init__(self, text: str):
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _sgml_blocks(text: str, pattern: re.Pattern, path: Path, missing: str) -> Iterator[tuple[str, int]]:
    """``(body, line)`` of every block ``pattern`` matches; none at all is the error ``missing``."""
    found = False
    lines = _LineCounter(text)
    for match in pattern.finditer(text):
        found = True
        yield match.group(1), lines.at(match.start())
    if not found:
        raise WorkbenchError(missing, path)


def _docno_blocks(text: str, path: Path, what: str, item: str) -> Iterator[Record]:
    """``(docno, the block without its <DOCNO>, line)`` of every ``<DOC>`` block of a ``what`` file
    (TREC SGML documents, CACM topics); an ``item`` without ``<DOCNO>`` is an error."""
    for body, line in _sgml_blocks(text, _DOC, path, f"no <DOC> ... </DOC> block found: not a {what}"):
        docno = _DOCNO.search(body)
        if docno is None:
            raise WorkbenchError(f"{item} without <DOCNO>", path, line)
        yield docno.group(1).strip(), _DOCNO.sub(" ", body), line


def _trec_documents(path: Path) -> Iterator[Record]:
    text = "\n".join(line for _, line in text_lines(path, blank=True))
    for docno, content, line in _docno_blocks(text, path, "TREC SGML collection", "TREC document"):
        yield docno, _TAG.sub(" ", content), line


class _HtmlText(HTMLParser):
    """The text of an HTML page as a browser shows it: tags gone, entities decoded, script and
    style left out, a space between block elements (what jsoup's ``text()`` gives Anserini)."""

    BLOCKS = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5",
              "h6", "pre", "title", "body", "head", "html", "section", "article", "header", "footer", "hr",
              "blockquote", "dd", "dt", "dl"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return collapse("".join(parser.parts))


def _html_documents(path: Path) -> Iterator[Record]:
    def decode(raw: bytes, where: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    number = 0
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        for file in files:
            if file.name.endswith((".tar.gz", ".tgz")):
                yield from _html_documents(file)
                continue
            number += 1
            yield _html_id(file.name), html_text(decode(file.read_bytes(), str(file))), number
        if number == 0 and not files:
            raise WorkbenchError("the HTML collection directory is empty", path)
        return
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile() or Path(member.name).name.startswith("."):
                    continue
                number += 1
                handle = archive.extractfile(member)
                raw = handle.read() if handle is not None else b""
                yield _html_id(Path(member.name).name), html_text(decode(raw, member.name)), number
    except (tarfile.TarError, OSError, EOFError) as error:
        raise WorkbenchError(f"not a readable .tar.gz of HTML files ({error})", path) from None


def _html_id(name: str) -> str:
    for suffix in (".html", ".htm", ".xhtml"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name else name


def write_collection(records: Iterable[Record], source: Path, target: Path) -> int:
    """Write ``records`` as a ``pid<TAB>text`` collection (atomically); duplicate ids and ids with
    whitespace are errors naming ``source`` and the record's line, empty texts are kept (whoever
    reads the collection warns about them). Returns the count."""
    seen: dict[str, int] = {}
    with atomic_write(target) as out:
        for docid, text, line in records:
            check_document(docid, text, seen, source, line)
            out.write(f"{docid}\t{collapse(text)}\n")
        if not seen:  # inside the write: an empty file is never committed
            raise WorkbenchError("the collection has no documents", source)
    return len(seen)


def check_document(docid: str, text: str, seen: dict[str, int], source: Path, line: int,
                   noun: str = "document") -> bool:
    """One document's id checked (``seen`` maps ids to their lines, updated); ``noun`` names it in
    errors (a collection file says "passage"). Returns whether its text is empty (kept: the
    reader counts them for :func:`warn_empty_documents`)."""
    if not docid or any(c.isspace() for c in docid):
        raise WorkbenchError(f"{noun} id {docid!r} is empty or contains whitespace", source, line)
    if docid in seen:
        raise WorkbenchError(f"duplicate {noun} id {docid!r} (first on line {seen[docid]})", source, line)
    seen[docid] = line
    return not text.strip()


_WARNED_EMPTY: set[tuple[str, int]] = set()


def warn_empty_documents(source: str | Path, count: int) -> None:
    """The one warning line about a collection's empty documents: how many, naming the collection
    (once per process). They stay in the collection; BM25 never retrieves them."""
    if count <= 0 or (str(source), count) in _WARNED_EMPTY:
        return
    _WARNED_EMPTY.add((str(source), count))
    log.warning("%s: %d %s an empty text: kept in the collection (BM25 never retrieves %s)", source, count,
                "documents have" if count != 1 else "document has", "them" if count != 1 else "it")


# --- topics ------------------------------------------------------------------------------------

def read_topic_records(path: Path, fmt: str, field: str = "title") -> Iterator[Record]:
    """The topics of a file in ``fmt`` as ``(qid, query, line)``."""
    if fmt not in TOPICS_FORMATS:
        raise WorkbenchError(f"unknown topics format {fmt!r}; known: {', '.join(TOPICS_FORMATS)}", path)
    if field not in TOPIC_FIELDS:
        raise WorkbenchError(f"unknown topic field {field!r}; known: {', '.join(TOPIC_FIELDS)}", path)
    if not path.is_file():
        raise WorkbenchError("topics file not found", path)
    if fmt == "tsv":
        for qid, query, number in _tsv_records(path, "topics", "qid<TAB>query"):
            yield qid.strip(), query, number
        return
    text = "\n".join(line for _, line in text_lines(path, blank=True))
    if fmt == "cacm":
        yield from _cacm_topics(text, path)
    else:
        yield from _trec_topics(text, path, field)


def _cacm_topics(text: str, path: Path) -> Iterator[Record]:
    # Anserini's CacmTopicReader: the number inside <DOCNO>, the title = every other line of the block
    for number, content, line in _docno_blocks(text, path, "CACM topics file", "CACM topic"):
        yield number, collapse(content), line


_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_FIELD = re.compile(r"<(num|title|desc|narr)>", re.I)


def _trec_topics(text: str, path: Path, field: str) -> Iterator[Record]:
    # Anserini's TrecTopicReader: <num> Number: 301, <title> .., <desc> Description: .., <narr> Narrative: ..
    for body, line in _sgml_blocks(text, _TOP, path, "no <top> ... </top> block found: not a TREC topics file"):
        parts: dict[str, str] = {}
        marks = list(_FIELD.finditer(body))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
            value = _TAG.sub(" ", body[mark.end():end])
            parts[mark.group(1).lower()] = collapse(value)
        if "num" not in parts:
            raise WorkbenchError("TREC topic without <num>", path, line)
        qid = re.sub(r"^(Number:)\s*", "", parts["num"], flags=re.I).strip()
        value = parts.get(field, "")
        value = re.sub(r"^(Topic:|Description:|Narrative:)\s*", "", value, flags=re.I)
        yield qid, value, line


def write_topics(records: Iterable[Record], source: Path, target: Path) -> int:
    """Write topics as ``qid<TAB>query`` (atomically); empty queries, duplicate ids and ids with
    whitespace are errors naming ``source`` and the line."""
    seen: dict[str, int] = {}
    with atomic_write(target) as out:
        for qid, query, line in records:
            query = collapse(query)
            if not qid or any(c.isspace() for c in qid):
                raise WorkbenchError(f"query id {qid!r} is empty or contains whitespace", source, line)
            if not query:
                raise WorkbenchError(f"empty query for qid {qid!r}", source, line)
            if qid in seen:
                raise WorkbenchError(f"duplicate query id {qid!r} (first on line {seen[qid]})", source, line)
            seen[qid] = line
            out.write(f"{qid}\t{query}\n")
        if not seen:  # inside the write: an empty file is never committed
            raise WorkbenchError("the topics file has no topics", source)
    return len(seen)

