"""What the model reads: the sentences of the retrieved passages that bear on the question.

A small local model reads its prompt at about 100 tokens a second on two cores, so sending five
whole passages (~1,400 tokens) delays the first word by many seconds. The passages are cut down to
their most relevant sentences, each with its neighbours (a fact often sits in the sentence after
the one that names the topic), within a token budget; better-ranked passages count for more. A
sentence's relevance is its overlap with the question's words, rare words weighing more. (Adding
the embedder's similarity found the facts no more often on the development and held-out sets, and
cost 0.4 s before the first word.) A sentence that reads as instructions to a model (prompt
injection) is never sent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ingest.instructions import instruction_flag
from ingest.records import SearchHit
from llm.answering.extractive import split_sentences, terms
from llm.answering.prompts import source_header

# Each rank down the retrieval list weighs a sentence's match this much less.
RANK_DECAY = 0.8
# Sentences longer than this are cut at a space: PDF text often runs a table or code into one,
# and a small budget is better spent on several short pieces than on one long one.
MAX_UNIT_CHARS = 200
GAP = " … "
# A unit must hold a word: a bare page number or list mark tells the model nothing.
_WORDLIKE = re.compile(r"[A-Za-z]{2}")
# Dot leaders: a table of contents line ("5 Binary files . . . . . 21") names a topic, not a fact.
_LEADERS = re.compile(r"(?:\.\s?){4,}")


@dataclass(frozen=True)
class _Unit:
    hit: int
    position: int
    text: str
    score: float


Key = tuple[int, int]


def units(text: str) -> list[str]:
    """`text` as sentences, none longer than MAX_UNIT_CHARS; bare page numbers are dropped."""
    pieces = []
    for sentence in split_sentences(text):
        while len(sentence) > MAX_UNIT_CHARS:
            cut = sentence.rfind(" ", 0, MAX_UNIT_CHARS)
            cut = cut if cut > MAX_UNIT_CHARS // 2 else MAX_UNIT_CHARS
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return [piece for piece in pieces if says_something(piece)]


def says_something(sentence: str) -> bool:
    """Whether a sentence can state a fact: not a bare number, not a table-of-contents line."""
    return bool(_WORDLIKE.search(sentence)) and not _LEADERS.search(sentence)


class _Reading:
    """The passages' sentences in reading order, across neighbouring chunks of one document."""

    def __init__(self, hits: Sequence[SearchHit]) -> None:
        place = {(hit.doc_id, hit.chunk_index): i for i, hit in enumerate(hits)}
        self.after = {
            i: place[(h.doc_id, h.chunk_index + 1)]
            for i, h in enumerate(hits)
            if (h.doc_id, h.chunk_index + 1) in place
        }
        self.before = {j: i for i, j in self.after.items()}
        self.rows = self._fresh_units(hits)

    def _fresh_units(self, hits: Sequence[SearchHit]) -> list[list[str]]:
        # Chunks overlap their neighbours: a sentence already read is not repeated, nor a piece
        # of the overlap that a neighbouring chunk, read earlier, holds whole.
        seen: set[str] = set()
        flat = [" ".join(hit.text.split()) for hit in hits]
        rows: list[list[str]] = []
        for i, hit in enumerate(hits):
            neighbours = [
                flat[j] for j in (self.before.get(i), self.after.get(i)) if j is not None and j < i
            ]
            fresh = [
                u
                for u in units(hit.text)
                if u not in seen
                and not any(u in n for n in neighbours)
                and instruction_flag(u) is None
            ]
            seen.update(fresh)
            rows.append(fresh)
        return rows

    def next(self, key: Key) -> Key | None:
        hit, position = key
        if position + 1 < len(self.rows[hit]):
            return hit, position + 1
        following = self.after.get(hit)
        return (following, 0) if following is not None and self.rows[following] else None

    def previous(self, key: Key) -> Key | None:
        hit, position = key
        if position > 0:
            return hit, position - 1
        preceding = self.before.get(hit)
        if preceding is None or not self.rows[preceding]:
            return None
        return preceding, len(self.rows[preceding]) - 1


def _scored_units(question: str, rows: list[list[str]]) -> list[list[_Unit]]:
    wanted = set(terms(question))
    unit_terms = [[set(terms(t)) for t in row] for row in rows]
    frequency = Counter(t for row in unit_terms for ts in row for t in ts & wanted)
    total = sum(len(row) for row in unit_terms) + 1
    lexical = [
        [
            sum(math.log(total / frequency[t]) + 1 for t in found & wanted)
            / math.sqrt(len(found) + 1)
            for found in row
        ]
        for row in unit_terms
    ]
    top = max((w for row in lexical for w in row), default=0.0) or 1.0
    return [
        # Ties (no match at all) go to the better-ranked passage, in reading order.
        [
            _Unit(rank, position, text, (lexical[rank][position] / top + 0.01) * RANK_DECAY**rank)
            for position, text in enumerate(row)
        ]
        for rank, row in enumerate(rows)
    ]


def select_evidence(
    question: str,
    hits: Sequence[SearchHit],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[tuple[int, SearchHit]]:
    """(number, passage cut to its chosen sentences) for each passage that keeps any, in order.

    Numbers are the passages' places in `hits` from 1, so citations still name the full source.
    A sentence's neighbours may lie in the next or previous chunk when that chunk is among the
    hits too. A budget of 0 keeps every passage whole.
    """
    if budget_tokens <= 0:
        whole = [(number, without_instructions(hit)) for number, hit in enumerate(hits, start=1)]
        return [(number, hit) for number, hit in whole if hit.text]
    reading = _Reading(hits)
    table = _scored_units(question, reading.rows)
    chosen: set[Key] = set()
    opened: set[int] = set()
    used = 0
    for unit in sorted((u for row in table for u in row), key=lambda u: -u.score):
        here = (unit.hit, unit.position)
        window = [here, reading.next(here), reading.previous(here)]
        for key in window:
            if key is None or key in chosen:
                continue
            cost = count_tokens(table[key[0]][key[1]].text) + 1
            if key[0] not in opened:
                cost += count_tokens(source_header(key[0] + 1))
            if used + cost > budget_tokens:
                continue
            chosen.add(key)
            opened.add(key[0])
            used += cost
        if used >= budget_tokens:
            break
    selected = []
    for number, (hit, row) in enumerate(zip(hits, table, strict=True), start=1):
        positions = sorted(p for h, p in chosen if h == number - 1)
        if positions:
            selected.append((number, replace(hit, text=_join(row, positions))))
    return selected


def _join(row: list[_Unit], positions: list[int]) -> str:
    parts = []
    for index, position in enumerate(positions):
        if index and position != positions[index - 1] + 1:
            parts.append(GAP.strip())
        parts.append(row[position].text)
    return " ".join(parts)


def without_instructions(hit: SearchHit) -> SearchHit:
    """The passage whole, or without its sentences that read as instructions to a model."""
    if instruction_flag(hit.text) is None:
        return hit
    kept = [u for u in units(hit.text) if instruction_flag(u) is None]
    return replace(hit, text=" ".join(kept))
