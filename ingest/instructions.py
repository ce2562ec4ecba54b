"""Spot passages written as instructions to a language model (prompt injection) in documents."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.records import Page, location_label

EXCERPT_CHARS = 80

# Phrases that address a model rather than a reader, each with the reason shown on the Admin
# page and in traces. Kept narrow: a manual that tells its reader to "ignore the warning" or
# explains what a "system prompt" is must not be flagged for that alone.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        (
            "tells the model to ignore its instructions",
            r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|"
            r"all|any|your|the system)\b[^.\n]{0,20}\b(instructions?|prompts?|rules|directions)\b",
        ),
        (
            "asks for the system prompt",
            r"\b(reveal|print|show|repeat|output|tell|display|leak|write out)\b[^.\n]{0,40}\b"
            r"(system prompt|your (initial |hidden )?(prompt|instructions))\b",
        ),
        (
            "asks for keys or secrets",
            r"\b(reveal|print|show|output|send|include|leak|tell)\b[^.\n]{0,40}\b"
            r"(api[ _-]?keys?|secret keys?|passwords?|credentials|access tokens?|env(ironment)? "
            r"variables)\b",
        ),
        (
            "speaks to the AI reading it",
            r"\b(attention|note to|message for|instructions? for)\b[^.\n]{0,12}\b(AI|LLM|"
            r"language model|assistant|chatbot)s?\b|\byou are now\b|\bnew instructions\s*:",
        ),
        (
            "asks the answer to load an image or link",
            r"\b(include|add|insert|render|embed|append|output)\b[^.\n]{0,40}\b(markdown )?"
            r"(image|img|pixel|tracking link)\b|!\[[^\]]*\]\(\s*https?://",
        ),
        (
            "hides text from the reader",
            r"\bdo not (tell|mention|reveal)[^.\n]{0,20}\b(user|reader)\b",
        ),
    )
)


def instruction_flag(text: str) -> str | None:
    """Why `text` reads as instructions to a model, or None when it does not."""
    flat = " ".join(text.split())
    return next((reason for reason, pattern in _PATTERNS if pattern.search(flat)), None)


@dataclass(frozen=True)
class InstructionFlag:
    """A place in a document that reads as instructions to a model, with the words found."""

    page: int
    reason: str
    excerpt: str
    # The slide, sheet or heading when "page N" would be wrong (see Page.label).
    location: str | None = None

    @property
    def where(self) -> str:
        return location_label(self.page, self.location)


def find_instructions(pages: Iterable[Page]) -> list[InstructionFlag]:
    """Every instruction-like passage of a document, page by page, in reading order."""
    found = []
    for page in pages:
        flat = " ".join(page.text.split())
        for reason, pattern in _PATTERNS:
            for match in pattern.finditer(flat):
                found.append((page, match.start(), reason, _excerpt(flat, match)))
    found.sort(key=lambda row: (row[0].number, *row[1:]))
    return [
        InstructionFlag(page.number, reason, excerpt, page.label)
        for page, _, reason, excerpt in found
    ]


def _excerpt(flat: str, match: re.Match[str]) -> str:
    start = max(0, match.start() - EXCERPT_CHARS)
    end = min(len(flat), match.end() + EXCERPT_CHARS)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
