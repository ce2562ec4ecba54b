"""Evidence selection: the sentences that bear on the question, within the budget, numbers kept."""

from __future__ import annotations

from ingest.records import SearchHit
from llm.answering.evidence import GAP, select_evidence, units
from llm.answering.prompts import source_header
from llm.models.choice import approx_tokens

FILLER = " ".join(f"Line {n} of the safety notes says nothing about prices." for n in range(12))
PASSAGES = [
    SearchHit(
        "bike",
        "handbook.pdf",
        3,
        4,
        0.7,
        f"{FILLER} The Zephyr X2 costs 2,400 euros. Shops give a ten percent discount in May. "
        f"{FILLER}",
    ),
    SearchHit("bike", "handbook.pdf", 9, 7, 0.6, "Tyres are 28 mm wide. " + FILLER),
    SearchHit(
        "bike",
        "handbook.pdf",
        3,
        5,
        0.5,
        "The Zephyr X2 costs 2,400 euros. Shops give a ten percent discount in May.",
    ),
]


def test_a_zero_budget_keeps_every_passage_whole() -> None:
    assert select_evidence("price?", PASSAGES, 0, approx_tokens) == list(enumerate(PASSAGES, 1))


def test_the_matching_sentence_and_its_neighbour_are_kept_within_the_budget() -> None:
    budget = 60
    chosen = select_evidence("How much does the Zephyr X2 cost?", PASSAGES, budget, approx_tokens)
    numbers = [number for number, _ in chosen]
    assert numbers[0] == 1
    text = chosen[0][1].text
    # The fact sits in the sentence after the one that matches the question.
    assert "The Zephyr X2 costs 2,400 euros. Shops give a ten percent discount in May." in text
    assert len(text) < len(PASSAGES[0].text) / 3 and GAP.strip() in text
    cost = sum(approx_tokens(h.text) + approx_tokens(source_header(n)) for n, h in chosen)
    assert cost <= budget + len(chosen) * 8


def test_a_sentence_repeated_by_an_overlapping_chunk_is_sent_once() -> None:
    chosen = select_evidence("How much does the Zephyr X2 cost?", PASSAGES, 400, approx_tokens)
    texts = " ".join(hit.text for _, hit in chosen)
    assert texts.count("costs 2,400 euros") == 1
    assert 3 not in [number for number, _ in chosen]


def test_long_sentences_are_cut_into_pieces() -> None:
    pieces = units("word " * 200)
    assert len(pieces) > 3 and all(len(p) <= 200 for p in pieces)
    assert " ".join(pieces).split() == ["word"] * 200


def test_a_passage_reads_on_into_the_next_chunk_when_that_was_found_too() -> None:
    # The question matches the heading at the very end of one chunk; the answer is the first
    # sentence of the next chunk, found lower in the list.
    heading = SearchHit(
        "mime", "spec.pdf", 14, 20, 0.6, f"{FILLER} Recommended checking order for file types:"
    )
    other = SearchHit("bike", "handbook.pdf", 9, 7, 0.5, "Tyres are 28 mm wide. " + FILLER)
    after = SearchHit(
        "mime",
        "spec.pdf",
        15,
        21,
        0.3,
        "Explicit types come first, then globs, then magic rules. " + FILLER,
    )
    question = "What is the recommended checking order?"
    chosen = dict(select_evidence(question, [heading, other, after], 60, approx_tokens))
    assert "Recommended checking order" in chosen[1].text
    assert chosen[3].text.startswith("Explicit types come first")
    assert (chosen[3].page, chosen[3].source) == (15, "spec.pdf")


def test_bare_page_numbers_are_not_evidence() -> None:
    assert units("The cache is a binary file. 14") == ["The cache is a binary file."]
    assert units("• 2.\n\nSee 2.5 for magic rules. 8") == ["See 2.5 for magic rules."]
