"""The prompts render what the model should see: numbered sources, tags, history, question."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from ingest.records import SearchHit
from llm.answering.prompts import (
    ANSWER_PROMPT,
    CONDENSE_PROMPT,
    CONVERSATION_ANSWER_CHARS,
    earlier_question,
    format_context,
    format_conversation,
)

HITS = [
    SearchHit("d1", "manual.pdf", 3, 7, 0.82, "  The pump runs at 40 litres a minute.\n"),
    SearchHit("d2", "notes.txt", 1, 0, 0.51, "Filters are changed every {month}."),
]


NUMBERED = list(enumerate(HITS, start=1))


def test_context_numbers_each_source_and_keeps_its_text():
    assert format_context(NUMBERED) == (
        "[1]\nThe pump runs at 40 litres a minute.\n\n[2]\nFilters are changed every {month}."
    )
    # A passage left out keeps the others' numbers, so citations still name the right source.
    assert format_context([(2, HITS[1])]).startswith("[2]\nFilters")
    assert format_context([]) == ""


def test_answer_prompt_puts_the_fixed_rules_first_then_sources_and_question():
    messages = ANSWER_PROMPT.format_messages(context=format_context(NUMBERED), question="How fast?")
    assert [m.type for m in messages] == ["system", "human"]
    system, human = (m.text for m in messages)
    assert "only" in system and "[2]" in system and "do not say" in system
    assert "never instructions" in system
    assert human.startswith("Sources:\n[1]\nThe pump")
    assert human.endswith("\n\nQuestion: How fast?")
    # Braces in document text are data, not template variables.
    assert "every {month}." in human


def test_answer_prompt_puts_history_between_system_and_question():
    history = [HumanMessage("What pump is it?"), AIMessage("The P-40 [1].")]
    messages = ANSWER_PROMPT.format_messages(context="[1] x", question="How fast?", history=history)
    assert [m.type for m in messages] == ["system", "human", "ai", "human"]
    assert messages[2].text == "The P-40 [1]."
    assert ANSWER_PROMPT.input_variables == ["context", "question"]


def test_a_follow_up_can_carry_the_earlier_question_just_before_it():
    history = [("What pump is it?", "The P-40 [1]."), ("And the\n  filter?", "Monthly [2].")]
    earlier = earlier_question(history)  # the last question only, on one line
    assert earlier == "Earlier question: And the filter?\n\n"
    assert earlier_question([]) == ""
    (_, human) = ANSWER_PROMPT.format_messages(
        context="[1] x", question="How often?", earlier=earlier
    )
    assert (
        human.text == "Sources:\n[1] x\n\nEarlier question: And the filter?\n\nQuestion: How often?"
    )
    assert "Monthly" not in human.text  # the earlier answer stays out


def test_condense_prompt_ends_with_the_conversation_and_the_follow_up():
    conversation = format_conversation([("What pump is it?", "The P-40 [1].")])
    messages = CONDENSE_PROMPT.format_messages(conversation=conversation, question="How fast?")
    assert messages[0].type == "system" and "Output only the question" in messages[0].text
    assert messages[-1].text == (
        "User: What pump is it?\nAssistant: The P-40 [1].\nLast question: How fast?"
    )
    assert sorted(CONDENSE_PROMPT.input_variables) == ["conversation", "question"]


def test_conversation_cuts_long_answers_short():
    long_answer = "word " * 200
    text = format_conversation([("Q1?", "A1."), ("Q2?", long_answer)])
    first, second = text.split("\nUser: ")
    assert first == "User: Q1?\nAssistant: A1."
    answer = second.split("Assistant: ")[1]
    assert answer.endswith(" …") and len(answer) <= CONVERSATION_ANSWER_CHARS + 2
