"""Plain data records passed between ingestion, the index and the answering layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Page:
    """One page of text; `number` is 1-based as a PDF viewer shows it (text files are page 1)."""

    number: int
    text: str


@dataclass(frozen=True)
class LoadedDocument:
    """A file read into pages, not yet chunked or stored."""

    source: str
    kind: Literal["pdf", "text", "markdown"]
    pages: list[Page]
    sha256: str
    size_bytes: int
    data: bytes = field(repr=False)

    @property
    def doc_id(self) -> str:
        return self.sha256[:16]


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
