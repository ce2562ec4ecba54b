"""Retrieval scoring: recall@n, MRR and latency percentiles on hand-made search results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.records import SearchHit
from llm.evaluation.retrieval_eval import (
    EvalReport,
    Question,
    QuestionResult,
    evaluate,
    load_questions,
)


def hit(source: str, page: int) -> SearchHit:
    return SearchHit("doc", source, page, 0, 0.5, "text")


QUESTIONS = [
    Question("q1", "first", "a.pdf", (3, 4)),
    Question("q2", "second", "b.pdf", (2,)),
    Question("q3", "third", "c.pdf", (1,)),
    Question("q4", "fourth", "a.pdf", (7,)),
]
# The answer ranks 1st, 3rd (after a right file on a wrong page), nowhere, and 7th.
RESULTS = {
    "first": [hit("a.pdf", 3), hit("b.pdf", 2)],
    "second": [hit("a.pdf", 2), hit("b.pdf", 5), hit("b.pdf", 2), hit("b.pdf", 2)],
    "third": [hit("a.pdf", 1)] * 10,
    "fourth": [hit("b.pdf", 7)] * 6 + [hit("a.pdf", 7)],
}


def search(query: str, k: int) -> list[SearchHit]:
    """Hand-made results, so the expected figures can be worked out on paper."""
    return RESULTS[query][:k]


def test_scores_ranks_recall_and_mrr() -> None:
    report = evaluate(search, QUESTIONS, k=10)

    assert [result.rank for result in report.results] == [1, 3, None, 7]
    assert report.recall_at(1) == 0.25
    assert report.recall_at(5) == 0.5
    assert report.recall_at(10) == 0.75
    assert report.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 7) / 4)
    assert [miss.question.id for miss in report.misses] == ["q3"]
    assert report.results[2].top == hit("a.pdf", 1)


def test_an_answer_below_k_counts_as_a_miss() -> None:
    report = evaluate(search, QUESTIONS, k=5)

    assert [result.rank for result in report.results] == [1, 3, None, None]
    assert report.mrr == pytest.approx((1 + 1 / 3) / 4)
    with pytest.raises(ValueError, match="recall@10"):
        report.recall_at(10)


def test_latency_percentiles_are_nearest_rank() -> None:
    question = QUESTIONS[0]
    results = [QuestionResult(question, 1, float(ms), None) for ms in range(20, 0, -1)]
    report = EvalReport(10, results)

    assert report.latency_ms(50) == 10.0
    assert report.latency_ms(95) == 19.0
    assert report.latency_ms(100) == 20.0


def test_report_json_lists_every_question() -> None:
    figures = evaluate(search, QUESTIONS, k=10).to_json()

    assert figures["recall_at_1"] == 0.25
    assert figures["recall_at_5"] == 0.5
    assert figures["mrr_at_10"] == pytest.approx(0.369, abs=1e-3)
    assert [row["rank"] for row in figures["per_question"]] == [1, 3, None, 7]
    assert figures["per_question"][2]["top_source"] == "a.pdf"


def test_loads_the_shared_question_set(fixtures_dir: Path) -> None:
    questions = load_questions(fixtures_dir / "eval" / "qa.jsonl")

    assert len(questions) == 25
    assert all(question.pages and question.source.endswith(".pdf") for question in questions)
    assert questions[0].id == "d1"


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    good = {"id": "x", "question": "q?", "source": "a.pdf", "pages": [1]}
    path.write_text(json.dumps(good) + "\n\n" + '{"id": "y", "question": "no source"}\n')

    with pytest.raises(ValueError, match="line 3"):
        load_questions(path)
