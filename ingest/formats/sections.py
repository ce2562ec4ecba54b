"""Files without pages (Word documents, web pages) cut at their headings, each part named by it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.records import Page

MAX_LABEL_CHARS = 80


@dataclass(frozen=True)
class Block:
    """A paragraph or a table of the text, or a heading."""

    text: str
    heading: bool = False


def split_at_headings(blocks: Iterable[Block], title: str | None) -> list[Page]:
    """Pages numbered 1, 2, ... in reading order, one per heading and labelled with it.

    Text before the first heading is labelled with `title` (without one it shows as page 1). A
    heading with no text of its own leads the next section, whose heading labels it."""
    pages: list[Page] = []
    label, texts, has_body = title, [], False
    for block in blocks:
        if block.heading and has_body:
            pages.append(Page(len(pages) + 1, "\n\n".join(texts), label))
            texts, has_body = [], False
        if block.heading:
            label = _short_label(block.text)
        else:
            has_body = True
        texts.append(block.text)
    if has_body:
        pages.append(Page(len(pages) + 1, "\n\n".join(texts), label))
    return pages


def _short_label(text: str) -> str:
    """One line of at most MAX_LABEL_CHARS characters, cut at a word."""
    text = " ".join(text.split())
    if len(text) <= MAX_LABEL_CHARS:
        return text
    return text[:MAX_LABEL_CHARS].rsplit(" ", 1)[0] + " …"
