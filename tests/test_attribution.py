"""Attribution on hand-made passages: right citations added or corrected, invented claims flagged.

The embedder is the real MiniLM model, so a paraphrase is judged as the product judges it.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from ingest.embeddings import MiniLMEmbeddings
from ingest.records import SearchHit
from llm.answering.attribution import (
    Attribution,
    attribute,
    before_repeat,
    cited_numbers,
    finished_part,
    split_answer,
    with_citations,
)

PASSAGES = [
    SearchHit(
        "manual",
        "R-data.pdf",
        15,
        3,
        0.6,
        "Sometimes data files have no field delimiters but have fields in pre-specified columns. "
        "Function read.fwf provides a simple way to read such files, specifying a vector of "
        "field widths. Function read.fortran is a similar function for fixed-format files.",
    ),
    SearchHit(
        "manual",
        "R-data.pdf",
        8,
        1,
        0.5,
        "The function write.table writes a data frame to a text file. "
        "The default field separator is a single space.",
    ),
    SearchHit(
        "lease",
        "lease.txt",
        1,
        0,
        0.4,
        "Cats are allowed in the flat. Dogs need the landlord's written permission.",
    ),
]


@pytest.fixture(scope="module")
def embed():
    return MiniLMEmbeddings().embed_documents


def test_a_supported_sentence_without_a_citation_gets_the_right_one(embed) -> None:
    result = attribute("Use read.fwf and give it the field widths.", PASSAGES, embed)
    [sentence] = result.sentences
    assert sentence.supported and sentence.citations == (1,)
    assert result.text == "Use read.fwf and give it the field widths [1]."


def test_a_wrong_citation_is_corrected(embed) -> None:
    result = attribute(
        "A data frame is written to a text file with write.table [3].", PASSAGES, embed
    )
    assert result.sentences[0].citations == (2,)
    assert cited_numbers(result.text) == [2]


def test_a_right_citation_is_kept_even_when_another_passage_also_matches(embed) -> None:
    answer = "Dogs need the landlord's written permission [3]."
    assert attribute(answer, PASSAGES, embed).text == answer


def test_an_invented_sentence_is_flagged_and_loses_its_citation(embed) -> None:
    answer = (
        "Function read.fwf reads fixed-width files [1]. "
        "It was written by Ross Ihaka in 1997 and is very fast on large files [1]."
    )
    result = attribute(answer, PASSAGES, embed)
    first, invented = result.sentences
    assert first.supported and first.citations == (1,)
    assert invented.unsupported and invented.citations == ()
    assert result.unsupported_share == 0.5
    assert result.text.endswith("is very fast on large files.")


def test_a_wrong_function_name_is_not_supported_by_a_passage_on_the_same_topic(embed) -> None:
    result = attribute(
        "Fixed-width files are read with read.csv2 and field widths.", PASSAGES, embed
    )
    assert result.sentences[0].unsupported


def test_statements_that_the_documents_do_not_say_are_not_claims(embed) -> None:
    result = attribute(
        "The documents do not say how heavy the bike is. Here is what they cover:", PASSAGES, embed
    )
    assert [s.claim for s in result.sentences] == [False, False]
    assert result.unsupported_share == 0.0 and not result.mostly_unsupported


def test_an_answer_that_the_documents_do_not_say_is_kept(embed) -> None:
    # Made of words about the sources only, like a pointer, but it is the whole answer: dropped,
    # the reader saw an empty reply (a follow-up of tests/fixtures/followups-r did).
    for answer, shown in [
        ("The documents do not say.", "The documents do not say."),
        ("The sources do not mention it [2].", "The sources do not mention it."),
    ]:
        result = attribute(answer, PASSAGES, embed)
        assert result.text == shown
        assert result.claims == 0 and not result.mostly_unsupported


def test_a_sentence_that_only_points_at_the_sources_is_dropped(embed) -> None:
    answer = (
        "Use read.fwf with the field widths [1]. The source for this information is [1]. "
        "These details are fully described in sources [1] and [2]."
    )
    result = attribute(answer, PASSAGES, embed)
    assert result.text == "Use read.fwf with the field widths [1]."
    assert result.claims == 1 and result.unsupported == 0


def test_a_list_of_citations_is_removed_whole_and_a_bare_one_dropped(embed) -> None:
    answer = (
        "Use read.fwf with the field widths [1]. Writing is done by write.table [1] and [2].\n\n"
        "[1], [2]"
    )
    result = attribute(answer, PASSAGES, embed)
    assert result.text.rstrip() == (
        "Use read.fwf with the field widths [1]. Writing is done by write.table [2]."
    )
    assert result.claims == 2 and result.unsupported == 0


def test_a_sentence_cites_each_passage_that_supports_it_as_well(embed) -> None:
    overlap = SearchHit(
        "manual",
        "R-data.pdf",
        16,
        4,
        0.5,
        "Function read.fwf provides a simple way to read such files, specifying a vector of "
        "field widths. Widths may be negative to skip columns.",
    )
    passages = [*PASSAGES, overlap]
    both = attribute("Function read.fwf reads such files given field widths [1].", passages, embed)
    assert both.sentences[0].citations == (1, 4)
    # The lease supports a sentence about cats; the manuals do not, so they are not added.
    lease = attribute("Cats are allowed in the flat.", passages, embed)
    assert lease.sentences[0].citations == (3,)
    # A bare name in a list is in every passage that mentions it: that is no second support.
    listed = attribute("- read.fwf [1]", passages, embed)
    assert listed.sentences[0].citations == (1,)


def test_a_sentence_naming_functions_from_two_passages_cites_both(embed) -> None:
    answer = "Fixed-width files are read with read.fwf and a data frame is written by write.table."
    result = attribute(answer, PASSAGES, embed)
    assert result.sentences[0].supported and result.sentences[0].citations == (1, 2)
    invented = attribute(
        "Files are read with read.fwf and written with write.csv9.", PASSAGES, embed
    )
    assert invented.sentences[0].unsupported


def test_a_sentence_may_end_with_a_preposition(embed) -> None:
    passage = SearchHit(
        "spec", "mime.pdf", 15, 2, 0.5, "It is not for listing the schemes an app loads files from."
    )
    result = attribute(
        "It is not for listing the schemes an app loads files from.", [passage], embed
    )
    assert result.sentences[0].supported
    assert attribute("The recommended order is [1].", [passage], embed).sentences[0].unsupported


def test_a_sentence_goes_on_past_e_g_and_i_e(embed) -> None:
    answer = (
        "Files with fields in pre-specified columns, e.g. from punched cards, are read with "
        "read.fwf, i.e. by specifying a vector of field widths."
    )
    result = attribute(answer, PASSAGES, embed)
    [sentence] = result.sentences
    assert sentence.supported and sentence.citations == (1,)
    assert result.text.endswith("field widths [1].")


def test_mostly_unsupported_answers_are_recognised(embed) -> None:
    answer = "The moon is made of cheese. Paris is the capital of Spain. Dogs need permission."
    result = attribute(answer, PASSAGES, embed)
    assert result.unsupported == 2 and result.mostly_unsupported


def test_evidence_quotes_the_sentence_the_answer_took(embed) -> None:
    result = attribute("write.table writes a data frame to a text file.", PASSAGES, embed)
    [evidence] = result.evidence
    assert (evidence.number, evidence.source, evidence.page) == (2, "R-data.pdf", 8)
    assert evidence.quote == "The function write.table writes a data frame to a text file."


def test_a_quote_is_shown_once_and_never_a_table_of_contents_line(embed) -> None:
    def hit(page: int, chunk: int, text: str) -> SearchHit:
        return SearchHit("manual", "R-data.pdf", page, chunk, 0.5, text)

    sentence = "Function read.fortran is a similar function for fixed-format files."
    passages = [
        hit(15, 3, f"Widths are given in a vector. {sentence}"),
        hit(15, 4, f"{sentence} It takes Fortran-style column specifications."),
        hit(2, 0, "2.2 read.fortran . . . . . . . . . . . . . . . . . . 15"),
    ]
    result = attribute("Use read.fortran [1][2][3].", passages, embed)
    assert result.sentences[0].citations == (1, 2)
    assert [(e.number, e.quote) for e in result.evidence] == [(1, sentence)]
    toc_only = attribute("Use read.fortran [3].", passages[2:], embed)
    assert toc_only.sentences[0].citations == (1,) and toc_only.evidence == []


def test_splitting_keeps_lists_code_and_spacing(embed) -> None:
    answer = (
        "Two ways:\n- Use read.fwf [1].\n- Or read.fortran.\n\n"
        '```r\nread.fwf("x.txt", widths = c(2, 3))\n```\nDone.'
    )
    pieces = split_answer(answer)
    assert "".join(p.prefix + p.text for p in pieces) == answer
    assert [p.code for p in pieces].count(True) == 1
    result = attribute(answer, PASSAGES, embed)
    assert "- Use read.fwf [1].\n- Or read.fortran [1].\n" in result.text
    code = next(s for s in result.sentences if s.code)
    assert code.supported and code.citations == (1,)


def test_without_an_embedder_only_word_overlap_counts() -> None:
    result = attribute("Function read.fwf reads files by field widths.", PASSAGES)
    assert result.sentences[0].citations == (1,)


def test_citation_marks_go_before_the_full_stop() -> None:
    assert with_citations("It works.", (1, 2)) == "It works [1][2]."
    assert with_citations("It works", (3,)) == "It works [3]"
    assert cited_numbers("See [1], [2, 3] and [Source 4].") == [1, 2, 3, 4]


def test_a_kept_attribution_reads_back_as_it_was(embed) -> None:
    """The Traces page draws an answer from its stored JSON exactly as the chat drew it."""
    answer = "Use read.fwf with the field widths. Dogs may always come along [3]."
    result = attribute(answer, PASSAGES, embed)
    again = Attribution.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result and again.unsupported == 1 and again.text == result.text


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Maybe they have to be crazy [1]. How else", "Maybe they have to be crazy [1]."),
        ("- Cats are allowed [3].\n- Dogs need", "- Cats are allowed [3]."),
        ("Use read.fwf [1]. For example:\n```r\nread.fwf(file,", "Use read.fwf [1]."),
        ("Use read.fwf:\n```r\nread.fwf(x)\n```\nThen", "Use read.fwf:\n```r\nread.fwf(x)\n```"),
        ("Are cats allowed? Yes [3]. Dogs", "Are cats allowed? Yes [3]."),
        ("Nothing here is finished", "Nothing here is finished"),
        ("Cats are allowed [3].", "Cats are allowed [3]."),
    ],
)
def test_an_unfinished_last_sentence_is_left_out(written: str, shown: str) -> None:
    """What a model wrote up to its length limit, as the answer shows it: up to the last
    finished sentence or code block, without a line that only introduced what was cut."""
    assert finished_part(written) == shown


# The h7 answer of the held-out set (Qwen 1.5B, 2026-12-07), shortened: its first paragraph again.
RECITED = (
    "Use the command n to execute the next statement [2]. The debugger provides access only to "
    "interpreted expressions [2].\n\nThe body of a function is usually a collection of "
    "statements in braces [5].\n\nThe debugger provides access only to interpreted expressions "
    "[2][3]. If a function calls a foreign language then no access is provided [2]."
)


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (
            RECITED,
            "Use the command n to execute the next statement [2]. The debugger provides access "
            "only to interpreted expressions [2].\n\nThe body of a function is usually a "
            "collection of statements in braces [5].",
        ),
        # Said again with other spacing or citations is still said again.
        (
            "Cats are allowed in the flat [3]. Cats are  allowed in the flat.",
            "Cats are allowed in the flat [3].",
        ),
        # Short sentences and code may fairly come twice.
        ("Are cats allowed? Yes [3]. Are dogs allowed? Yes [4].", None),
        (
            "```r\nx <- read.fwf(f, widths = 1)\n```\nOr:\n```r\nx <- read.fwf(f, widths = 1)\n```",
            None,
        ),
        ("Cats are allowed in the flat [3]. Dogs are allowed in the flat [4].", None),
    ],
)
def test_an_answer_ends_where_it_starts_repeating_itself(written: str, shown: str | None) -> None:
    assert before_repeat(written) == (written if shown is None else shown)


def test_an_answer_cut_short_says_so_when_read_back(embed) -> None:
    result = dataclasses.replace(attribute("Use read.fwf [1].", PASSAGES, embed), cut_short=True)
    assert Attribution.from_json(json.loads(json.dumps(result.to_json()))).cut_short
    older = {key: value for key, value in result.to_json().items() if key != "cut_short"}
    assert not Attribution.from_json(older).cut_short, "a trace kept before it reads as whole"


def test_a_sentence_cut_off_before_its_point_is_not_supported(embed) -> None:
    """The words match the passage, yet the sentence says nothing: the page leads with quotes."""
    result = attribute("Fixed-width files are read by [1].", PASSAGES, embed)
    [sentence] = result.sentences
    assert sentence.claim and not sentence.supported and sentence.citations == ()
    assert result.mostly_unsupported


def test_evidence_names_the_slide_or_ocr_page_and_keeps_it_in_the_trace(embed) -> None:
    slide = SearchHit(
        "deck", "heron.pptx", 3, 2, 0.7, "The Heron project reached 4.2 million euros.", "slide 3"
    )
    scan = SearchHit("scan", "z.pdf", 2, 1, 0.6, "The frame warranty lasts seven years.", ocr=True)
    answer = "Heron reached 4.2 million euros [1]. The frame warranty lasts seven years [2]."

    result = attribute(answer, [slide, scan], embed)

    assert [quote.where for quote in result.evidence] == ["slide 3", "page 2 (OCR)"]
    again = Attribution.from_json(json.loads(json.dumps(result.to_json())))
    assert [quote.where for quote in again.evidence] == ["slide 3", "page 2 (OCR)"]
