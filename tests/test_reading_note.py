"""The note the chat shows while a model reads its passages: which files, which pages."""

from __future__ import annotations

from app.ui import reading_note
from llm.answering.pipeline import Source


def source(name: str, page: int, location: str | None = None, ocr: bool = False) -> Source:
    return Source(1, name, name, page, 0, 0.5, "text", None, location, ocr)


def test_each_file_is_named_once_with_its_pages_in_order() -> None:
    found = [source("R-data.pdf", 36), source("R-data.pdf", 15), source("R-intro.pdf", 4)]
    note = reading_note([*found, source("R-data.pdf", 15)])
    assert note == (
        "Reading R-data.pdf (pages 15 and 36); R-intro.pdf (page 4) and writing the answer…"
    )


def test_slides_and_scanned_pages_are_named_as_the_sources_name_them() -> None:
    note = reading_note([source("deck.pptx", 3, "slide 3"), source("scan.pdf", 2, ocr=True)])
    assert note == "Reading deck.pptx (slide 3); scan.pdf (page 2, OCR) and writing the answer…"


def test_a_file_name_cannot_make_a_link_in_the_note() -> None:
    note = reading_note([source("[free](http://example.invalid).pdf", 1)])
    assert "\\[free]" in note


def test_without_sources_it_only_says_the_answer_is_being_written() -> None:
    assert reading_note([]) == "Writing the answer…"
