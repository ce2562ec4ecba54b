"""One question, whoever asks it: answer cache, rate limits, spending cap, answer, bill, trace.

The chat page and `docqa ask` both go through here, so a limit or a cap holds for both and both
leave the same records; the caller only draws (or prints) the events.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.messages import convert_to_messages

from ingest.index import DocumentIndex
from llm.access.ledger import FREE_PROVIDERS, SpendLedger
from llm.access.ratelimit import Limit, Refusal, SharedBuckets
from llm.answering.pipeline import (
    AnswerResult,
    Finished,
    Retrieved,
    Token,
    count_message_tokens,
)
from llm.components import build_pipeline
from llm.models.choice import PROVIDER_LABELS, ChatModelChoice, extractive_choice
from llm.records.cache_keys import answer_cache_key
from llm.records.langsmith_tracing import Tracing, answer_config
from llm.records.trace_store import TraceStore
from llm.retrieval.modes import SearchFn
from llm.settings import Settings

# Errors that mean "this chat model cannot be loaded here", as opposed to a bug.
MODEL_LOAD_ERRORS = (ValueError, RuntimeError, OSError, ImportError)


@dataclass(frozen=True)
class Notice:
    """A line said with an answer: why it was answered another way than asked."""

    kind: Literal["info", "error", "stopped"]
    text: str


@dataclass
class _Partial:
    """What an answer had cost when it was cut off: the prompt sent and the text streamed."""

    prompt: list[dict[str, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Asker:
    """Who asks: the owner their answers are kept under, where from, and the limits they pass."""

    owner: str
    page: str
    session_id: str
    limits: Sequence[Limit] = ()
    # Which documents this asker's search may return (a digest; "" for all): cached answers
    # are shared only between askers who read the same documents.
    scope: str = ""


@dataclass(frozen=True)
class Reply:
    """A finished answer with its records: the trace its links open, the entry feedback goes on
    (a cache hit's own), and the notices said with it."""

    result: AnswerResult
    trace_id: str
    entry_id: str
    cached: bool = False
    notices: tuple[Notice, ...] = ()
    langsmith_url: str | None = None


@dataclass(frozen=True)
class Noticed:
    notice: Notice


@dataclass(frozen=True)
class Refused:
    """A rate limit refused the question; nothing was answered, billed or recorded."""

    refusal: Refusal


@dataclass(frozen=True)
class Failed:
    """The model failed while answering (auth, network, server); nothing was billed."""

    reason: str


@dataclass(frozen=True)
class Answered:
    reply: Reply


ServiceEvent = Noticed | Refused | Failed | Retrieved | Token | Answered


@dataclass
class AnswerCache:
    """Replies to first questions by key, each kept `ttl_s`; bounded and thread-safe."""

    ttl_s: float
    max_entries: int = 2000
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, Reply]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> Reply | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.clock() - entry[0] > self.ttl_s:
                self._entries.pop(key, None)
                return None
            return entry[1]

    def put(self, key: str, reply: Reply) -> None:
        with self._lock:
            self._entries[key] = (self.clock(), reply)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class AnswerService:
    """Answers one question at a time for any caller, applying every rule in one place."""

    def __init__(
        self,
        settings: Settings,
        index: DocumentIndex,
        search: SearchFn,
        load_choice: Callable[[], ChatModelChoice],
        ledger: SpendLedger,
        traces: TraceStore,
        tracing: Tracing | None,
        *,
        limits: SharedBuckets | None = None,
        cache: AnswerCache | None = None,
        url_wait_s: float = 0.5,
        flush_s: float = 0.0,
    ) -> None:
        self.settings = settings
        self.index = index
        self.search = search
        self.load_choice = load_choice
        self.ledger = ledger
        self.traces = traces
        self.tracing = tracing
        self.limits = limits or SharedBuckets()
        self.cache = cache
        self.url_wait_s = url_wait_s
        self.flush_s = flush_s

    def ask(
        self, question: str, history: Sequence[tuple[str, str]], asker: Asker
    ) -> Iterator[ServiceEvent]:
        """Noticed events first, then Answered from the cache, or Refused, or Retrieved, Token
        events as the answer is written, and Answered (or Failed) once it is billed and kept."""
        notices: list[Notice] = []
        choice = self._available_choice(notices)
        key = self._cache_key(question, choice, asker.scope) if not history and self.cache else None
        if key is not None and (cached := self.cache.get(key)) is not None:
            yield Answered(self._cache_hit(cached, question, asker))
            return
        if asker.limits and (refusal := self.limits.take(asker.limits)) is not None:
            yield Refused(refusal)
            return
        choice = self._capped_choice(choice, notices)
        yield from (Noticed(notice) for notice in notices)
        partial = _Partial()
        try:
            result = yield from self._answer(question, history, asker, choice, partial)
        except GeneratorExit:
            # The stream was closed before the answer was kept (its reader went away): the
            # provider was paid all the same, and a cap that missed such answers could be passed.
            self._bill_cut_off(choice, partial)
            raise
        except Exception as error:  # a provider failure (auth, network, server) is reported
            yield Failed(short_reason(error))
            return
        reply = self._keep(result, asker, notices)
        if key is not None:
            self.cache.put(key, reply)
        yield Answered(reply)

    def _answer(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        asker: Asker,
        choice: ChatModelChoice,
        partial: _Partial,
    ) -> Iterator[ServiceEvent]:
        pipeline = build_pipeline(
            self.settings,
            self.search,
            choice,
            self.index.embed_texts,
            self.index.relevance_threshold,
        )
        config = answer_config(
            self.tracing,
            page=asker.page,
            session_id=asker.session_id,
            provider=choice.provider,
            model=choice.model,
            top_k=self.settings.top_k,
            index_version=self.index.version,
        )
        for event in pipeline.stream(question, history, config):
            if isinstance(event, Finished):
                return event.result
            if isinstance(event, Retrieved):
                partial.prompt = event.prompt_messages
            elif isinstance(event, Token):
                partial.text.append(event.text)
            yield event
        raise RuntimeError("the answer stream ended without a result")

    def _bill_cut_off(self, choice: ChatModelChoice, partial: _Partial) -> None:
        """Bill an answer cut off midway for its prompt and the text written so far (counted
        locally; a follow-up's rewrite call before it is not known here and goes unbilled)."""
        if choice.provider in FREE_PROVIDERS or not partial.prompt:
            return
        self.ledger.record(
            choice.provider,
            choice.model,
            count_message_tokens(choice, convert_to_messages(partial.prompt)),
            choice.count_tokens("".join(partial.text)),
            self.settings.price_per_million(choice.model),
            estimated=True,
        )

    def _keep(self, result: AnswerResult, asker: Asker, notices: list[Notice]) -> Reply:
        """Bill, then record: a caller interrupted after this keeps no unpaid answer."""
        self.ledger.record(
            result.provider,
            result.model,
            result.usage.input_tokens,
            result.usage.output_tokens,
            self.settings.price_per_million(result.model),
            result.usage.estimated,
        )
        url = None
        if self.tracing is not None and (not self.flush_s or self.tracing.flush(self.flush_s)):
            # Sent before the lookup: LangSmith creates the project with the first run it gets.
            url = self.tracing.run_url(result.run_id, self.url_wait_s)
        record = self.traces.record(result, page=asker.page, owner=asker.owner, langsmith_url=url)
        return Reply(result, record.id, record.id, False, tuple(notices), url)

    def _cache_hit(self, cached: Reply, question: str, asker: Asker) -> Reply:
        entry = self.traces.record_cache_hit(cached.trace_id, question, asker.page, asker.owner)
        entry_id = entry.id if entry is not None else cached.trace_id
        return Reply(cached.result, cached.trace_id, entry_id, True, (), cached.langsmith_url)

    def _cache_key(self, question: str, choice: ChatModelChoice, scope: str) -> str:
        return answer_cache_key(
            question,
            str(self.index.data_dir.resolve()),
            self.index.version,
            choice.provider,
            choice.model,
            self.settings.temperature,
            self.settings.top_k,
            scope,
        )

    def _available_choice(self, notices: list[Notice]) -> ChatModelChoice:
        """The chosen chat model, or extractive answers with a plain reason when it cannot load."""
        try:
            return self.load_choice()
        except MODEL_LOAD_ERRORS as error:
            provider = self.settings.llm_provider
            notices.append(
                Notice(
                    "error",
                    f"The {PROVIDER_LABELS.get(provider, provider)} is not available: "
                    f"{short_reason(error)} Answering by quoting your documents instead; choose "
                    "another provider.",
                )
            )
            return extractive_choice()

    def _capped_choice(self, choice: ChatModelChoice, notices: list[Notice]) -> ChatModelChoice:
        """The chat model, or extractive answers with a notice when a spending cap is reached."""
        if choice.provider in FREE_PROVIDERS:
            return choice
        status = self.ledger.check()
        if not status.exceeded:
            return choice
        notices.append(
            Notice(
                "info",
                f"The {status.which} spending cap (${status.limit:.2f}) is reached, so until "
                f"{status.resets_at:%Y-%m-%d %H:%M} UTC answers quote your documents without a "
                "model. An admin can raise the cap on the Admin page.",
            )
        )
        return extractive_choice()


def short_reason(error: BaseException, limit: int = 300) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + "…"
