"""The conversation as the chat page keeps it: a question, then its answer, as typed turns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from llm.answering.attribution import Attribution, Evidence
from llm.answering.pipeline import Source
from llm.records.trace_store import TraceRecord
from llm.service import Notice, Reply


@dataclass(frozen=True)
class QuestionTurn:
    content: str
    role: ClassVar[Literal["user"]] = "user"


@dataclass
class AnswerTurn:
    """An answer as the page shows it: the checked text, its quotes and sources, and its records.

    `langsmith_url` and `tracing_notice` may be filled in after the answer is drawn.
    """

    content: str
    attribution: Attribution | None = None
    # The quotes shown under the answer (none for an extractive answer: it is quotes already).
    evidence: list[Evidence] = field(default_factory=list)
    cited: list[Source] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    prompt: list[dict[str, str]] = field(default_factory=list)
    trace_id: str | None = None
    entry_id: str | None = None
    cached: bool = False
    notices: tuple[Notice, ...] = ()
    langsmith_url: str | None = None
    tracing_notice: str | None = None
    role: ClassVar[Literal["assistant"]] = "assistant"

    @classmethod
    def from_reply(cls, reply: Reply) -> AnswerTurn:
        result = reply.result
        return cls(
            content=result.answer,
            attribution=result.attribution,
            evidence=result.quotes,
            cited=result.cited_sources(),
            sources=result.sources,
            provider=result.provider,
            model=result.model,
            prompt=result.prompt_messages,
            trace_id=reply.trace_id,
            entry_id=reply.entry_id,
            cached=reply.cached,
            notices=reply.notices,
            langsmith_url=reply.langsmith_url,
        )

    @classmethod
    def from_record(cls, record: TraceRecord) -> AnswerTurn:
        """The answer of a kept trace with its quotes and sources, drawn as it was shown."""
        attribution = Attribution.from_json(record.attribution) if record.attribution else None
        return cls(
            content=record.answer,
            attribution=attribution,
            evidence=attribution.evidence if attribution else [],
            sources=[Source.from_json(source) for source in record.sources],
        )

    def to_json(self) -> dict[str, Any]:
        """The answer as a conversation keeps it: what redraws it, not the prompt it came from."""
        return {
            "content": self.content,
            "attribution": self.attribution.to_json() if self.attribution else None,
            "evidence": [asdict(quote) for quote in self.evidence],
            "cited": [asdict(source) for source in self.cited],
            "sources": [asdict(source) for source in self.sources],
            "provider": self.provider,
            "model": self.model,
            "trace_id": self.trace_id,
            "entry_id": self.entry_id,
            "cached": self.cached,
            "notices": [asdict(notice) for notice in self.notices],
            "langsmith_url": self.langsmith_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnswerTurn:
        """An answer kept by `to_json`, drawn again as it was shown."""
        attribution = data.get("attribution")
        return cls(
            content=data["content"],
            attribution=Attribution.from_json(attribution) if attribution else None,
            evidence=[Evidence(**quote) for quote in data.get("evidence", [])],
            cited=[Source.from_json(source) for source in data.get("cited", [])],
            sources=[Source.from_json(source) for source in data.get("sources", [])],
            provider=data.get("provider", ""),
            model=data.get("model", ""),
            trace_id=data.get("trace_id"),
            entry_id=data.get("entry_id"),
            cached=data.get("cached", False),
            notices=tuple(Notice(**notice) for notice in data.get("notices", [])),
            langsmith_url=data.get("langsmith_url"),
        )

    @property
    def unsupported(self) -> int:
        return self.attribution.unsupported if self.attribution else 0

    @property
    def mostly_unsupported(self) -> bool:
        return self.attribution.mostly_unsupported if self.attribution else False


ChatTurn = QuestionTurn | AnswerTurn


def history_pairs(turns: list[ChatTurn]) -> list[tuple[str, str]]:
    """(question, answer) pairs of the conversation so far, for follow-up questions."""
    return [
        (question.content, answer.content)
        for question, answer in zip(turns[::2], turns[1::2], strict=False)
        if isinstance(question, QuestionTurn) and isinstance(answer, AnswerTurn)
    ]
