"""What the model reads: the sentences of the retrieved passages that bear on the question.

A small local model reads its prompt at about 100 tokens a second on two cores, so sending five
whole passages (~1,400 tokens) delays the first word by many seconds. The passages are cut down to
their most relevant sentences, each with its neighbours (a fact often sits in the sentence after
the one that names the topic), within a token budget; better-ranked passages count for more. A
sentence's relevance is its weighted word overlap with the question plus, with the search
embedder, how close it is in meaning.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ingest.records import SearchHit
from llm.attribution import EmbedFn, cosine
from llm.extractive import split_sentences, terms
from llm.prompts import source_header

# Each rank down the retrieval list weighs a sentence's match this much less.
RANK_DECAY = 0.8
# Sentences longer than this are cut at a space: PDF text often runs a table or code into one,
# and a small budget is better spent on several short pieces than on one long one.
MAX_UNIT_CHARS = 200
GAP = " … "


@dataclass(frozen=True)
class _Unit:
    hit: int
    position: int
    text: str
    score: float


def units(text: str) -> list[str]:
    """`text` as sentences, none longer than MAX_UNIT_CHARS."""
    pieces = []
    for sentence in split_sentences(text):
        while len(sentence) > MAX_UNIT_CHARS:
            cut = sentence.rfind(" ", 0, MAX_UNIT_CHARS)
            cut = cut if cut > MAX_UNIT_CHARS // 2 else MAX_UNIT_CHARS
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def _scored_units(
    question: str, hits: Sequence[SearchHit], embed: EmbedFn | None
) -> list[list[_Unit]]:
    wanted = set(terms(question))
    # Neighbouring chunks overlap: a sentence already in a better-ranked passage is not repeated.
    seen: set[str] = set()
    texts = []
    for hit in hits:
        fresh = [u for u in units(hit.text) if u not in seen]
        seen.update(fresh)
        texts.append(fresh)
    unit_terms = [[set(terms(t)) for t in hit_units] for hit_units in texts]
    frequency = Counter(t for hit_terms in unit_terms for ts in hit_terms for t in ts & wanted)
    total = sum(len(hit_terms) for hit_terms in unit_terms) + 1
    lexical = [
        [
            sum(math.log(total / frequency[t]) + 1 for t in found & wanted)
            / math.sqrt(len(found) + 1)
            for found in hit_terms
        ]
        for hit_terms in unit_terms
    ]
    top = max((w for row in lexical for w in row), default=0.0) or 1.0
    meaning = _meaning(question, texts, embed)
    scored = []
    for rank, hit_units in enumerate(texts):
        row = []
        for position, text in enumerate(hit_units):
            match = lexical[rank][position] / top + meaning[rank][position]
            # Ties (no match at all) go to the better-ranked passage, in reading order.
            row.append(_Unit(rank, position, text, (match + 0.01) * RANK_DECAY**rank))
        scored.append(row)
    return scored


def _meaning(question: str, texts: list[list[str]], embed: EmbedFn | None) -> list[list[float]]:
    """Cosine of each sentence with the question by the search embedder (0 without one)."""
    flat = [text for hit_units in texts for text in hit_units]
    if embed is None or not flat:
        return [[0.0] * len(hit_units) for hit_units in texts]
    question_vector, *vectors = embed([question, *flat])
    cosines = iter(cosine(question_vector, v) for v in vectors)
    return [[next(cosines) for _ in hit_units] for hit_units in texts]


def select_evidence(
    question: str,
    hits: Sequence[SearchHit],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    embed: EmbedFn | None = None,
) -> list[tuple[int, SearchHit]]:
    """(number, passage cut to its chosen sentences) for each passage that keeps any, in order.

    Numbers are the passages' places in `hits` from 1, so citations still name the full source.
    A budget of 0 keeps every passage whole.
    """
    if budget_tokens <= 0:
        return list(enumerate(hits, start=1))
    table = _scored_units(question, hits, embed)
    chosen: set[tuple[int, int]] = set()
    opened: set[int] = set()
    used = 0
    for unit in sorted((u for row in table for u in row), key=lambda u: -u.score):
        window = [
            (unit.hit, p)
            for p in (unit.position, unit.position + 1, unit.position - 1)
            if 0 <= p < len(table[unit.hit]) and (unit.hit, p) not in chosen
        ]
        for key in window:
            cost = count_tokens(table[key[0]][key[1]].text) + 1
            if key[0] not in opened:
                cost += count_tokens(source_header(key[0] + 1, hits[key[0]]))
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
