"""Answers without a language model: the retrieved sentences that best match the question."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.records import SearchHit

NO_ANSWER = "The documents do not seem to contain the answer to this question."
MAX_QUOTE_CHARS = 400

_STOPWORD_TEXT = """
    a about above after again all also am an and any are as at be because been before being
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no
    nor not of off on once only or other our ours out over own same she should so some such than
    that the their theirs them then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours
    tell explain describe please say says said give list"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[a-z0-9]+")
# A sentence ends at . ! or ? followed by space and a capital, digit or opening mark, or at a
# blank line or bullet: PDF text often has no punctuation between list items and headings.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\n\s*\n|\n(?=\s*[-•*]\s)")


# (suffix, replacement), first match wins; "ss" maps to itself so `class` keeps its last s.
_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ss", "ss"), ("eed", "eed"), ("ing", ""), ("ed", ""))
_SUFFIXES += (("es", "e"), ("s", ""))


@dataclass(frozen=True)
class _Sentence:
    number: int
    text: str
    terms: frozenset[str]


def stem(word: str) -> str:
    """A crude suffix stripper: enough for price/prices/priced/pricing to meet as `pric`."""
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix):
            if len(word) - len(suffix) >= 2:
                word = word[: -len(suffix)] + replacement
            break
    return word[:-1] if word.endswith("e") and len(word) > 2 else word


def terms(text: str) -> list[str]:
    """Content words of `text`, lower-cased and stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def split_sentences(text: str) -> list[str]:
    pieces = (" ".join(p.split()) for p in _SENTENCE_END.split(text))
    return [p for p in pieces if p]


def _quote(text: str) -> str:
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    return text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"


def extractive_answer(question: str, hits: Sequence[SearchHit], max_sentences: int = 3) -> str:
    """Up to `max_sentences` sentences from `hits` (numbered from 1), most relevant first."""
    wanted = set(terms(question))
    sentences = [
        _Sentence(number, text, frozenset(terms(text)))
        for number, hit in enumerate(hits, start=1)
        for text in split_sentences(hit.text)
    ]
    # Rare question words say more than common ones: weight each by its inverse frequency among
    # the candidate sentences, and divide by sentence length so long run-ons do not win by bulk.
    frequency = Counter(term for s in sentences for term in s.terms & wanted)
    total = len(sentences) + 1

    def score(sentence: _Sentence) -> float:
        matched = sentence.terms & wanted
        weight = sum(math.log(total / frequency[t]) + 1 for t in matched)
        return weight / math.sqrt(len(sentence.terms) + 1)

    scored = [(score(s), s) for s in sentences if s.terms & wanted]
    if not scored:
        return NO_ANSWER
    scored.sort(key=lambda pair: (-pair[0], pair[1].number))
    lines = [f"- “{_quote(s.text)}” [{s.number}]" for _, s in scored[:max_sentences]]
    return "The most relevant passages in the documents:\n\n" + "\n".join(lines)
