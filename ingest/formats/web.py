"""Saved web pages (.html): the main content only, split at its headings, the title kept."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import trafilatura

from ingest.formats import Unreadable
from ingest.formats.sections import Block, split_at_headings
from ingest.records import Page

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")

# trafilatura logs every page it finds thin; the upload report says what matters.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


def read_html(data: bytes) -> list[Page]:
    """A page per heading's section, labelled with the heading; the page's title leads the text
    and labels what comes before the first heading."""
    tree = trafilatura.load_html(data)
    if tree is None:
        raise Unreadable(
            "could not be read as a web page: it is damaged or not really HTML; "
            "save the page again from the browser and upload that"
        )
    metadata = trafilatura.extract_metadata(tree)
    title = " ".join((metadata.title or "").split()) if metadata else ""
    # trafilatura keeps the main content and drops scripts, styles, navigation, headers and
    # footers; Markdown output keeps the headings, which become the citations.
    content = trafilatura.extract(
        tree,
        output_format="markdown",
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        favor_recall=True,
    )
    blocks = list(_blocks(content or ""))
    if not blocks:
        raise Unreadable(
            "has no readable text in its main content (only menus, scripts or images?); "
            "check that it is the right page"
        )
    # The title leads the text, and names what stands before the first heading of the content.
    if title and blocks[0].text != title:
        blocks.insert(0, Block(title, heading=True))
    return split_at_headings(blocks, None)


def _blocks(markdown: str) -> Iterator[Block]:
    """trafilatura's Markdown as paragraphs and headings (which it puts apart by blank lines)."""
    for paragraph in markdown.split("\n\n"):
        if heading := _HEADING.match(paragraph.strip()):
            yield Block(heading.group(1), heading=True)
        elif paragraph.strip():
            yield Block(paragraph.strip())
