"""Real files of every accepted type, made in the test: Word, slides, sheets, a web page, scans.

Each holds one fact at a known place (page 2, slide 3, sheet Budget, heading Maintenance), which a
search must find there."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import docx
import openpyxl
import pptx
import pypdf
from msoffcrypto.format.ooxml import OOXMLFile
from PIL import Image, ImageDraw, ImageFont

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
# A page with a real text layer, for the mixed PDF: "Here's to the crazy ones ..."
TEXT_PAGE_PDF = FIXTURES_DIR / "pdfs" / "good" / "crazyones-pdfa.pdf"


@dataclass(frozen=True)
class Fact:
    """A file, the question that finds its fact, and where the fact stands."""

    name: str
    question: str
    phrase: str
    page: int
    where: str


SCAN = Fact(
    "scanned-warranty.pdf",
    "How long is the Zephyr frame warranty?",
    "warranty lasts seven years",
    2,
    "page 2 (OCR)",
)
WORD = Fact(
    "orca-handbook.docx",
    "How often are the Orca pump seals replaced?",
    "seals are replaced every 2000 hours",
    2,
    "Maintenance",
)
SLIDES = Fact(
    "heron-review.pptx",
    "What revenue did the Heron project reach?",
    "Heron project reached 4.2 million euros",
    3,
    "slide 3",
)
SHEET = Fact(
    "kestrel-costs.xlsx",
    "What does the Kestrel turbine cost?",
    "Kestrel turbine",
    2,
    "sheet Budget",
)
WEB = Fact(
    "falcon-router.html",
    "How long do I hold the Falcon reset button?",
    "hold the reset button for 12 seconds",
    2,
    "Resetting the router",
)
FACTS = (SCAN, WORD, SLIDES, SHEET, WEB)


def scanned_pdf(*pages: str) -> bytes:
    """A PDF of images only: each page is `text` drawn in black on white, as a scanner makes it."""
    images = [_drawn(text) for text in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def mixed_pdf(scanned_text: str) -> bytes:
    """Page 1 with a text layer (crazyones-pdfa.pdf), page 2 an image of `scanned_text`."""
    writer = pypdf.PdfWriter(clone_from=TEXT_PAGE_PDF)
    writer.append(pypdf.PdfReader(io.BytesIO(scanned_pdf(scanned_text))))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _drawn(text: str) -> Image.Image:
    # 150 dpi, a half-letter page: big enough print for Tesseract, small enough to read fast.
    image = Image.new("L", (1240, 900), color=255)
    font = ImageFont.load_default(size=44)
    ImageDraw.Draw(image).multiline_text((80, 120), text, fill=0, font=font, spacing=24)
    return image


def scanned_warranty() -> bytes:
    return scanned_pdf(
        "Zephyr bicycle handbook\nChapter one is about\nthe frame and the fork.",
        "The Zephyr frame\nwarranty lasts seven years\nfrom the day of purchase.",
    )


def word_file() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Orca pump handbook"
    document.add_paragraph("Orca pump handbook", style="Title")
    document.add_paragraph("This handbook covers installing and servicing the Orca pump.")
    document.add_heading("Maintenance", level=1)
    document.add_paragraph("The Orca pump seals are replaced every 2000 hours of running.")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["Part", "Interval", "Seal", "2000 hours"], strict=True):
        cell.text = text
    document.add_heading("Storage", level=1)
    document.add_paragraph("Keep the pump dry and above freezing when it is not in use.")
    return _saved(document)


def slides_file(third_slide_note: str = "") -> bytes:
    deck = pptx.Presentation()
    for title, body in (
        ("Heron project review", "Where the project stands after one year."),
        ("Team", "Four engineers and one designer work on Heron."),
        ("Results", "The Heron project reached 4.2 million euros in revenue."),
    ):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    if third_slide_note:
        deck.slides[2].notes_slide.notes_text_frame.text = third_slide_note
    return _saved(deck)


def workbook_file() -> bytes:
    workbook = openpyxl.Workbook()
    summary = workbook.active
    summary.title = "Summary"
    summary.append(["Project", "Owner"])
    summary.append(["Kestrel wind farm", "North Energy"])
    budget = workbook.create_sheet("Budget")
    budget.append(["Item", "Cost (EUR)", "Supplier"])
    budget.append(["Kestrel turbine", 18500, "Aero Parts"])
    budget.append(["Cabling", 2300.5, "Wire & Co"])
    return _saved(workbook)


def web_page() -> bytes:
    prose = "The Falcon router connects every room of a house to the internet. " * 3
    return f"""<!doctype html>
<html><head><title>Falcon router guide</title>
<style>body {{ font-family: sans-serif }} .secret-style {{ color: red }}</style>
<script>var trackingScriptMarker = "do not index me";</script></head>
<body>
<nav><ul><li><a href="/">Navigation home link</a></li>
<li><a href="/shop">Shop menu entry</a></li></ul></nav>
<main><article>
<h1>Falcon router guide</h1>
<p>{prose}</p>
<p>Setting it up takes ten minutes: plug it in, wait for the light, and connect.</p>
<h2>Resetting the router</h2>
<p>To start again from the factory settings, hold the reset button for 12 seconds until the
light blinks. The router then restarts on its own, which takes about two minutes.</p>
<p>Your own settings are lost in a reset, so write down the network name first.</p>
</article></main>
<footer>Footer copyright notice of Falcon Networks</footer>
</body></html>""".encode()


def made_files() -> dict[str, bytes]:
    """Every fact's file by name."""
    return {
        SCAN.name: scanned_warranty(),
        WORD.name: word_file(),
        SLIDES.name: slides_file(),
        SHEET.name: workbook_file(),
        WEB.name: web_page(),
    }


def encrypted(data: bytes, password: str = "secret") -> bytes:
    """The Office file as Office saves it with a password: an encrypted OLE container."""
    office = OOXMLFile(io.BytesIO(data))
    buffer = io.BytesIO()
    office.encrypt(password, buffer)
    return buffer.getvalue()


def zip_bomb(members: int = 1, member_mb: int = 4) -> bytes:
    """A zip of Office parts whose members unpack to `member_mb` MB of zeros each."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        for number in range(members):
            with package.open(f"word/part{number}.xml", "w", force_zip64=True) as part:
                for _ in range(member_mb):
                    part.write(b"\0" * (1024 * 1024))
    return buffer.getvalue()


def _saved(
    document: docx.document.Document | pptx.presentation.Presentation | openpyxl.Workbook,
) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
