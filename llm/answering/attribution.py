"""Every answer sentence matched to the passages that support it: citations fixed, claims checked.

Support is measured twice, because each check alone is fooled: word overlap misses paraphrase, and
embedding similarity rates a sentence about the same topic as "supported" even when its facts are
invented. A sentence is supported by a passage when enough of its content words (and every name
written like code, e.g. `read.fwf`) occur in that passage, or when fewer do but the sentence and the
passage's closest sentence also mean the same by the embedder already loaded for search.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ingest.records import SearchHit, location_label
from llm.answering.evidence import says_something
from llm.answering.extractive import split_sentences, terms

EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]

# Share of a sentence's content words found in one passage for it to count as supported by words
# alone; and the lower share that suffices when the embedder agrees.
WORDS_ALONE = 0.6
WORDS_WITH_MEANING = 0.35
MEANING = 0.55
# Above this share of unsupported claims the page leads with the quotes instead of the answer.
MOSTLY_UNSUPPORTED = 0.5
MAX_EVIDENCE = 3
# A sentence also cites another passage that supports it nearly as well as the one it cites (the
# same fact often stands in two overlapping chunks, or in a summary and its section), at most
# this many in all.
CO_SUPPORT = 0.9
MAX_CITATIONS = 2
# A bare name ("read.fwf" in a list) matches every passage that mentions it: no second citation.
MIN_WORDS_TO_ADD = 3
MAX_QUOTE_CHARS = 300
# Shorter sentences may fairly come twice ("Yes."): only longer ones count as a repeat.
MIN_REPEATED_WORDS = 5
CUT_SHORT_NOTE = "The answer stopped at its length limit, so it may be incomplete."

_CITATION = re.compile(
    r"\s*\[(?:sources?\s*)?(\d+(?:\s*(?:,|and|;)\s*(?:sources?\s*)?\d+)*)\]", re.I
)
# "[1] and [2]", "[1], [3]": removed as one, so the sentence is not left saying "in sources and."
_CITATION_RUN = re.compile(rf"{_CITATION.pattern}(?:\s*(?:,|and|&|;){_CITATION.pattern})*", re.I)
# Names written like code: read.fwf, file_encoding, write.table(), --no-save, readRDS, ASN1_TYPE.
_IDENTIFIER = re.compile(
    r"(?<![\w.])(?:--?[a-z][\w-]+|[A-Za-z_]\w*(?:[._]\w+)+|[a-z]+[A-Z]\w*)(?:\(\))?"
)
# Words an answer uses to frame a fact rather than state it: their absence from a passage says
# nothing about support.
_FRAMING = frozenset(
    terms(
        "use using used can could may might also function functions command option options "
        "argument arguments parameter way ways example following provide provides allow allows "
        "need needs want specify specified set call called method methods simply just able"
    )
)
# A sentence made only of these points at the sources instead of saying anything ("The source for
# this information is [2].", "See sources [1] and [3] for details."): the citations already point
# there, so it is dropped from the answer rather than judged as a claim.
_ABOUT_SOURCES = frozenset(
    terms(
        "source sources information detail details given provided found described fully shown "
        "document documents passage passages mentioned above refer see more listed cited text "
        "answer"
    )
)
_CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
# A stop ends a sentence, but not the one of "e.g.", "i.e.", "cf.", "vs." or "viz.": "export them
# to e.g. .csv format" is one sentence.
_SENTENCE = re.compile(
    r".+?(?:(?<!\be\.g)(?<!\bi\.e)(?<!\bcf)(?<!\bvs)(?<!\bviz)[.!?](?=\s|$)(?:\s*\[[^\]]*\])*|$)",
    re.S | re.I,
)
_LIST_MARKER = re.compile(r"^(\s*(?:[-*•]|\d+[.)])\s+)")
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
# How a finished sentence ends: its stop, perhaps inside a quote or bracket, or a colon that
# introduces a list or code.
_FINISHED = re.compile(r"[.!?:][\"'”’)\]*]*\s*$")
# A sentence cut off before its point ("The recommended order is [1].") states nothing the
# documents could support: a small model sometimes stops there, the citation standing in for it.
# "for", "with" and "from" may end a sentence ("… URI schemes it can load files from."): not
# these.
_UNFINISHED = re.compile(
    r"\b(?:is|are|was|were|be|been|the|a|an|of|to|by|and|or|than|follows|"
    r"include|includes|including|such as|namely)\s*[.!?]?$",
    re.I,
)
# Statements that the documents do not answer, or lead-ins: not claims about the documents.
_NOT_A_CLAIM = re.compile(
    r"\b(?:(?:do(?:es)?|may|might) not (?:seem to )?"
    r"(?:contain|mention|say|specify|provide|include)|"
    r"(?:is|are) not (?:mentioned|specified|stated|described|given|covered)|"
    r"(?:could|can)(?: ?not|n't) (?:find|answer)|no information|i don't know|not sure)\b",
    re.I,
)


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of the answer, the sources that support it, and whether it is a claim at all."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    claim: bool
    score: float
    # Where it stands in the answer: what came before it (spacing, list marker) is kept as is.
    prefix: str = ""
    code: bool = False

    @property
    def unsupported(self) -> bool:
        return self.claim and not self.supported


@dataclass(frozen=True)
class Evidence:
    """A quote from a source that supports the answer, with where it stands."""

    number: int
    source: str
    page: int
    quote: str
    location: str | None = None
    ocr: bool = False

    @property
    def where(self) -> str:
        return location_label(self.page, self.location, self.ocr)


@dataclass(frozen=True)
class Attribution:
    """The answer as attributed: its sentences, the text with corrected citations, the quotes."""

    sentences: list[SentenceSupport]
    evidence: list[Evidence]
    # The model stopped at its length limit: its unfinished last sentence is left out when an
    # earlier one is finished (`finished_part`).
    cut_short: bool = False

    @property
    def text(self) -> str:
        """The answer with every supported sentence cited and wrong citations corrected."""
        return "".join(
            s.prefix + with_citations(s.text, s.citations, s.code) for s in self.sentences
        )

    @property
    def claims(self) -> int:
        return sum(s.claim for s in self.sentences)

    @property
    def unsupported(self) -> int:
        return sum(s.unsupported for s in self.sentences)

    @property
    def unsupported_share(self) -> float:
        return self.unsupported / self.claims if self.claims else 0.0

    @property
    def mostly_unsupported(self) -> bool:
        return self.claims > 0 and self.unsupported_share > MOSTLY_UNSUPPORTED

    def to_json(self) -> dict[str, Any]:
        return {
            "sentences": [
                {**asdict(s), "citations": list(s.citations), "unsupported": s.unsupported}
                for s in self.sentences
            ],
            "evidence": [asdict(e) for e in self.evidence],
            "claims": self.claims,
            "unsupported": self.unsupported,
            "mostly_unsupported": self.mostly_unsupported,
            "cut_short": self.cut_short,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attribution:
        """The attribution a trace kept (see `to_json`)."""
        return cls(
            sentences=[
                SentenceSupport(
                    text=row["text"],
                    citations=tuple(row["citations"]),
                    supported=row["supported"],
                    claim=row["claim"],
                    score=row["score"],
                    prefix=row.get("prefix", ""),
                    code=row.get("code", False),
                )
                for row in data.get("sentences", [])
            ],
            evidence=[Evidence(**quote) for quote in data.get("evidence", [])],
            cut_short=data.get("cut_short", False),
        )


def cited_numbers(text: str) -> list[int]:
    """Every [n] (or [1, 2]) in `text`, in order."""
    return [int(n) for group in _CITATION.findall(text) for n in re.findall(r"\d+", group)]


def strip_citations(text: str) -> str:
    return _CITATION_RUN.sub("", text)


def with_citations(text: str, numbers: Sequence[int], code: bool = False) -> str:
    """`text` with its [n] marks: before the final full stop of a sentence, after a code block."""
    if not numbers:
        return text
    marks = "".join(f"[{n}]" for n in numbers)
    if code:
        return f"{text}\n{marks}"
    if text[-1:] in ".!?":
        return f"{text[:-1]} {marks}{text[-1]}"
    return f"{text} {marks}"


@dataclass(frozen=True)
class _Piece:
    prefix: str
    text: str
    code: bool


def split_answer(answer: str) -> list[_Piece]:
    """The answer cut into sentences and code blocks; joining prefix + text gives it back."""
    pieces: list[_Piece] = []
    position = 0
    for fence in _FENCE.finditer(answer):
        pieces += _prose_pieces(answer[position : fence.start()])
        pieces.append(_Piece("", fence.group(0), code=True))
        position = fence.end()
    pieces += _prose_pieces(answer[position:])
    return pieces


def finished_part(answer: str) -> str:
    """`answer` without its last sentence or code block when that one is unfinished (a model
    stopped at its length limit mid-sentence), nor a line that introduced it ("For example:");
    the answer as it is when nothing before it is finished either."""
    pieces = split_answer(answer)
    said = [i for i, piece in enumerate(pieces) if piece.text]
    if not said or _finished(pieces[said[-1]]):
        return answer
    kept = said[:-1]
    while kept and _introduces(pieces[kept[-1]]):
        kept.pop()
    if not kept:
        return answer
    return "".join(p.prefix + p.text for p in pieces[: kept[-1] + 1])


def repeat_start(answer: str) -> int | None:
    """Where the first sentence that repeats an earlier one (citations and spacing aside) starts
    in `answer`, or None. Code blocks and sentences under MIN_REPEATED_WORDS words never count: a
    short "Yes." or a closing brace may fairly come twice."""
    seen: set[str] = set()
    position = 0
    for piece in split_answer(answer):
        start = position + len(piece.prefix)
        position = start + len(piece.text)
        said = " ".join(strip_citations(piece.text).split()).casefold()
        if piece.code or len(said.split()) < MIN_REPEATED_WORDS:
            continue
        if said in seen:
            return start
        seen.add(said)
    return None


def before_repeat(answer: str) -> str:
    """`answer` up to where it starts repeating itself: a small model that has run out of things
    to say may write its first paragraph again, word for word, until its length limit."""
    start = repeat_start(answer)
    return answer if start is None else answer[:start].rstrip()


def _introduces(piece: _Piece) -> bool:
    return not piece.code and strip_citations(piece.text).rstrip().endswith(":")


def _finished(piece: _Piece) -> bool:
    if piece.code:
        return piece.text.rstrip().endswith("```") and len(piece.text.strip()) > 3
    return bool(_FINISHED.search(strip_citations(piece.text)))


def _prose_pieces(text: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        newline = line[len(body) :]
        if marker := _LIST_MARKER.match(body):
            pending += marker.group(1)
            body = body[marker.end() :]
        for match in _SENTENCE.finditer(body):
            chunk = match.group(0)
            if not chunk.strip():
                pending += chunk
                continue
            lead = chunk[: len(chunk) - len(chunk.lstrip())]
            pieces.append(_Piece(pending + lead, chunk.strip(), code=False))
            pending = chunk[len(chunk.rstrip()) :]
        pending += newline
    if pending:
        pieces.append(_Piece(pending, "", code=False))
    return pieces


def identifiers(text: str) -> set[str]:
    """Names written like code, lower-cased, without a trailing `()`."""
    found = {m.group(0).removesuffix("()").casefold() for m in _IDENTIFIER.finditer(text)}
    # Abbreviations such as e.g. and i.e. look like code but are not names.
    return {name for name in found if len(name) > 4 or "_" in name}


@dataclass
class _Passage:
    number: int
    hit: SearchHit
    terms: frozenset[str]
    text_folded: str
    sentences: list[str]


def _overlap(words: Sequence[str], names: set[str], passage: _Passage) -> float:
    """Share of the sentence's content words found in the passage; 0 when a code name is not.

    A claim that names a function the passage does not contain is not that passage's claim,
    however much else they share: `read.csv2` is not `read.fwf`.
    """
    if any(name not in passage.text_folded for name in names):
        return 0.0
    return _share(words, passage.terms)


def _share(words: Sequence[str], held: frozenset[str]) -> float:
    return sum(word in held for word in words) / len(words) if words else 1.0


def _two_passage_support(
    words: Sequence[str], names: set[str], passages: list[_Passage]
) -> tuple[int, int] | None:
    """Two passages that together hold every code name of the sentence (each at least one) and
    enough of its words: "read.ssd reads SAS files and read.spss SPSS files" may join two."""
    if len(names) < 2:
        return None
    best, best_share = None, WORDS_ALONE
    for first, second in itertools.combinations(passages, 2):
        texts = (first.text_folded, second.text_folded)
        if not all(any(name in t for t in texts) for name in names):
            continue
        if not all(any(name in t for name in names) for t in texts):
            continue
        share = _share(words, first.terms | second.terms)
        if share >= best_share:
            best, best_share = (first.number, second.number), share
    return best


def attribute(answer: str, hits: Sequence[SearchHit], embed: EmbedFn | None = None) -> Attribution:
    """Match each sentence of `answer` to the hits (numbered from 1) that support it."""
    passages = [
        _Passage(n, hit, frozenset(terms(hit.text)), hit.text.casefold(), split_sentences(hit.text))
        for n, hit in enumerate(hits, start=1)
    ]
    pieces = split_answer(answer)
    bodies = [strip_citations(p.text).strip() for p in pieces]
    meaning = _meaning(bodies, passages, embed)
    sentences = [
        _judge(piece, body, passages, meaning[number])
        for number, (piece, body) in enumerate(zip(pieces, bodies, strict=True))
    ]
    return Attribution(sentences, _evidence(sentences, passages, embed))


def _meaning(
    bodies: list[str], passages: list[_Passage], embed: EmbedFn | None
) -> list[dict[int, float]]:
    """Per sentence, the best cosine against each passage's sentences (none without an embedder)."""
    if embed is None or not passages or not any(bodies):
        return [{} for _ in bodies]
    candidates = [(p.number, s) for p in passages for s in p.sentences]
    if not candidates:
        return [{} for _ in bodies]
    vectors = _unit_rows(embed([b or "-" for b in bodies] + [s for _, s in candidates]))
    similar = vectors[: len(bodies)] @ vectors[len(bodies) :].T
    numbers = np.asarray([number for number, _ in candidates])
    columns = {number: numbers == number for number in dict.fromkeys(numbers.tolist())}
    return [
        {number: float(row[chosen].max()) for number, chosen in columns.items()} for row in similar
    ]


