"""Readers of each accepted file type: bytes in, citable pages out, or `Unreadable` and why."""

import threading

# PDFium is not thread-safe and Streamlit runs each session in its own thread: every use of
# pypdfium2 (OCR at ingest, the page preview) holds this lock.
PDFIUM_LOCK = threading.Lock()


class Unreadable(Exception):
    """A file its reader cannot take; the message completes "<file name> …" in plain English and
    says what to do next."""
