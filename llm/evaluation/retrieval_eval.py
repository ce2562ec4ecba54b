"""Retrieval quality on a question set: recall@n, MRR and latency of any search function."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.records import SearchHit

# The recall cut-offs every report shows; a search must return at least the largest of them.
REPORTED_RECALLS = (1, 5)

SearchFn = Callable[[str, int], list[SearchHit]]


@dataclass(frozen=True)
class Question:
    """One line of qa.jsonl: the answer is in file `source` on one of `pages` (1-based).
    `history` holds the questions asked before it in the same conversation (a follow-up)."""

    id: str
    question: str
    source: str
    pages: tuple[int, ...]
    history: tuple[str, ...] = ()

    def is_hit(self, hit: SearchHit) -> bool:
        return hit.source == self.source and hit.page in self.pages


@dataclass(frozen=True)
class QuestionResult:
    """How one question fared: rank of the first hit (None if not in the top k) and search time."""

    question: Question
    rank: int | None
    latency_ms: float
    top: SearchHit | None


@dataclass(frozen=True)
class EvalReport:
    """Per-question results over the top `k`, and the figures computed from them."""

    k: int
    results: list[QuestionResult]

    def recall_at(self, n: int) -> float:
        """Share of questions with a hit in the first n results."""
        if n > self.k:
            raise ValueError(f"recall@{n} needs at least {n} results, the search returned {self.k}")
        return mean([r.rank is not None and r.rank <= n for r in self.results])

    @property
    def mrr(self) -> float:
        """Mean reciprocal rank over the top k (a miss counts 0)."""
        return mean([1 / r.rank if r.rank else 0.0 for r in self.results])

    @property
    def misses(self) -> list[QuestionResult]:
        return [r for r in self.results if r.rank is None]

    def latency_ms(self, pct: float) -> float:
        return percentile([r.latency_ms for r in self.results], pct)

    def to_json(self) -> dict[str, Any]:
        return {
            "questions": len(self.results),
            "k": self.k,
            **{f"recall_at_{n}": round(self.recall_at(n), 4) for n in REPORTED_RECALLS},
            f"mrr_at_{self.k}": round(self.mrr, 4),
            "search_ms_p50": round(self.latency_ms(50), 1),
            "search_ms_p95": round(self.latency_ms(95), 1),
            "per_question": [
                {
                    "id": r.question.id,
                    "question": r.question.question,
                    "source": r.question.source,
                    "pages": list(r.question.pages),
                    "rank": r.rank,
                    "top_source": r.top.source if r.top else None,
                    "top_page": r.top.page if r.top else None,
                    "latency_ms": round(r.latency_ms, 1),
                }
                for r in self.results
            ],
        }


def load_questions(path: Path) -> list[Question]:
    """Questions from a JSON-lines file; a malformed line raises ValueError naming its number."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            earlier = row.get("history", [])
            if not isinstance(earlier, list):
                raise TypeError("history must be a list of the questions asked before")
            history = tuple(str(question) for question in earlier)
            questions.append(
                Question(
                    str(row["id"]), row["question"], row["source"], tuple(row["pages"]), history
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a valid question ({error})") from None
    return questions


def evaluate(search: SearchFn, questions: Sequence[Question], k: int = 10) -> EvalReport:
    """Run every question through `search(question, k)` and find where its answer ranks."""
    results = []
    for question in questions:
        started = time.perf_counter()
        hits = search(question.question, k)
        latency_ms = (time.perf_counter() - started) * 1000
        rank = next((n for n, hit in enumerate(hits[:k], start=1) if question.is_hit(hit)), None)
        results.append(QuestionResult(question, rank, latency_ms, hits[0] if hits else None))
    return EvalReport(k, results)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `pct`% at or below it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)), 1) - 1]
