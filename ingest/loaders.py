"""Read an uploaded file (PDF, Word, PowerPoint, Excel, CSV, HTML, text or Markdown) into pages,
refusing what cannot be read."""

from __future__ import annotations

import hashlib
from pathlib import PurePath

from ingest.formats import Unreadable
from ingest.formats.ocr import Ocr
from ingest.formats.office import read_docx, read_pptx
from ingest.formats.pdf import read_pdf
from ingest.formats.sheets import read_csv, read_xlsx
from ingest.formats.text import read_text
from ingest.formats.web import read_html
from ingest.records import DocumentKind, LoadedDocument, Page

KINDS: dict[str, DocumentKind] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
}
SUPPORTED_SUFFIXES = tuple(KINDS)
# How the uploader and messages name the accepted types.
ACCEPTED_TYPES = "PDF, Word, PowerPoint, Excel, CSV, HTML, TXT or Markdown"

_MB = 1024 * 1024


class RejectedFile(Exception):
    """A file that cannot be ingested; `reason` is plain English and says what to do next."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source} {reason}")
        self.source = source
        self.reason = reason


def file_name(name: str) -> str:
    """The name an uploaded file is known by: its last path part, without control characters.

    Uploads and CLI paths may carry folders ("../../etc/x.txt", "C:\\docs\\x.txt"); the stored
    copy is named by its checksum anyway, and citations should name the file, not a path."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(char for char in last if char.isprintable()).strip()


def load_document(
    source: str, data: bytes, max_bytes: int, ocr: Ocr | None = None
) -> LoadedDocument:
    """Read `data` (the bytes of the file named `source`) into 1-based pages of text.

    PDF pages without a text layer are read by `ocr` (Tesseract, as on PATH by default)."""
    suffix = PurePath(source).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise RejectedFile(source, _unsupported_reason(suffix))
    if not data:
        raise RejectedFile(source, "is empty (0 bytes); check the file and upload it again")
    if len(data) > max_bytes:
        raise RejectedFile(
            source,
            f"is too large ({len(data) / _MB:.1f} MB; the limit is {max_bytes / _MB:g} MB); "
            "split it into smaller files and upload those",
        )
    try:
        pages = _read(kind, data, ocr or Ocr())
    except Unreadable as unreadable:
        raise RejectedFile(source, str(unreadable)) from unreadable
    return LoadedDocument(
        source=source,
        kind=kind,
        pages=pages,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        data=data,
    )


def _read(kind: DocumentKind, data: bytes, ocr: Ocr) -> list[Page]:
    match kind:
        case "pdf":
            return read_pdf(data, ocr)
        case "docx":
            return read_docx(data)
        case "pptx":
            return read_pptx(data)
        case "xlsx":
            return read_xlsx(data)
        case "csv":
            return read_csv(data)
        case "html":
            return read_html(data)
        case "text" | "markdown":
            return read_text(data)


def _unsupported_reason(suffix: str) -> str:
    supported = ", ".join(SUPPORTED_SUFFIXES)
    what = f"is a {suffix} file, which" if suffix else "has no file extension, so it"
    return f"{what} cannot be read; upload a file of one of these types: {supported}"
