"""One question on the chat page: cache, rate limit, spending cap, streamed answer, ledger."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import streamlit as st
from langchain_core.runnables import RunnableConfig

from app import identity, resources, ui
from app.text import inert_markdown, inert_stream
from ingest.index import DocumentIndex
from ingest.records import SearchHit
from llm.answer import AnswerPipeline, AnswerResult, Finished, Retrieved, Token
from llm.answer_keys import answer_cache_key
from llm.chat_models import ChatModelChoice, extractive_choice
from llm.components import build_pipeline
from llm.ledger import FREE_PROVIDERS
from llm.ratelimit import Limit, Refusal, TokenBucket
from llm.search import SearchMode, make_search
from llm.settings import Settings
from llm.tracing import answer_config

# How long a finished answer may wait for its LangSmith link (only until the project's ids are
# known, once per process); after that the link appears on the next rerun.
URL_WAIT_S = 0.5


@functools.cache
def _answer_slots(ttl_seconds: int) -> Callable[[str], dict[str, Any]]:
    # cache_resource rather than cache_data: the answer is produced while it streams, so the cache
    # hands out a mutable slot per key that is filled once the stream ends.
    @st.cache_resource(ttl=ttl_seconds, max_entries=2000, show_spinner=False)
    def answer_slot(key: str) -> dict[str, Any]:
        return {}

    return answer_slot


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_search(
    query: str, k: int, mode: SearchMode, index_version: int, index_key: str, _index: DocumentIndex
) -> list[SearchHit]:
    return make_search(_index, mode)(query, k)


def cached_search(index: DocumentIndex, mode: SearchMode) -> Callable[[str, int], list[SearchHit]]:
    """Search whose results are cached per query, k, mode and index version."""
    key = str(index.data_dir.resolve())
    return lambda query, k: _cached_search(query, k, mode, index.version, key, index)


def rate_limit_check(settings: Settings) -> Refusal | None:
    """Take one question from this chat's, this client's and the app's buckets, or none of them
    and say which limit refused and for how long."""
    shared = resources.shared_buckets(settings)
    chat = TokenBucket(settings.rate_limit_capacity, settings.rate_limit_per_minute)
    client = TokenBucket(settings.client_rate_limit_capacity, settings.client_rate_limit_per_minute)
    whole = TokenBucket(settings.global_rate_limit_capacity, settings.global_rate_limit_per_minute)
    address = identity.client_address(settings)
    return shared.take(
        [
            Limit("this chat", chat, st.session_state.setdefault("rate_bucket", chat.new_state())),
            Limit("your network address", client, shared.state(f"client:{address}", client)),
            Limit("the whole app", whole, shared.state("app", whole)),
        ]
    )


def rate_limit_message(refusal: Refusal, question: str) -> str:
    bucket = refusal.limit.bucket
    return (
        f"Too many questions in a short time from {refusal.limit.name}: it allows "
        f"{bucket.capacity:g} at once, then {bucket.refill_per_minute:g} per minute. Please wait "
        f"{max(1, math.ceil(refusal.wait_s))} seconds, then ask again. Your question was not "
        f"sent: “{inert_markdown(question)}”"
    )


Notice = tuple[str, str]


def show_notice(notice: Notice) -> None:
    """An info or error line kept with its answer, so it survives the rerun after answering."""
    kind, text = notice
    if kind == "error":
        st.error(text, icon=":material/block:")
    else:
        st.info(text, icon=":material/savings:")


def capped_choice(
    settings: Settings, choice: ChatModelChoice, notices: list[Notice]
) -> ChatModelChoice:
    """The chat model, or extractive answers with a notice when a spending cap is reached."""
    if choice.provider in FREE_PROVIDERS:
        return choice
    status = resources.ledger(settings).check()
    if not status.exceeded:
        return choice
    notices.append(
        (
            "info",
            f"The {status.which} spending cap (${status.limit:.2f}) is reached, so until "
            f"{status.resets_at:%Y-%m-%d %H:%M} UTC answers quote your documents without a model. "
            "An admin can raise the cap on the Admin page.",
        )
    )
    show_notice(notices[-1])
    return extractive_choice()


def respond(
    question: str, history: list[tuple[str, str]], settings: Settings, index: DocumentIndex
) -> dict[str, Any] | None:
    """Answer inside the assistant's chat message; returns the message to keep, or None."""
    notices: list[Notice] = []
    choice = available_choice(settings, notices)
    slot: dict[str, Any] = {}
    if not history:
        key = answer_cache_key(
            question,
            str(index.data_dir.resolve()),
            index.version,
            choice.provider,
            choice.model,
            settings.temperature,
            settings.top_k,
        )
        slot = _answer_slots(settings.cache_ttl_seconds)(key)
        if "message" in slot:
            cached = {**slot["message"], "cached": True, "notices": []}
            hit = resources.trace_store(settings).record_cache_hit(
                slot["message"]["trace_id"], question, page="chat", owner=identity.browser_owner()
            )
            if hit is not None:
                cached["entry_id"] = hit.id
            keep(question, cached)
            render_answer(cached)
            return cached
    if (refusal := rate_limit_check(settings)) is not None:
        st.warning(rate_limit_message(refusal, question), icon=":material/hourglass_top:")
        return None
    choice = capped_choice(settings, choice, notices)
    pipeline = build_pipeline(
        settings, cached_search(index, settings.search_mode), choice, index.embed_texts
    )
    tracing = resources.tracing(settings)
    config = answer_config(
        tracing,
        page="chat",
        session_id=st.session_state.setdefault("session_id", str(uuid.uuid4())),
        provider=choice.provider,
        model=choice.model,
        top_k=settings.top_k,
        index_version=index.version,
    )
    try:
        result, message = stream_answer(pipeline, question, history, config)
    except Exception as error:  # a provider failure (auth, network, server) must not crash the page
        st.error(
            f"The model could not answer ({_short(error)}). Check the provider settings "
            "(OPENAI_API_KEY, OPENAI_BASE_URL) or choose another provider in the sidebar, "
            "then ask again.",
            icon=":material/block:",
        )
        return None
    # Billed, recorded and kept before anything more is drawn: a new question interrupts this
    # script at its next Streamlit call, and must not lose an answer that was already paid for.
    price = settings.price_per_million(result.model)
    resources.ledger(settings).record(
        result.provider,
        result.model,
        result.usage["input_tokens"],
        result.usage["output_tokens"],
        price,
        result.usage.get("estimated", False),
    )
    message["notices"] = notices
    message["langsmith_url"] = tracing.run_url(result.run_id, URL_WAIT_S) if tracing else None
    resources.trace_store(settings).record(
        result, page="chat", owner=identity.browser_owner(), langsmith_url=message["langsmith_url"]
    )
    if not history:
        slot["message"] = dict(message)
    if tracing and tracing.notice and not st.session_state.get("tracing_notice_shown"):
        # Said once per session, under the answer that found out.
        message["notice"] = tracing.notice
        st.session_state.tracing_notice_shown = True
    keep(question, message)
    answer_details(message)
    return message


