"""Plain data records passed between ingestion, the index and the answering layer."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DocumentKind = Literal["pdf", "text", "markdown", "docx", "pptx", "html", "csv", "xlsx"]


@dataclass(frozen=True)
class Page:
    """One citable part of a document: a PDF page, a slide, a sheet or a heading's section.

    `number` is 1-based: the page as a PDF viewer shows it, the slide number, the sheet's position,
    the section's position (a text file is page 1). `label` names the part where "page N" would be
    wrong ("slide 3", "sheet Budget", a heading); `ocr` says its text was read from an image.
    """

    number: int
    text: str
    label: str | None = None
    ocr: bool = False


def doc_id_of_digest(sha256: str) -> str:
    """A document's id: the start of its content's SHA-256, so the same bytes get the same id."""
    return sha256[:16]


def doc_id_of(data: bytes) -> str:
    """The id a file's bytes will be indexed under, known before it is."""
    return doc_id_of_digest(hashlib.sha256(data).hexdigest())


def location_label(page: int, label: str | None = None, ocr: bool = False) -> str:
    """Where a passage stands, as every list of sources shows it: "page 4", "slide 3 (OCR)"."""
    where = label or f"page {page}"
    return f"{where} (OCR)" if ocr else where


@dataclass(frozen=True)
class LoadedDocument:
    """A file read into pages, not yet chunked or stored."""

    source: str
    kind: DocumentKind
    pages: list[Page]
    sha256: str
    size_bytes: int
    data: bytes = field(repr=False)

    @property
    def doc_id(self) -> str:
        return doc_id_of_digest(self.sha256)


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the catalog knows it."""

    doc_id: str
    source: str
    sha256: str
    kind: str
    pages: int
    chunks: int
    size_bytes: int
    added_at: str
    stored_path: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchHit:
    """One retrieved chunk; `score` is higher-is-better (cosine similarity for vector search)."""

    doc_id: str
    source: str
    page: int
    chunk_index: int
    score: float
    text: str
    # The part's name when "page N" would be wrong, and whether its text came from OCR.
    location: str | None = None
    ocr: bool = False

    @property
    def where(self) -> str:
        return location_label(self.page, self.location, self.ocr)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AddResult:
    """What happened to one file of an upload."""

    file: str
    status: Literal["added", "duplicate", "failed"]
    doc_id: str | None = None
    pages: int = 0
    chunks: int = 0
    error: str | None = None
    # Passages that read as instructions to a model (prompt injection), found at ingest.
    flagged: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
