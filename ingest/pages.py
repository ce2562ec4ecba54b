"""A stored document's page as a reader sees it: rendered, with a passage's place marked on it."""

from __future__ import annotations

import difflib
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pypdfium2
import pypdfium2.raw as pdfium_c

from ingest.formats import PDFIUM_LOCK
from ingest.formats.ocr import Ocr, OcrWord

# As wide as the preview dialog on a laptop, small enough (~200 KB as WebP) for every page turn.
PAGE_WIDTH_PX = 1200
# A passage is placed only when most of its words are found on the page in order; below this
# share the page is shown without a mark rather than with a wrong one.
MIN_MATCHED_SHARE = 0.5
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Box:
    """A rectangle on the page as rendered, in fractions of its width and height from top left."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class PageImage:
    """One rendered page: the picture, its pixel size, and which page of how many it is."""

    image: bytes
    mime: str
    width: int
    height: int
    page: int
    pages: int


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int


def pdf_page_count(data: bytes) -> int:
    with PDFIUM_LOCK, pypdfium2.PdfDocument(data) as document:
        return len(document)


def render_pdf_page(data: bytes, page: int, width_px: int = PAGE_WIDTH_PX) -> PageImage:
    """Page `page` (1-based) of the PDF in `data`, drawn `width_px` wide as a viewer shows it."""
    with PDFIUM_LOCK, pypdfium2.PdfDocument(data) as document:
        pdf_page = document[_page_index(document, page)]
        width_pt = (
            pdf_page.get_width() if pdf_page.get_rotation() in (0, 180) else pdf_page.get_height()
        )
        bitmap = pdf_page.render(scale=width_px / width_pt)
        picture = bitmap.to_pil()
        buffer = io.BytesIO()
        picture.save(buffer, "WEBP", quality=85)
        return PageImage(buffer.getvalue(), "image/webp", *picture.size, page, len(document))


def pdf_passage_boxes(data: bytes, page: int, passage: str, ocr: Ocr | None = None) -> list[Box]:
    """Where `passage` stands on PDF page `page`: one box per line it covers, or none if absent.

    The passage was extracted by pypdf and the page is read here by PDFium, so the two texts
    differ in spacing, hyphens and ligatures; they are matched word by word instead of verbatim.
    A page without a text layer was read by OCR at ingest: given `ocr`, its words are read
    again with their boxes and the passage is placed by those.
    """
    with PDFIUM_LOCK, pypdfium2.PdfDocument(data) as document:
        pdf_page = document[_page_index(document, page)]
        text_page = pdf_page.get_textpage()
        has_text = text_page.count_chars() > 0
        if has_text:
            return _text_layer_boxes(pdf_page, text_page, passage)
    if ocr is None or ocr.problem() is not None:
        return []
    return ocr_passage_boxes(ocr.read_words(data, page), passage)


def ocr_passage_boxes(words: Sequence[OcrWord], passage: str) -> list[Box]:
    """The lines of OCR'd `words` that `passage` covers, or none if it is not among them."""
    text, starts = "", []
    for word in words:
        starts.append(len(text))
        text += word.text + " "
    span = passage_span(text, passage)
    if span is None:
        return []
    start, end = span
    covered = [
        word
        for word, first in zip(words, starts, strict=True)
        if first < end and first + len(word.text) > start
    ]
    return _lines(
        [
            Box(w.left, w.top, round(w.right - w.left, 5), round(w.bottom - w.top, 5))
            for w in covered
        ]
    )


def _text_layer_boxes(
    pdf_page: pypdfium2.PdfPage, text_page: pypdfium2.PdfTextPage, passage: str
) -> list[Box]:
    # One character per PDFium char index, so a match's offsets are char indices too.
    text = "".join(
        chr(pdfium_c.FPDFText_GetUnicode(text_page.raw, i) or 32)
        for i in range(text_page.count_chars())
    )
    span = passage_span(text, passage)
    if span is None:
        return []
    start, end = span
    rects = [text_page.get_rect(i) for i in range(text_page.count_rects(start, end - start))]
    return _lines([_box(pdf_page, rect) for rect in rects])