def keep(question: str, answer: dict[str, Any]) -> None:
    """Add the question and its answer to this session's conversation, as one step."""
    st.session_state.messages = [
        *st.session_state.messages,
        {"role": "user", "content": question},
        answer,
    ]


def available_choice(settings: Settings, notices: list[Notice]) -> ChatModelChoice:
    """The chosen chat model, or extractive answers with a plain reason when it cannot load."""
    try:
        return resources.chat_model(settings)
    except (ValueError, RuntimeError, OSError, ImportError) as error:
        notices.append(
            (
                "error",
                f"The {ui.PROVIDER_LABELS.get(settings.llm_provider, settings.llm_provider)} "
                f"is not available: {_short(error)} Answering by quoting your documents "
                "instead; choose another provider in the sidebar.",
            )
        )
        show_notice(notices[-1])
        return extractive_choice()


def _short(error: BaseException, limit: int = 300) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def stream_answer(
    pipeline: AnswerPipeline,
    question: str,
    history: list[tuple[str, str]],
    config: RunnableConfig | None = None,
) -> tuple[AnswerResult, dict[str, Any]]:
    """Stream the answer with st.write_stream, then show it checked; returns it and its message.

    A note stands in until the first words arrive.
    """
    events = pipeline.stream(question, history, config)
    with st.spinner("Searching your documents…"):
        first = next(events)
    assert isinstance(first, Retrieved)
    waiting = st.empty()
    waiting.caption(":material/edit_note: Writing the answer…")
    rest: list[Any] = []
    draft = st.empty()
    with draft.container():
        st.write_stream(inert_stream(ui.text_only(events, Token, rest, on_first=waiting.empty)))
    result = next(event.result for event in rest if isinstance(event, Finished))
    # The draft gives way to the checked answer: citations fixed, unsupported sentences marked.
    message = assistant_message(result)
    with draft.container():
        ui.answer_text(message)
    return result, message


