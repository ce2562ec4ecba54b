"""Readers of each accepted file type: bytes in, citable pages out, or `Unreadable` and why."""


class Unreadable(Exception):
    """A file its reader cannot take; the message completes "<file name> …" in plain English and
    says what to do next."""
