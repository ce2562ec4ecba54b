"""Text helpers shared by the command line and the pages: counts, snippets, checked answers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from llm.answering.attribution import Evidence, SentenceSupport, with_citations

# Fenced blocks and inline code spans: Markdown shows them literally, so nothing in them is escaped.
_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.S)
_FENCE = "```"
# Terminal control sequences (colours, cursor moves, titles) and other C0/C1 controls but tab and
# newline: a document or a model could otherwise rewrite what the terminal shows.
_TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def counted(number: int, noun: str) -> str:
    """ "1 file", "2,310 files": a count with its noun, plural when it is not one."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def duration(seconds: float) -> str:
    """ "42 s" or "3 min 05 s"."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def inert_markdown(text: str) -> str:
    """Untrusted text (a model's answer, a document's words) as Markdown that loads nothing.

    Every `[` outside code is escaped, so no image, link or link definition can form: a remote
    image would be fetched by every viewer's browser without a click, and a link's label can hide
    its target. A bare URL still shows its real target and opens only on a click; raw HTML is
    escaped by st.markdown itself (unsafe_allow_html stays off).
    """
    return "".join(_escaped_outside_code(_CODE.split(text)))


def inert_stream(chunks: Iterable[str]) -> Iterator[str]:
    """`inert_markdown` for text arriving in pieces: `[` is escaped outside fenced code.

    Escaping is decided on the text so far, so a fence split over two pieces is still seen.
    Inline code is not tracked: the streamed draft gives way to the whole answer, escaped by
    `inert_markdown`, once it is complete.
    """
    text, sent = "", 0
    for chunk in chunks:
        text += chunk
        safe = _FENCE.join(_escaped_outside_code(text.split(_FENCE)))
        yield safe[sent:]
        sent = len(safe)


def _escaped_outside_code(pieces: list[str]) -> list[str]:
    """Text and code alternate in `pieces` (text first): `[` is escaped in the text ones."""
    return [p if i % 2 else p.replace("[", "\\[") for i, p in enumerate(pieces)]


def terminal_safe(text: str) -> str:
    """Untrusted text for a terminal: escape sequences and control characters removed."""
    return _TERMINAL_CONTROL.sub("", text)


def snippet(text: str, limit: int) -> str:
    """The text on one line, cut at a word boundary before `limit` characters, marked with …."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def muted(text: str) -> str:
    """Streamlit's grey text; brackets would end the directive early, so they become parentheses."""
    return ":gray[" + text.replace("[", "(").replace("]", ")") + "]"


def attributed_markdown(sentences: Sequence[SentenceSupport]) -> str:
    """The checked answer as Markdown: cited sentences as they are, unsupported ones in grey."""
    parts = []
    for sentence in sentences:
        body = sentence.text if sentence.code else inert_markdown(sentence.text)
        text = with_citations(body, sentence.citations, sentence.code)
        if sentence.unsupported and not sentence.code and text:
            text = muted(text)
        parts.append(sentence.prefix + text)
    return "".join(parts)


def evidence_line(evidence: Evidence) -> str:
    """One quote as the CLI prints it: [n] “…” (file, page p), or the slide, sheet or heading."""
    where = f"{evidence.source}, {evidence.where}"
    return terminal_safe(f"[{evidence.number}] “{evidence.quote}” ({where})")
