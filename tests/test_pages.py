"""Page preview parts on real PDFs: pages drawn, and each indexed passage found where it stands."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image

from ingest.chunking import split_document
from ingest.formats.ocr import Ocr
from ingest.loaders import load_document
from ingest.pages import (
    Box,
    passage_span,
    pdf_page_count,
    pdf_passage_boxes,
    render_pdf_page,
    text_excerpt,
)
from tests.made_documents import scanned_warranty

MULTI_PAGE = [
    "multicolumn.pdf",
    "pdflatex-4-pages.pdf",
    "google-doc-document.pdf",
    "crazyones-pdfa.pdf",
    "pdflatex-outline.pdf",
]


def chunks_of(path: Path) -> list[tuple[int, str]]:
    """The passages the index stores for `path`, exactly as ingestion cuts them."""
    doc = load_document(path.name, path.read_bytes(), 50 * 1024 * 1024)
    return [(c.metadata["page"], c.page_content) for c in split_document(doc, 500, 50)]


def ink_share(image: Image.Image, box: Box) -> float:
    """Share of dark pixels inside `box`: text drawn there makes it clearly above zero."""
    width, height = image.size
    area = image.convert("L").crop(
        (
            int(box.left * width),
            int(box.top * height),
            int((box.left + box.width) * width) + 1,
            int((box.top + box.height) * height) + 1,
        )
    )
    pixels = list(area.getdata())
    return sum(value < 128 for value in pixels) / max(1, len(pixels))


def text_in(data: bytes, page: int, box: Box) -> str:
    """What PDFium reads inside `box`, asked independently of how the box was found."""
    with pypdfium2.PdfDocument(data) as document:
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        text_page = pdf_page.get_textpage()
        return text_page.get_text_bounded(
            left=box.left * width,
            bottom=(1 - box.top - box.height) * height,
            right=(box.left + box.width) * width,
            top=(1 - box.top) * height,
        )


@pytest.mark.parametrize("name", MULTI_PAGE)
def test_every_indexed_passage_is_marked_on_its_page(good_pdfs: Path, name: str) -> None:
    path = good_pdfs / name
    data = path.read_bytes()
    for page, passage in chunks_of(path):
        boxes = pdf_passage_boxes(data, page, passage)
        assert boxes, f"{name} page {page}: not placed: {passage[:80]!r}"
        marked = " ".join(text_in(data, page, box) for box in boxes)
        words = re.findall(r"\w+", passage)
        # The marked lines hold the passage's first and last words (pypdf and PDFium agree).
        assert words[0] in marked and words[-1] in marked, (
            name,
            page,
            passage[:60],
            marked[:200],
        )


def test_marks_sit_on_the_drawn_text(good_pdfs: Path) -> None:
    data = (good_pdfs / "multicolumn.pdf").read_bytes()
    page, passage = chunks_of(good_pdfs / "multicolumn.pdf")[3]
    image = Image.open(io.BytesIO(render_pdf_page(data, page).image))
    boxes = pdf_passage_boxes(data, page, passage)
    assert all(ink_share(image, box) > 0.04 for box in boxes)
    # A box moved into the empty top margin holds no ink: the check can tell the two apart.
    assert ink_share(image, Box(boxes[0].left, 0.02, boxes[0].width, boxes[0].height)) < 0.01


def test_a_rotated_page_is_drawn_and_marked_as_a_viewer_shows_it(good_pdfs: Path) -> None:
    data = (good_pdfs / "habibi-rotated.pdf").read_bytes()
    with pypdfium2.PdfDocument(data) as document:
        assert document[1].get_rotation() == 180
    image = Image.open(io.BytesIO(render_pdf_page(data, 2).image))
    [box] = pdf_passage_boxes(data, 2, "habibi")
    # The file has the word at the top left; turned upside down it shows at the bottom right.
    assert box.top > 0.5 and box.left > 0.5
    assert ink_share(image, box) > 0.04


def test_pages_are_drawn_to_width_and_counted(good_pdfs: Path) -> None:
    data = (good_pdfs / "pdflatex-4-pages.pdf").read_bytes()
    assert pdf_page_count(data) == 4
    drawn = render_pdf_page(data, 3, width_px=600)
    assert (drawn.page, drawn.pages, drawn.width, drawn.mime) == (3, 4, 600, "image/webp")
    assert drawn.height == pytest.approx(600 * 841.89 / 595.28, abs=2)
    assert Image.open(io.BytesIO(drawn.image)).size == (drawn.width, drawn.height)
    with pytest.raises(ValueError, match="page 5 is outside 1–4"):
        render_pdf_page(data, 5)


def test_a_passage_from_elsewhere_is_not_marked(good_pdfs: Path) -> None:
    data = (good_pdfs / "pdflatex-4-pages.pdf").read_bytes()
    elsewhere = chunks_of(good_pdfs / "crazyones-pdfa.pdf")[0][1]
    assert pdf_passage_boxes(data, 1, elsewhere) == []


def test_words_are_matched_across_spacing_hyphens_and_ligatures() -> None:
    page = "The ofﬁce is open\nfrom nine to ﬁve, Mon-\nday to Friday. Parking is free."
    span = passage_span(page, "office is open from nine to five, Monday to Friday.")
    assert span is not None
    assert page[span[0] : span[1]] == "ofﬁce is open\nfrom nine to ﬁve, Mon-\nday to Friday"
    assert passage_span(page, "The museum closes on Sundays at noon.") is None
    assert passage_span(page, "") is None


def test_a_text_passage_is_cut_out_with_its_surroundings() -> None:
    text = "intro " * 400 + "The warranty lasts two years. " + "outro " * 400
    excerpt = text_excerpt(text, "the warranty lasts two years", context_chars=60)
    assert excerpt.passage == "The warranty lasts two years"
    assert len(excerpt.before) == 60 and excerpt.cut_before and excerpt.cut_after
    missing = text_excerpt(text, "nothing like this here at all", context_chars=60)
    assert missing.passage == "" and missing.before == "" and not missing.cut_before


def test_a_scanned_page_is_marked_by_the_words_ocr_reads(tesseract: Ocr) -> None:
    data = scanned_warranty()
    doc = load_document("scan.pdf", data, 50 * 1024 * 1024, tesseract)
    [passage] = [c.page_content for c in split_document(doc, 500, 50) if c.metadata["page"] == 2]
    assert "warranty lasts seven years" in passage
    boxes = pdf_passage_boxes(data, 2, "warranty lasts seven years", tesseract)
    image = Image.open(io.BytesIO(render_pdf_page(data, 2).image))
    # One line, drawn second of three at the top left of the page, and inked.
    [line] = boxes
    assert 0.05 < line.left < 0.2 and 0.15 < line.top < 0.4 and line.width > 0.3
    assert ink_share(image, line) > 0.04
    assert len(pdf_passage_boxes(data, 2, passage, tesseract)) == 3  # the whole page's passage
    assert pdf_passage_boxes(data, 2, "the frame and the fork", tesseract) == []  # page 1's
    assert pdf_passage_boxes(data, 2, passage) == []  # without OCR, a scan has nothing to match