def passage_span(text: str, passage: str) -> tuple[int, int] | None:
    """The characters of `text` that `passage` covers, found by its words in order, or None."""
    haystack, needle = _words(text), _words(passage)
    if not needle:
        return None
    matcher = difflib.SequenceMatcher(
        None, [w.text for w in haystack], [w.text for w in needle], autojunk=False
    )
    # Single-word agreements are mostly chance ("the", "of"); runs of two or more are the passage.
    blocks = [block for block in matcher.get_matching_blocks() if block.size >= min(2, len(needle))]
    if sum(block.size for block in blocks) < MIN_MATCHED_SHARE * len(needle):
        return None
    first, last = blocks[0], blocks[-1]
    return haystack[first.a].start, haystack[last.a + last.size - 1].end


def _words(text: str) -> list[_Word]:
    # NFKC folds ligatures ("ﬁ") and width variants, one character to a few, so offsets are
    # taken per character to keep them pointing into the original text.
    folded, origin = [], []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKC", char).casefold():
            folded.append(part)
            origin.append(index)
    flat = "".join(folded)
    return [
        _Word(match.group(), origin[match.start()], origin[match.end() - 1] + 1)
        for match in _WORD.finditer(flat)
    ]


def _box(pdf_page: pypdfium2.PdfPage, rect: Sequence[float]) -> Box:
    left, bottom, right, top = rect
    crop_left, crop_bottom, crop_right, crop_top = pdf_page.get_cropbox()
    width, height = crop_right - crop_left, crop_top - crop_bottom
    x0, x1 = (left - crop_left) / width, (right - crop_left) / width
    y0, y1 = (crop_top - top) / height, (crop_top - bottom) / height
    return _rotated(x0, y0, x1, y1, pdf_page.get_rotation())


def _rotated(x0: float, y0: float, x1: float, y1: float, degrees: int) -> Box:
    """The box as it appears once the page's /Rotate (clockwise) is applied, as viewers do."""
    if degrees == 90:
        x0, y0, x1, y1 = 1 - y1, x0, 1 - y0, x1
    elif degrees == 180:
        x0, y0, x1, y1 = 1 - x1, 1 - y1, 1 - x0, 1 - y0
    elif degrees == 270:
        x0, y0, x1, y1 = y0, 1 - x1, y1, 1 - x0
    return Box(
        round(max(0.0, x0), 5),
        round(max(0.0, y0), 5),
        round(min(1.0, x1) - max(0.0, x0), 5),
        round(min(1.0, y1) - max(0.0, y0), 5),
    )


def _lines(boxes: list[Box]) -> list[Box]:
    """Boxes that stand side by side on one line joined into one (math fonts give one per glyph)."""
    joined: list[Box] = []
    for box in boxes:
        last = joined[-1] if joined else None
        if last is not None and _same_line(last, box):
            left, top = min(last.left, box.left), min(last.top, box.top)
            right = max(last.left + last.width, box.left + box.width)
            bottom = max(last.top + last.height, box.top + box.height)
            joined[-1] = Box(left, top, round(right - left, 5), round(bottom - top, 5))
        else:
            joined.append(box)
    return joined


def _same_line(a: Box, b: Box) -> bool:
    overlap = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    gap = max(a.left, b.left) - min(a.left + a.width, b.left + b.width)
    return overlap > 0.5 * min(a.height, b.height) and gap < 0.03


def _page_index(document: pypdfium2.PdfDocument, page: int) -> int:
    if not 1 <= page <= len(document):
        raise ValueError(f"page {page} is outside 1–{len(document)}")
    return page - 1


@dataclass(frozen=True)
class Excerpt:
    """A page of text cut around a passage: what comes before, the passage, what follows."""

    before: str
    passage: str
    after: str
    cut_before: bool
    cut_after: bool


def text_excerpt(text: str, passage: str, context_chars: int = 1500) -> Excerpt:
    """The passage in its text, with at most `context_chars` either side; unmarked if absent."""
    span = passage_span(text, passage)
    start, end = span if span is not None else (0, 0)
    first = max(0, start - context_chars)
    last = min(len(text), end + context_chars if span is not None else 2 * context_chars)
    return Excerpt(text[first:start], text[start:end], text[end:last], first > 0, last < len(text))