def assistant_message(result: AnswerResult) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": result.answer,
        "sources": [asdict(source) for source in result.sources],
        "provider": result.provider,
        "model": result.model,
        "prompt": result.prompt_messages,
        "low_relevance": result.low_relevance,
        **(_attribution_fields(result)),
        # The trace the links open, and the record feedback is kept on (a cache hit's own).
        "trace_id": result.run_id,
        "entry_id": result.run_id,
    }


def _attribution_fields(result: AnswerResult) -> dict[str, Any]:
    if result.attribution is None:
        return {}
    data = result.attribution.to_json()
    cited = [
        {"number": s.number, "source": s.source, "page": s.page} for s in result.cited_sources()
    ]
    return {
        "sentences": data["sentences"],
        "unsupported": data["unsupported"],
        "mostly_unsupported": data["mostly_unsupported"],
        "evidence": [asdict(quote) for quote in result.quotes],
        "cited": cited,
    }


def render_answer(message: dict[str, Any]) -> None:
    """A kept answer: text, sources and the caption (marked when it came from the cache)."""
    for notice in message.get("notices", []):
        show_notice(notice)
    ui.answer_text(message)
    answer_details(message)


def answer_details(message: dict[str, Any]) -> None:
    """What follows an answer's text: its sources, who answered, trace links and feedback."""
    ui.source_list(message.get("sources", []))
    if "provider" in message:
        st.caption(
            ui.answer_caption(
                message["provider"], message["model"], cached=message.get("cached", False)
            )
        )
    answer_footer(message)


def answer_footer(message: dict[str, Any]) -> None:
    """Under an answer: its trace links, thumbs up/down with a comment, and a tracing notice."""
    trace_id = message.get("trace_id")
    if not trace_id:
        return
    settings = resources.settings()
    tracing = resources.tracing(settings)
    if not message.get("langsmith_url") and tracing and (url := tracing.run_url(trace_id)):
        # The lookup the link needs finished after the answer: keep the link from now on.
        message["langsmith_url"] = url
        resources.trace_store(settings).set_langsmith_url(trace_id, url)
    ui.trace_links(trace_id, message.get("langsmith_url"))
    entry_id = message.get("entry_id") or trace_id
    key = f"feedback_{entry_id}"
    args = (trace_id, entry_id, key)
    score = st.feedback("thumbs", key=key, on_change=_feedback_changed, args=args)
    if score is not None:
        st.text_input(
            "Comment (optional)",
            key=f"{key}_comment",
            placeholder="What was right or wrong? Press Enter to send.",
            on_change=_feedback_changed,
            args=args,
        )
    if notice := message.get("notice"):
        st.caption(notice)


def _feedback_changed(trace_id: str, entry_id: str, key: str) -> None:
    """Keep the thumbs and comment with the answer's record and send them to LangSmith."""
    score = st.session_state.get(key)
    comment = (st.session_state.get(f"{key}_comment") or "").strip() or None
    settings = resources.settings()
    # Only on this browser's own answers: the store refuses any other id.
    if not resources.trace_store(settings).set_feedback(
        entry_id, score, comment, owner=identity.browser_owner()
    ):
        return
    if (tracing := resources.tracing(settings)) is not None:
        tracing.send_feedback(trace_id, score, comment, entry_id=entry_id)
