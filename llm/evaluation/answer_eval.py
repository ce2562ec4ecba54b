"""Answer quality on a question set: correct, cited, supported, and how fast the words came."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.answering.pipeline import AnswerResult
from llm.evaluation.retrieval_eval import Question, mean, percentile

# (question, earlier (question, answer) turns of the same conversation) -> the answer.
AnswerFn = Callable[[str, Sequence[tuple[str, str]]], AnswerResult]


@dataclass(frozen=True)
class AnswerKey:
    """One line of answers.jsonl: a correct answer holds one alternative of every fact group."""

    id: str
    facts: tuple[tuple[str, ...], ...]

    def missing(self, answer: str) -> list[tuple[str, ...]]:
        """The fact groups none of whose alternatives occur in `answer` (case-insensitive)."""
        folded = answer.casefold()
        return [group for group in self.facts if not any(a.casefold() in folded for a in group)]


@dataclass(frozen=True)
class AnswerOutcome:
    """How one question was answered, and what it was judged."""

    question: Question
    answer: str
    missing: list[tuple[str, ...]]
    cited: list[tuple[str, int]]
    cites_gold: bool
    claims: int
    unsupported: int
    first_token_s: float
    total_s: float
    history: tuple[tuple[str, str], ...] = ()

    @property
    def correct(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class AnswerReport:
    """The outcomes of one provider over the question set, and the figures made from them."""

    provider: str
    model: str
    outcomes: list[AnswerOutcome]

    @property
    def correct(self) -> float:
        return mean([o.correct for o in self.outcomes])

    @property
    def cites_any(self) -> float:
        return mean([bool(o.cited) for o in self.outcomes])

    @property
    def cites_gold(self) -> float:
        return mean([o.cites_gold for o in self.outcomes])

    @property
    def unsupported_share(self) -> float:
        """Unsupported sentences among all answer sentences that make a claim, over the set."""
        claims = sum(o.claims for o in self.outcomes)
        return sum(o.unsupported for o in self.outcomes) / claims if claims else 0.0

    def seconds(self, which: str, pct: float) -> float:
        return percentile([getattr(o, which) for o in self.outcomes], pct)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "questions": len(self.outcomes),
            "correct": round(self.correct, 4),
            "cites_any_source": round(self.cites_any, 4),
            "cites_gold_page": round(self.cites_gold, 4),
            "unsupported_sentences": round(self.unsupported_share, 4),
            **{
                f"{which}_p{p}": round(self.seconds(which, p), 2)
                for which in ("first_token_s", "total_s")
                for p in (50, 95)
            },
            "per_question": [
                {
                    "id": o.question.id,
                    "question": o.question.question,
                    "answer": o.answer,
                    "correct": o.correct,
                    "missing_facts": [list(group) for group in o.missing],
                    "cited": [{"source": s, "page": p} for s, p in o.cited],
                    "cites_gold_page": o.cites_gold,
                    "claims": o.claims,
                    "unsupported": o.unsupported,
                    "first_token_s": round(o.first_token_s, 2),
                    "total_s": round(o.total_s, 2),
                    **({"history": [list(turn) for turn in o.history]} if o.history else {}),
                }
                for o in self.outcomes
            ],
        }


def load_answer_keys(path: Path) -> dict[str, AnswerKey]:
    """Answer keys by question id; a malformed line raises ValueError naming its number."""
    keys = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            facts = tuple(tuple(str(alt) for alt in group) for group in row["facts"])
            if not facts or not all(facts):
                raise ValueError("every fact group needs at least one alternative")
            keys[str(row["id"])] = AnswerKey(str(row["id"]), facts)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a valid answer key ({error})") from None
    return keys


def judge(
    question: Question,
    key: AnswerKey,
    result: AnswerResult,
    history: Sequence[tuple[str, str]] = (),
) -> AnswerOutcome:
    """Score one answer against its key and the question's gold pages."""
    cited = [(source.source, source.page) for source in result.cited_sources()]
    attribution = result.attribution
    return AnswerOutcome(
        question=question,
        answer=result.answer,
        missing=key.missing(result.answer),
        cited=cited,
        cites_gold=any(
            source == question.source and page in question.pages for source, page in cited
        ),
        claims=attribution.claims if attribution else 0,
        unsupported=attribution.unsupported if attribution else 0,
        first_token_s=result.timings.first_token_s,
        total_s=result.timings.total_s,
        history=tuple(history),
    )


def evaluate_answers(
    answer: AnswerFn,
    questions: Sequence[Question],
    keys: dict[str, AnswerKey],
    provider: str,
    model: str,
    on_answer: Callable[[AnswerOutcome], None] | None = None,
) -> AnswerReport:
    """Answer every question that has a key and judge it; `on_answer` sees each as it is done.
    A follow-up's earlier questions are answered first, in one conversation, and not judged."""
    outcomes = []
    for question in questions:
        if question.id not in keys:
            continue
        history: list[tuple[str, str]] = []
        for earlier in question.history:
            history.append((earlier, answer(earlier, list(history)).answer))
        outcome = judge(question, keys[question.id], answer(question.question, history), history)
        outcomes.append(outcome)
        if on_answer is not None:
            on_answer(outcome)
    return AnswerReport(provider, model, outcomes)
