"""Split a loaded document into page-exact chunks carrying the metadata used for citations."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from ingest.records import LoadedDocument


def split_document(doc: LoadedDocument, chunk_size: int, chunk_overlap: int) -> list[Document]:
    """Chunks of at most `chunk_size` characters, numbered 0..n-1 in reading order.

    Each page is split on its own, so a chunk never spans two pages and its page number is exact.
    """
    splitter = _splitter(doc.kind, chunk_size, chunk_overlap)
    chunks: list[Document] = []
    for page in doc.pages:
        for text in splitter.split_text(page.text):
            if not text.strip():
                continue
            metadata = {
                "doc_id": doc.doc_id,
                "source": doc.source,
                "page": page.number,
                "chunk_index": len(chunks),
                "sha256": doc.sha256,
            }
            chunks.append(Document(page_content=text, metadata=metadata))
    return chunks


def _splitter(kind: str, chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if kind == "markdown":
        # Prefers breaking at headings, code fences and rules before paragraphs and words.
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
