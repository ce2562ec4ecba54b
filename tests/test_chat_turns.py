"""The chat's typed turns: built from a reply or a kept trace, paired for follow-up questions."""

from __future__ import annotations

import json

from llm.answering.attribution import Attribution, Evidence, SentenceSupport
from llm.answering.chat_turns import AnswerTurn, QuestionTurn, history_pairs
from llm.answering.pipeline import AnswerResult, Source, Timings, Usage
from llm.service import Notice, Reply

SOURCE = Source(1, "d1", "R-data.pdf", 15, 3, 0.61, "Function read.fwf reads fixed-width files.")
QUOTE = Evidence(1, "R-data.pdf", 15, "Function read.fwf reads fixed-width files.")


def reply(provider: str) -> Reply:
    sentences = [
        SentenceSupport("Use read.fwf.", (1,), True, True, 0.9),
        SentenceSupport("It is fast.", (), False, True, 0.1, prefix=" "),
    ]
    result = AnswerResult(
        answer="Use read.fwf [1]. It is fast.",
        sources=[SOURCE],
        question="How do I read fixed-width files?",
        standalone_question="How do I read fixed-width files?",
        prompt_messages=[{"role": "user", "content": "..."}],
        provider=provider,
        model="qwen",
        usage=Usage(120, 9),
        timings=Timings(0.01, 1.2, 2.5),
        attribution=Attribution(sentences, [QUOTE]),
    )
    return Reply(result, "t1", "e1", notices=(Notice("info", "capped"),))


def test_an_answer_turn_carries_what_the_page_draws() -> None:
    turn = AnswerTurn.from_reply(reply("local"))
    assert (turn.content, turn.role, turn.trace_id, turn.entry_id) == (
        "Use read.fwf [1]. It is fast.",
        "assistant",
        "t1",
        "e1",
    )
    assert turn.evidence == [QUOTE] and turn.cited == [SOURCE] and turn.sources == [SOURCE]
    assert turn.unsupported == 1 and not turn.mostly_unsupported
    assert turn.notices == (Notice("info", "capped"),)


def test_an_extractive_answer_shows_no_second_copy_of_its_quotes() -> None:
    assert AnswerTurn.from_reply(reply("extractive")).evidence == []


def test_follow_ups_see_question_and_answer_pairs_only() -> None:
    answer = AnswerTurn.from_reply(reply("local"))
    turns = [QuestionTurn("first?"), answer, QuestionTurn("refused, never answered?")]
    assert history_pairs(turns) == [("first?", "Use read.fwf [1]. It is fast.")]


def test_an_answer_kept_as_json_is_drawn_again_as_it_was() -> None:
    turn = AnswerTurn.from_reply(reply("local"))
    turn.langsmith_url = "http://127.0.0.1:1984/r/t1"
    kept = json.loads(json.dumps(turn.to_json()))
    again = AnswerTurn.from_json(kept)
    assert again.prompt == [] and "prompt" not in kept
    assert again == AnswerTurn(**{**vars(turn), "prompt": []})
    assert again.attribution is not None and again.attribution.text == turn.attribution.text
    assert again.unsupported == 1
