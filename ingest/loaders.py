"""Read an uploaded file (PDF, text or Markdown) into pages, refusing what cannot be read."""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
import unicodedata
from pathlib import PurePath

import pypdf

from ingest.records import LoadedDocument, Page

SUPPORTED_SUFFIXES = (".pdf", ".txt", ".md", ".markdown")

_MB = 1024 * 1024
# Share of characters that may be control characters before a "text" file counts as binary.
_MAX_CONTROL_SHARE = 0.05
_ALLOWED_CONTROLS = frozenset("\n\r\t\f")
# Typographic ligatures (as in "misﬁts") would otherwise hide words from keyword search.
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)

# pypdf logs a line for every oddity of a malformed file; the user gets one plain reason instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)
logger = logging.getLogger(__name__)


class RejectedFile(Exception):
    """A file that cannot be ingested; `reason` is plain English and says what to do next."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source} {reason}")
        self.source = source
        self.reason = reason


def file_name(name: str) -> str:
    """The name an uploaded file is known by: its last path part, without control characters.

    Uploads and CLI paths may carry folders ("../../etc/x.txt", "C:\\docs\\x.txt"); the stored
    copy is named by its checksum anyway, and citations should name the file, not a path."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(char for char in last if char.isprintable()).strip()


def load_document(source: str, data: bytes, max_bytes: int) -> LoadedDocument:
    """Read `data` (the bytes of the file named `source`) into 1-based pages of text."""
    suffix = PurePath(source).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RejectedFile(source, _unsupported_reason(suffix))
    if not data:
        raise RejectedFile(source, "is empty (0 bytes); check the file and upload it again")
    if len(data) > max_bytes:
        raise RejectedFile(
            source,
            f"is too large ({len(data) / _MB:.1f} MB; the limit is {max_bytes / _MB:g} MB); "
            "split it into smaller files and upload those",
        )
    if suffix == ".pdf":
        kind, pages = "pdf", _read_pdf(source, data)
    else:
        kind = "text" if suffix == ".txt" else "markdown"
        pages = [Page(number=1, text=_read_text(source, data))]
    return LoadedDocument(
        source=source,
        kind=kind,
        pages=pages,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        data=data,
    )


def _unsupported_reason(suffix: str) -> str:
    supported = ", ".join(SUPPORTED_SUFFIXES)
    what = f"is a {suffix} file, which" if suffix else "has no file extension, so it"
    return f"{what} cannot be read; upload a file of one of these types: {supported}"


def _read_pdf(source: str, data: bytes) -> list[Page]:
    corrupt = (
        "could not be read: it is damaged, incomplete or not really a PDF; "
        "open it in a PDF viewer, save a fresh copy and upload that"
    )
    # pypdf raises many exception types (PdfReadError, KeyError, ValueError...) on broken files.
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise RejectedFile(
                source,
                "is encrypted (password-protected); remove the password and upload it again",
            )
        page_count = len(reader.pages)
    except RejectedFile:
        raise
    except Exception as error:
        logger.info("cannot open %s: %r", source, error)
        raise RejectedFile(source, corrupt) from error

    pages: list[Page] = []
    failed = 0
    for index in range(page_count):
        try:
            text = _normalize_pdf_text(reader.pages[index].extract_text() or "")
        except Exception as error:
            # One unreadable page should not cost the user the rest of the document.
            logger.warning("skipping page %d of %s: %r", index + 1, source, error)
            failed += 1
            continue
        if text:
            pages.append(Page(number=index + 1, text=text))
    if pages:
        return pages
    if failed:
        raise RejectedFile(source, corrupt)
    raise RejectedFile(
        source,
        "has no text layer (scanned images?); OCR is not supported yet, "
        "so upload a version with selectable text",
    )


def _opens_without_password(reader: pypdf.PdfReader) -> bool:
    # Files with only an owner password (printing/copying limits) decrypt with "".
    try:
        return reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except Exception:
        return False


_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")


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


def _read_text(source: str, data: bytes) -> str:
    text = _decode(data)
    if text is None or _looks_binary(text):
        raise RejectedFile(
            source,
            "contains binary data, not text; check that it is the right file "
            "and save it as plain text before uploading",
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RejectedFile(source, "contains no text (only blank space); check the file")
    return text


def _decode(data: bytes) -> str | None:
    """Text from UTF-8 (BOM optional) or BOM-marked UTF-16, else Windows-1252/Latin-1.

    None means the bytes are not text in any of these encodings.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Legacy Western files; cp1252 leaves five bytes undefined, which Latin-1 maps to controls.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _looks_binary(text: str) -> bool:
    controls = sum(
        1 for char in text if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS
    )
    return controls > len(text) * _MAX_CONTROL_SHARE
