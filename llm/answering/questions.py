"""Questions as the pipeline takes them: readable text, of a length the model can use."""

from __future__ import annotations

import unicodedata

# Unicode categories that carry no readable text: controls (Cc), formatting such as bidi
# overrides and zero-width joiners (Cf), and unassigned or private code points.
_INVISIBLE = {"Cc", "Cf", "Cn", "Co", "Cs"}


def clean_question(text: str) -> str:
    """The question without control or invisible characters, whitespace collapsed."""
    kept = "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char) not in _INVISIBLE
    )
    return " ".join(kept.split())


def question_problem(question: str, max_chars: int) -> str | None:
    """Why a cleaned question cannot be asked, in a sentence for the asker; None when it can."""
    if not question:
        return "The question has no readable text (only spaces or control characters)."
    if len(question) > max_chars:
        return (
            f"The question is {len(question):,} characters long; the limit is {max_chars:,}. "
            "Ask about one thing at a time, or upload long text as a document instead."
        )
    return None
