"""Word and PowerPoint files, and the checks every Office (zip) file passes before it is parsed."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator

import docx
import olefile
import pptx
from docx.document import Document as WordDocument
from docx.table import Table
from docx.text.paragraph import Paragraph
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.shapes.base import BaseShape
from pptx.slide import Slide

from ingest.formats import Unreadable
from ingest.formats.rows import table_text
from ingest.formats.sections import Block, split_at_headings
from ingest.records import Page

_MB = 1024 * 1024
# A real document unpacks to a few times its size; a zip bomb to thousands of times, or to more
# members than any document has. Checked on the zip's own directory before anything is unpacked
# (Python's zipfile stops at each member's declared size, so these figures bound what is read).
MAX_UNPACKED_BYTES = 300 * _MB
MAX_MEMBERS = 10_000
MAX_RATIO = 200
_RATIO_FLOOR_BYTES = 1 * _MB

logger = logging.getLogger(__name__)


def office_package(data: bytes, what: str) -> io.BytesIO:
    """The bytes of a .docx/.pptx/.xlsx, once they are known to be an unencrypted, sane zip.

    `what` names the type for the reasons ("Word document")."""
    # Given bytes, olefile may take them for a file name: it is always given a file object.
    if olefile.isOleFile(io.BytesIO(data)):
        raise Unreadable(_ole_reason(data, what))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        logger.info("not a zip: %r", error)
        raise Unreadable(corrupt_reason(what)) from error
    if len(members) > MAX_MEMBERS:
        raise Unreadable(
            f"holds {len(members):,} files inside (a real {what} holds far fewer than "
            f"{MAX_MEMBERS:,}); it looks like a zip bomb, so it was not opened"
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise Unreadable(
            f"would unpack to {unpacked / _MB:,.0f} MB (the limit is "
            f"{MAX_UNPACKED_BYTES / _MB:,.0f} MB); it looks like a zip bomb, so it was not opened"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            # The part's name is the file's own text: it stays out of the reason.
            raise Unreadable(
                f"holds a part that would unpack {ratio:,.0f} times larger than it is stored; "
                "it looks like a zip bomb, so it was not opened"
            )
    return io.BytesIO(data)


def corrupt_reason(what: str) -> str:
    return (
        f"could not be read: it is damaged, incomplete or not really a {what}; "
        "open it, save a fresh copy and upload that"
    )


def _ole_reason(data: bytes, what: str) -> str:
    # Office keeps a password-protected .docx/.xlsx/.pptx in an OLE (compound) file.
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            encrypted = ole.exists("EncryptedPackage") or ole.exists("EncryptionInfo")
    except Exception:  # olefile raises OSError, struct.error... on a damaged file
        return corrupt_reason(what)
    if encrypted:
        return "is encrypted (password-protected); remove the password and upload it again"
    return (
        f"is an old binary Office file (.doc, .ppt or .xls) under a new name, not a {what}; "
        "open it and save it in the current format"
    )


def read_docx(data: bytes) -> list[Page]:
    """A section per heading, labelled with it; text before the first heading is labelled with
    the document's title when it has one."""
    package = office_package(data, "Word document")
    try:
        document = docx.Document(package)
        blocks = list(_docx_blocks(document))
        title = (document.core_properties.title or "").strip()
    except Exception as error:  # python-docx raises KeyError, ValueError, lxml errors...
        logger.info("cannot read a docx: %r", error)
        raise Unreadable(corrupt_reason("Word document")) from error
    pages = split_at_headings(blocks, title or None)
    if not pages:
        raise Unreadable("contains no text; check that it is the right file")
    return pages


def _docx_blocks(document: WordDocument) -> Iterator[Block]:
    """Each paragraph and table of the body, in reading order."""
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            if text := block.text.strip():
                yield Block(text, heading=_is_heading(block))
        elif isinstance(block, Table) and (text := table_text(_cells(block))):
            yield Block(text)


def _cells(table: Table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def _is_heading(paragraph: Paragraph) -> bool:
    name = paragraph.style.name if paragraph.style is not None else ""
    return name == "Title" or name.startswith("Heading")


def read_pptx(data: bytes) -> list[Page]:
    """A page per slide with text (its title, text boxes, tables and notes), named "slide N"."""
    package = office_package(data, "PowerPoint file")
    try:
        presentation = pptx.Presentation(package)
        pages = [
            Page(number, text, f"slide {number}")
            for number, slide in enumerate(presentation.slides, start=1)
            if (text := _slide_text(slide))
        ]
    except Exception as error:  # python-pptx raises KeyError, ValueError, lxml errors...
        logger.info("cannot read a pptx: %r", error)
        raise Unreadable(corrupt_reason("PowerPoint file")) from error
    if not pages:
        raise Unreadable("contains no text on any slide; check that it is the right file")
    return pages


def _slide_text(slide: Slide) -> str:
    title = slide.shapes.title
    parts = [title.text_frame.text.strip()] if title is not None and title.has_text_frame else []
    others = [shape for shape in _shapes(slide.shapes) if title is None or shape != title]
    # Shapes are kept in drawing order; people read top to bottom, left to right.
    for shape in sorted(others, key=lambda s: (s.top or 0, s.left or 0)):
        if shape.has_text_frame:
            parts.append(shape.text_frame.text.strip())
        elif shape.has_table:
            parts.append(table_text([[c.text for c in row.cells] for row in shape.table.rows]))
    notes = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    if notes is not None and notes.text.strip():
        parts.append(f"Notes: {notes.text.strip()}")
    return "\n\n".join(part for part in parts if part)


def _shapes(shapes: Iterator[BaseShape]) -> Iterator[BaseShape]:
    """Every shape, those inside groups included."""
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        else:
            yield shape