def _unit_rows(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """The vectors as unit rows (a zero vector stays zero): their dot products are cosines."""
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _judge(
    piece: _Piece, body: str, passages: list[_Passage], meaning: dict[int, float]
) -> SentenceSupport:
    given = tuple(n for n in dict.fromkeys(cited_numbers(piece.text)) if 1 <= n <= len(passages))
    words = sorted(set(terms(body)) - _FRAMING)
    names = {n.casefold() for n in _CALL.findall(body)} if piece.code else identifiers(body)
    # Also what is left of a bare list of citations ("[1], [2]" -> ","): nothing to say.
    bare = not words and not re.search(r"\w", body)
    # "The documents do not say." is made of such words too, but it tells the reader something.
    points = not piece.code and not names and set(words) <= _ABOUT_SOURCES and (words or bare)
    if points and not _NOT_A_CLAIM.search(body):
        return SentenceSupport("", (), False, False, 0.0, piece.prefix.rstrip(" "))
    # A line that ends in a colon introduces what follows ("The relevant passages:").
    is_claim = (
        len(words) + len(names) >= 2 and not body.endswith(":") and not _NOT_A_CLAIM.search(body)
    )
    if piece.code:
        is_claim = bool(names)
    scored = {}
    for passage in passages:
        words_share = _overlap(words, names, passage)
        cosine = meaning.get(passage.number, 0.0)
        supports = words_share >= WORDS_ALONE or (
            words_share >= WORDS_WITH_MEANING and cosine >= MEANING
        )
        scored[passage.number] = (supports, words_share + 0.5 * max(cosine, 0.0))
    supporting = [n for n, (ok, _) in scored.items() if ok]
    text = body if not piece.code else piece.text
    if not is_claim:
        return SentenceSupport(text, (), False, False, 0.0, piece.prefix, piece.code)
    if not piece.code and _UNFINISHED.search(body):
        supporting = []
    elif not supporting and (pair := _two_passage_support(words, names, passages)):
        return SentenceSupport(text, pair, True, True, WORDS_ALONE, piece.prefix, piece.code)
    if not supporting:
        best = max((score for _, score in scored.values()), default=0.0)
        return SentenceSupport(text, (), False, True, best, piece.prefix, piece.code)
    kept = tuple(n for n in given if n in supporting)[:MAX_CITATIONS]
    if not kept:
        kept = (max(supporting, key=lambda n: scored[n][1]),)
    floor = CO_SUPPORT * max(scored[n][1] for n in kept)
    also = sorted(
        (n for n in supporting if n not in kept and scored[n][1] >= floor),
        key=lambda n: -scored[n][1],
    )
    if len(words) >= MIN_WORDS_TO_ADD:
        kept += tuple(also[: MAX_CITATIONS - len(kept)])
    return SentenceSupport(
        text, kept, True, True, max(scored[n][1] for n in kept), piece.prefix, piece.code
    )


def _evidence(
    sentences: list[SentenceSupport], passages: list[_Passage], embed: EmbedFn | None
) -> list[Evidence]:
    """Up to three quotes, one per cited source: its sentence closest to what the answer says."""
    by_number = {p.number: p for p in passages}
    quotes = []
    for number in dict.fromkeys(n for s in sentences if s.supported for n in s.citations):
        passage = by_number[number]
        # The first sentence citing the source is the one the answer leads with.
        said = next(strip_citations(s.text) for s in sentences if number in s.citations)
        words, names = set(terms(said)), identifiers(said)

        def closeness(candidate: str, words: set[str] = words, names: set[str] = names) -> float:
            # A code name the answer took is the surest sign of the sentence it came from.
            folded = candidate.casefold()
            found = len(words & set(terms(candidate))) + 3 * sum(n in folded for n in names)
            return found / math.sqrt(len(candidate) + 1)

        # A table-of-contents line names a topic and its page, not what the answer says.
        candidates = [s for s in passage.sentences or [passage.hit.text] if says_something(s)]
        if not candidates:
            continue
        quote = _short(max(candidates, key=closeness))
        # Overlapping chunks hold the same sentence: shown once, under the first number citing it.
        if any(q.quote == quote and q.source == passage.hit.source for q in quotes):
            continue
        hit = passage.hit
        quotes.append(Evidence(number, hit.source, hit.page, quote, hit.location, hit.ocr))
        if len(quotes) == MAX_EVIDENCE:
            break
    return quotes


def _short(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    return text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
