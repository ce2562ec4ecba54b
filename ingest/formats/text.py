"""Plain text and Markdown: the encodings people's files come in, binary data refused."""

from __future__ import annotations

import codecs
import unicodedata

from ingest.formats import Unreadable
from ingest.records import Page

# Share of characters that may be control characters before a "text" file counts as binary.
_MAX_CONTROL_SHARE = 0.05
_ALLOWED_CONTROLS = frozenset("\n\r\t\f")


def read_text(data: bytes) -> list[Page]:
    """The whole file as page 1."""
    text = decode_text(data)
    if not text.strip():
        raise Unreadable("contains no text (only blank space); check the file")
    return [Page(number=1, text=text)]


def decode_text(data: bytes) -> str:
    """The bytes as text with Unix line ends; binary data is refused."""
    text = _decode(data)
    if text is None or _looks_binary(text):
        raise Unreadable(
            "contains binary data, not text; check that it is the right file "
            "and save it as plain text before uploading"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
