"""Splitting real documents into page-exact, numbered chunks."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from langchain_core.documents import Document

from ingest.chunking import document_title, embedding_text, split_document
from ingest.loaders import load_document
from ingest.records import LoadedDocument, Page

LIMIT = 50 * 1024 * 1024


def _load(folder: Path, name: str) -> LoadedDocument:
    return load_document(name, (folder / name).read_bytes(), LIMIT)


def _spans(doc: LoadedDocument, chunks: list[Document]) -> list[tuple[int, int, int]]:
    """(page, start, end) of each chunk inside its page's text; fails if a chunk is not there."""
    texts = {page.number: page.text for page in doc.pages}
    spans: list[tuple[int, int, int]] = []
    for chunk in chunks:
        page = chunk.metadata["page"]
        after = spans[-1][1] + 1 if spans and spans[-1][0] == page else 0
        start = texts[page].find(chunk.page_content, after)
        assert start >= 0, f"chunk {chunk.metadata['chunk_index']} is not on page {page}"
        spans.append((page, start, start + len(chunk.page_content)))
    return spans


@pytest.fixture(scope="module")
def four_pages(good_pdfs: Path) -> LoadedDocument:
    return _load(good_pdfs, "pdflatex-4-pages.pdf")


@pytest.fixture(scope="module")
def multicolumn(good_pdfs: Path) -> LoadedDocument:
    return _load(good_pdfs, "multicolumn.pdf")


def test_chunks_carry_document_metadata_and_contiguous_indexes(
    four_pages: LoadedDocument,
) -> None:
    chunks = split_document(four_pages, chunk_size=400, chunk_overlap=80)

    assert len(chunks) > 4
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.metadata == {
            "doc_id": four_pages.doc_id,
            "source": "pdflatex-4-pages.pdf",
            "page": chunk.metadata["page"],
            "chunk_index": chunk.metadata["chunk_index"],
            "sha256": four_pages.sha256,
            "title": document_title(four_pages),
        }
    pages = [c.metadata["page"] for c in chunks]
    assert pages == sorted(pages)
    assert set(pages) == {1, 2, 3, 4}


def test_every_chunk_lies_within_its_page_and_the_size(four_pages: LoadedDocument) -> None:
    chunks = split_document(four_pages, chunk_size=400, chunk_overlap=80)

    _spans(four_pages, chunks)
    assert all(0 < len(c.page_content.strip()) <= 400 for c in chunks)


def test_consecutive_chunks_overlap_by_at_most_the_overlap(multicolumn: LoadedDocument) -> None:
    spans = _spans(multicolumn, split_document(multicolumn, chunk_size=300, chunk_overlap=60))

    same_page = [(a, b) for a, b in pairwise(spans) if a[0] == b[0]]
    assert same_page
    assert all(0 < a[2] - b[1] <= 60 for a, b in same_page)


def test_zero_overlap_shares_no_text(multicolumn: LoadedDocument) -> None:
    spans = _spans(multicolumn, split_document(multicolumn, chunk_size=300, chunk_overlap=0))

    assert all(b[1] >= a[2] for a, b in pairwise(spans) if a[0] == b[0])


def test_markdown_breaks_at_headings() -> None:
    text = "# Alpha\n" + "alpha words " * 20 + "\n## Beta\n" + "beta words " * 20
    doc = load_document("notes.md", text.encode(), LIMIT)

    chunks = split_document(doc, chunk_size=300, chunk_overlap=30)

    # The plain splitter would end the first chunk with the "## Beta" line.
    assert [c.page_content.splitlines()[0] for c in chunks] == ["# Alpha", "## Beta"]
    assert "Beta" not in chunks[0].page_content


def test_blank_pages_give_no_chunks_and_keep_true_page_numbers() -> None:
    # A hand-made record: the loader drops blank pages, but the splitter must not rely on it.
    doc = LoadedDocument(
        source="gaps.pdf",
        kind="pdf",
        pages=[Page(1, " \n\n "), Page(3, "Only page three has text.")],
        sha256="ab" * 32,
        size_bytes=10,
        data=b"",
    )

    chunks = split_document(doc, chunk_size=100, chunk_overlap=10)

    assert [(c.metadata["page"], c.metadata["chunk_index"]) for c in chunks] == [(3, 0)]
    assert chunks[0].page_content == "Only page three has text."


def test_the_embedded_text_leads_with_the_document_title(
    good_pdfs: Path, four_pages: LoadedDocument
) -> None:
    crazy = _load(good_pdfs, "crazyones-pdfa.pdf")
    assert document_title(crazy) == "The Crazy Ones"
    # pdflatex-4-pages.pdf opens with a line of prose, not a title: the file name stands in.
    assert document_title(four_pages) == "pdflatex-4-pages"
    _, second, *_ = split_document(four_pages, chunk_size=400, chunk_overlap=80)
    assert embedding_text(second) == f"pdflatex-4-pages\n{second.page_content}"
    [whole] = split_document(crazy, chunk_size=1000, chunk_overlap=100)
    assert embedding_text(whole) == whole.page_content, "a chunk that opens with it keeps one title"
