"""Text of PDF pages without a text layer: each page drawn by pypdfium2, then read by Tesseract."""

from __future__ import annotations

import logging
import math
import shutil
import threading
from dataclasses import dataclass

import pypdfium2
import pytesseract
from PIL import Image

from ingest.formats import PDFIUM_LOCK

# Tesseract reads print best at about 300 dpi.
RENDER_DPI = 300
# A page drawn at 300 dpi is ~9 megapixels at A4; a huge page is drawn smaller instead of taking
# gigabytes (a PDF can declare a page of 200 × 200 inches).
MAX_PAGE_PIXELS = 40_000_000
# One page that Tesseract cannot finish in this time is left out rather than holding the upload.
PAGE_TIMEOUT_S = 120
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"

logger = logging.getLogger(__name__)
# pytesseract keeps the command in a module global.
_tesseract_guard = threading.Lock()


@dataclass(frozen=True)
class OcrWord:
    """A word Tesseract read, with its box in fractions of the page as drawn, from top left."""

    text: str
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Ocr:
    """How pages without a text layer are read: the Tesseract command and its languages
    ("eng", or several joined by "+")."""

    command: str = "tesseract"
    languages: str = "eng"

    def problem(self) -> str | None:
        """Why OCR cannot run here, said so that the reader can fix it; None when it can."""
        if shutil.which(self.command) is None:
            return (
                f"Tesseract is not installed ({self.command} was not found); to enable OCR "
                f"install Debian's tesseract-ocr and tesseract-ocr-eng ({INSTALL_HINT})"
            )
        try:
            with _tesseract_guard:
                pytesseract.pytesseract.tesseract_cmd = self.command
                installed = set(pytesseract.get_languages())
        except (OSError, pytesseract.TesseractError) as error:
            return f"Tesseract ({self.command}) does not run: {error}"
        missing = [lang for lang in self.languages.split("+") if lang not in installed]
        if missing:
            return (
                f"Tesseract has no data for {', '.join(missing)}; to enable OCR install its "
                f"language package (Debian: tesseract-ocr-{missing[0]})"
            )
        return None

    def read_pages(self, data: bytes, numbers: list[int]) -> dict[int, str | None]:
        """The text Tesseract reads on each of these 1-based pages; None where it failed."""
        try:
            with PDFIUM_LOCK:
                pdf = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as error:
            logger.warning("PDFium cannot open the file for OCR: %r", error)
            return dict.fromkeys(numbers)
        found: dict[int, str | None] = {}
        try:
            for number in numbers:
                found[number] = self._read_page(pdf, number)
        finally:
            with PDFIUM_LOCK:
                pdf.close()
        return found

    def read_words(self, data: bytes, number: int) -> list[OcrWord]:
        """The words Tesseract reads on 1-based page `number`, in reading order, with boxes."""
        try:
            with PDFIUM_LOCK, pypdfium2.PdfDocument(data) as pdf:
                image = _render(pdf[number - 1])
            with _tesseract_guard:
                pytesseract.pytesseract.tesseract_cmd = self.command
                found = pytesseract.image_to_data(
                    image,
                    lang=self.languages,
                    timeout=PAGE_TIMEOUT_S,
                    output_type=pytesseract.Output.DICT,
                )
        except (OSError, RuntimeError, ValueError, pypdfium2.PdfiumError) as error:
            logger.warning("OCR of the words on page %d failed: %r", number, error)
            return []
        width, height = image.size
        boxes = zip(
            found["text"], found["left"], found["top"], found["width"], found["height"], strict=True
        )
        return [
            OcrWord(text, x / width, y / height, (x + w) / width, (y + h) / height)
            for text, x, y, w, h in boxes
            if text.strip()
        ]

    def _read_page(self, pdf: pypdfium2.PdfDocument, number: int) -> str | None:
        try:
            with PDFIUM_LOCK:
                image = _render(pdf[number - 1])
            with _tesseract_guard:
                pytesseract.pytesseract.tesseract_cmd = self.command
                return pytesseract.image_to_string(
                    image, lang=self.languages, timeout=PAGE_TIMEOUT_S
                )
        # pytesseract raises RuntimeError on a timeout and TesseractError (one too) on a failure.
        except (OSError, RuntimeError, ValueError, pypdfium2.PdfiumError) as error:
            logger.warning("OCR failed on page %d: %r", number, error)
            return None


def _render(page: pypdfium2.PdfPage) -> Image.Image:
    """The page as a greyscale image at RENDER_DPI, or smaller when the page is huge."""
    width, height = page.get_size()
    scale = min(RENDER_DPI / 72, math.sqrt(MAX_PAGE_PIXELS / max(width * height, 1.0)))
    return page.render(scale=scale, grayscale=True).to_pil()
