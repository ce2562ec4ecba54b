"""Text helpers shared by the command line and the pages: snippets, checked answers, quotes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm.attribution import with_citations


def snippet(text: str, limit: int) -> str:
    """The text on one line, cut at a word boundary before `limit` characters, marked with …."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def muted(text: str) -> str:
    """Streamlit's grey text; brackets would end the directive early, so they become parentheses."""
    return ":gray[" + text.replace("[", "(").replace("]", ")") + "]"


def attributed_markdown(sentences: Sequence[dict[str, Any]]) -> str:
    """The checked answer as Markdown: cited sentences as they are, unsupported ones in grey."""
    parts = []
    for sentence in sentences:
        text = with_citations(sentence["text"], sentence["citations"], sentence["code"])
        if sentence["unsupported"] and not sentence["code"] and text:
            text = muted(text)
        parts.append(sentence["prefix"] + text)
    return "".join(parts)


def evidence_line(evidence: dict[str, Any]) -> str:
    """One quote as the CLI prints it: [n] “…” (file, page p)."""
    where = f"{evidence['source']}, page {evidence['page']}"
    return f"[{evidence['number']}] “{evidence['quote']}” ({where})"
