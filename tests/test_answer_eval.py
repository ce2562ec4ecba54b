"""Answer evaluation: keys, verdicts and figures, on answers of the real extractive pipeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingest.records import SearchHit
from llm.answering.pipeline import AnswerPipeline, AnswerResult
from llm.evaluation.answer_eval import AnswerKey, evaluate_answers, judge, load_answer_keys
from llm.evaluation.retrieval_eval import Question, load_questions
from llm.models.choice import extractive_choice

PASSAGES = [
    SearchHit("r", "R-data.pdf", 15, 3, 0.6, "Function read.fwf reads fixed-width files."),
    SearchHit("r", "R-data.pdf", 8, 1, 0.5, "Function write.table writes a data frame out."),
]


def search(query: str, k: int) -> list[SearchHit]:
    words = set(query.lower().split())
    return sorted(PASSAGES, key=lambda h: -len(words & set(h.text.lower().split())))[:k]


def pipeline() -> AnswerPipeline:
    return AnswerPipeline(search, extractive_choice(), top_k=2, max_answer_tokens=64)


def test_keys_load_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"id": "q1", "facts": [["read.fwf", "read.fortran"], ["widths"]]}))
    assert load_answer_keys(path)["q1"].facts == (("read.fwf", "read.fortran"), ("widths",))
    path.write_text('{"id": "q1", "facts": [[]]}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_answer_keys(path)


def test_every_fact_group_must_be_present_case_insensitively() -> None:
    key = AnswerKey("q", (("read.fwf", "read.fortran"), ("widths",)))
    assert key.missing("Use READ.FWF with the widths.") == []
    assert key.missing("Use read.fortran.") == [("widths",)]


def test_a_gold_page_citation_and_a_wrong_answer_are_told_apart() -> None:
    result = pipeline().answer("Which function reads fixed-width files?")
    gold = Question("q", "Which function reads fixed-width files?", "R-data.pdf", (14, 15))
    right = judge(gold, AnswerKey("q", (("read.fwf",),)), result)
    assert right.correct and right.cites_gold and right.cited[0] == ("R-data.pdf", 15)
    other_page = Question("q", gold.question, "R-data.pdf", (40,))
    wrong = judge(other_page, AnswerKey("q", (("read.csv",),)), result)
    assert not wrong.correct and not wrong.cites_gold and wrong.cited


def test_the_report_figures_come_from_the_outcomes() -> None:
    questions = [
        Question("a", "Which function reads fixed-width files?", "R-data.pdf", (15,)),
        Question("b", "How do I write a data frame out?", "R-data.pdf", (8,)),
        Question("c", "A question without a key", "R-data.pdf", (1,)),
    ]
    keys = {"a": AnswerKey("a", (("read.fwf",),)), "b": AnswerKey("b", (("write.csv",),))}
    report = evaluate_answers(pipeline().answer, questions, keys, "extractive", "extractive")
    assert [o.question.id for o in report.outcomes] == ["a", "b"]
    assert report.correct == 0.5 and report.cites_gold == 1.0 and report.cites_any == 1.0
    assert report.unsupported_share == 0.0
    figures = report.to_json()
    assert figures["per_question"][1]["missing_facts"] == [["write.csv"]]
    assert figures["total_s_p95"] >= figures["total_s_p50"] >= 0


def test_a_follow_up_is_asked_after_its_earlier_questions_in_one_conversation() -> None:
    asked: list[tuple[str, list[tuple[str, str]]]] = []

    def answer(question: str, history: Sequence[tuple[str, str]]) -> AnswerResult:
        asked.append((question, list(history)))
        return pipeline().answer(question, history)

    follow_up = Question(
        "f",
        "And which one writes a data frame out?",
        "R-data.pdf",
        (8,),
        history=("Which function reads fixed-width files?",),
    )
    keys = {"f": AnswerKey("f", (("write.table",),))}
    report = evaluate_answers(answer, [follow_up], keys, "extractive", "extractive")

    first_answer = asked[0]
    assert first_answer == ("Which function reads fixed-width files?", [])
    assert asked[1][0] == follow_up.question
    assert asked[1][1] == [(first_answer[0], report.outcomes[0].history[0][1])]
    assert "read.fwf" in report.outcomes[0].history[0][1]
    assert len(asked) == 2 and report.outcomes[0].correct and report.outcomes[0].cites_gold
    assert report.to_json()["per_question"][0]["history"][0][0] == first_answer[0]


def test_questions_load_with_their_history(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "a", "question": "q?", "source": "x.pdf", "pages": [1]},
        {"id": "b", "question": "And?", "source": "x.pdf", "pages": [2], "history": ["q?"]},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    first, second = load_questions(path)
    assert first.history == () and second.history == ("q?",)
    path.write_text(json.dumps({**rows[1], "history": "q?"}))
    with pytest.raises(ValueError, match=r"line 1: .*history must be a list"):
        load_questions(path)


@pytest.mark.parametrize(
    "name", ["eval", "hard", "holdout", "holdout2", "followups", "followups-r"]
)
def test_each_bundled_set_has_a_key_for_every_question_and_its_documents(
    fixtures_dir: Path, name: str
) -> None:
    folder = fixtures_dir / name
    questions = load_questions(folder / "qa.jsonl")
    keys = load_answer_keys(folder / "answers.jsonl")

    assert [q.id for q in questions] == list(keys)
    docs = {path.name for path in (folder / "docs").iterdir()}
    assert {q.source for q in questions} <= docs
    # A follow-up set is only follow-ups; the others hold none.
    assert all(bool(q.history) == name.startswith("followups") for q in questions)
