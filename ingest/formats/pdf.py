"""PDF files: the text layer page by page (pypdf), and OCR for the pages that have none."""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

import pypdf

from ingest.formats import Unreadable
from ingest.formats.ocr import Ocr
from ingest.records import Page

# Typographic ligatures (as in "misﬁts") would otherwise hide words from keyword search.
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_CORRUPT = (
    "could not be read: it is damaged, incomplete or not really a PDF; "
    "open it in a PDF viewer, save a fresh copy and upload that"
)

# Running heads and feet ("Chapter 7: Connections 27", a bare page number) sit in a page's first
# and last lines and repeat from page to page: a line in those places whose shape (digits aside)
# recurs on this many pages, with a page number at one end or on half the pages, is one.
_EDGE_LINES = 2
_RUNNING_MIN_PAGES = 3
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"\d{1,4}|[ivxlcdm]{1,7}", re.IGNORECASE)

# pypdf logs a line for every oddity of a malformed file; the user gets one plain reason instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)
logger = logging.getLogger(__name__)


def read_pdf(data: bytes, ocr: Ocr) -> list[Page]:
    """Pages with text, numbered as a PDF viewer numbers them; pages without a text layer are
    read by OCR when Tesseract is there (and left out when it is not, unless all are empty)."""
    reader = _open(data)
    texts: dict[int, str] = {}
    empty: list[int] = []
    failed = 0
    for index in range(len(reader.pages)):
        try:
            text = _normalize_pdf_text(reader.pages[index].extract_text() or "")
        except Exception as error:
            # One unreadable page should not cost the user the rest of the document.
            logger.warning("skipping page %d: %r", index + 1, error)
            failed += 1
            continue
        if text:
            texts[index + 1] = text
        else:
            empty.append(index + 1)
    texts = _without_running_lines(texts)
    scanned = _read_scans(data, empty, ocr, nothing_else=not texts and not failed)
    failed += sum(text is None for text in scanned.values())
    pages = [Page(number, text) for number, text in texts.items()]
    pages += [Page(number, text, ocr=True) for number, text in scanned.items() if text]
    if pages:
        return sorted(pages, key=lambda page: page.number)
    if failed:
        raise Unreadable(_CORRUPT)
    raise Unreadable(
        "has no text layer (scanned images?) and OCR found no text in its images; "
        "upload a version with selectable text"
    )


def _open(data: bytes) -> pypdf.PdfReader:
    # pypdf raises many exception types (PdfReadError, KeyError, ValueError...) on broken files.
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise Unreadable(
                "is encrypted (password-protected); remove the password and upload it again"
            )
        len(reader.pages)
    except Unreadable:
        raise
    except Exception as error:
        logger.info("cannot open a PDF: %r", error)
        raise Unreadable(_CORRUPT) from error
    return reader


def _read_scans(
    data: bytes, numbers: list[int], ocr: Ocr, nothing_else: bool
) -> dict[int, str | None]:
    """OCR text of the pages without a text layer, by page number; None for a page OCR failed on.

    Without Tesseract a file that is nothing but scans is refused with how to enable OCR; a
    mixed file keeps its text pages, as before OCR existed."""
    if not numbers:
        return {}
    if problem := ocr.problem():
        if nothing_else:
            raise Unreadable(
                f"has no text layer (scanned images?) and cannot be read by OCR here: {problem}; "
                "or upload a version with selectable text"
            )
        logger.warning("%d page(s) without a text layer left out: %s", len(numbers), problem)
        return {}
    return {
        number: None if text is None else _normalize_pdf_text(text)
        for number, text in ocr.read_pages(data, numbers).items()
    }


def _opens_without_password(reader: pypdf.PdfReader) -> bool:
    # Files with only an owner password (printing/copying limits) decrypt with "".
    try:
        return reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except Exception:
        return False


def _without_running_lines(texts: dict[int, str]) -> dict[int, str]:
    """The pages without their running heads, feet and page numbers, which would otherwise break
    into the sentence that runs across a page and stand in quotes as if the document said them.
    The first page keeps its first lines: a running head there is usually the title."""
    lines = {number: text.split("\n") for number, text in texts.items()}
    seen = Counter(
        shape
        for page in lines.values()
        for shape in {_shape(line) for line in page[:_EDGE_LINES] + page[-_EDGE_LINES:]}
    )
    running = {
        shape
        for shape, pages in seen.items()
        if pages >= _RUNNING_MIN_PAGES
        and (shape.startswith("#") or shape.endswith("#") or pages >= len(texts) / 2)
    }

    def is_running(line: str) -> bool:
        return _shape(line) in running or bool(_PAGE_NUMBER.fullmatch(line.strip()))

    cleaned = {}
    for number, page in lines.items():
        start, end = 0, len(page)
        while number > 1 and start < min(_EDGE_LINES, end) and is_running(page[start]):
            start += 1
        while end > max(start, len(page) - _EDGE_LINES) and is_running(page[end - 1]):
            end -= 1
        kept = "\n".join(page[start:end]).strip()
        cleaned[number] = kept or texts[number]
    return cleaned


def _shape(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.lower().split()))


def _normalize_pdf_text(text: str) -> str:
    """Collapse runs of spaces and blank lines but keep paragraph breaks; drop NULs, ligatures
    and private-use characters (icon-font glyphs that no reader can display)."""
    text = text.replace("\x00", "").translate(_LIGATURES)
    text = _PRIVATE_USE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
