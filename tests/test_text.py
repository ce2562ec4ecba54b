"""Untrusted text shown safely: Markdown that loads nothing, terminal output without controls."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from app.text import attributed_markdown, inert_markdown, inert_stream, terminal_safe
from llm.answering.attribution import SentenceSupport

HOSTILE = (
    "Here is the answer ![chart](http://127.0.0.1:9/leak.png?k=secret) [1]. "
    "Read [the manual](http://127.0.0.1:9/phish) or ![logo][img].\n\n"
    "[img]: http://127.0.0.1:9/ref.png\n"
    "Inline `x[1]` stays.\n```r\nm[1, 2]\n```\n"
)
# CommonMark, the grammar Streamlit's Markdown follows: what would become an image or a link.
PARSER = MarkdownIt("commonmark")


def tags(markdown: str) -> set[str]:
    html = PARSER.render(markdown)
    return set(re.findall(r"<(img|a)\b", html))


def test_the_hostile_text_does_form_images_and_links_unescaped() -> None:
    assert tags(HOSTILE) == {"img", "a"}


def test_inert_markdown_forms_no_image_and_no_link_but_keeps_the_words_and_code() -> None:
    safe = inert_markdown(HOSTILE)
    assert tags(safe) == set()
    rendered = PARSER.render(safe)
    assert "http://127.0.0.1:9/leak.png?k=secret" in rendered, "the real target stays readable"
    assert "<code>x[1]</code>" in rendered and "m[1, 2]" in rendered
    assert "\\" not in re.sub(r"<[^>]+>", "", rendered)


def test_the_stream_is_inert_piece_by_piece_even_when_a_fence_is_split() -> None:
    pieces = ["See ![x](http://127.0.0.1:9/a.png) ``", "`r\nx[1]\n``", "` then [y](http://e)"]
    streamed = "".join(inert_stream(pieces))
    assert tags(streamed) == set()
    assert "x[1]" in PARSER.render(streamed)
    drafts = ["".join(inert_stream(pieces[:n])) for n in range(1, len(pieces) + 1)]
    assert all(tags(draft) == set() for draft in drafts)


def test_checked_answers_are_inert_and_muted_sentences_stay_grey() -> None:
    sentences = [
        SentenceSupport(
            "It is ![x](http://127.0.0.1:9/a.png).", (1,), supported=True, claim=True, score=0.9
        ),
        SentenceSupport(
            "See [here](http://127.0.0.1:9/b).",
            (),
            supported=False,
            claim=True,
            score=0.1,
            prefix=" ",
        ),
    ]
    markdown = attributed_markdown(sentences)
    assert tags(markdown) == set()
    assert ":gray[" in markdown and "[1]" in markdown


def test_terminal_output_loses_escape_sequences_and_controls_only() -> None:
    text = "red \x1b[31mALERT\x1b[0m\x1b]0;owned\x07 tab\there\nnext\x00\x9b line"
    assert terminal_safe(text) == "red ALERT tab\there\nnext line"
