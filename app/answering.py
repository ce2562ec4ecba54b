"""One question on the chat page: the answering service's events drawn as they come."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

import streamlit as st

from app import conversations, identity, reading, resources, ui
from app.text import inert_markdown, inert_stream
from ingest.index import DocumentIndex
from ingest.records import SearchHit
from llm.access.ratelimit import Limit, Refusal, TokenBucket
from llm.answering.chat_turns import AnswerTurn, QuestionTurn
from llm.answering.pipeline import Retrieved, Source, Token
from llm.retrieval.modes import Scoped, SearchMode, make_search
from llm.service import Answered, Asker, Failed, Notice, Noticed, Refused
from llm.settings import Settings


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _cached_search(
    query: str,
    k: int,
    mode: SearchMode,
    index_version: int,
    index_key: str,
    scope_key: str,
    _index: DocumentIndex,
    _only: frozenset[str] | None,
) -> list[SearchHit]:
    return make_search(Scoped(_index, _only), mode)(query, k)


def cached_search(
    index: DocumentIndex, mode: SearchMode, only: frozenset[str] | None = None
) -> Callable[[str, int], list[SearchHit]]:
    """Search of the documents in `only` (None: all), its results cached per query, k, mode,
    index version and scope."""
    key, scope = str(index.data_dir.resolve()), reading.scope_key(only)
    return lambda query, k: _cached_search(query, k, mode, index.version, key, scope, index, only)


def chat_limits(settings: Settings) -> list[Limit]:
    """The buckets a question from this chat passes: its own, its client address's, the app's."""
    shared = resources.shared_buckets(settings)
    chat = TokenBucket(settings.rate_limit_capacity, settings.rate_limit_per_minute)
    client = TokenBucket(settings.client_rate_limit_capacity, settings.client_rate_limit_per_minute)
    whole = TokenBucket(settings.global_rate_limit_capacity, settings.global_rate_limit_per_minute)
    address = identity.client_address(settings)
    return [
        Limit("this chat", chat, st.session_state.setdefault("rate_bucket", chat.new_state())),
        Limit("your network address", client, shared.state(f"client:{address}", client)),
        Limit("the whole app", whole, shared.state("app", whole)),
    ]


def rate_limit_message(refusal: Refusal, question: str) -> str:
    bucket = refusal.limit.bucket
    return (
        f"Too many questions in a short time from {refusal.limit.name}: it allows "
        f"{bucket.capacity:g} at once, then {bucket.refill_per_minute:g} per minute. Please wait "
        f"{max(1, math.ceil(refusal.wait_s))} seconds, then ask again. Your question was not "
        f"sent: “{inert_markdown(question)}”"
    )


def show_notice(notice: Notice) -> None:
    """An info or error line kept with its answer, so it survives the rerun after answering."""
    if notice.kind == "error":
        st.error(notice.text, icon=":material/block:")
    elif notice.kind == "stopped":
        st.caption(f":material/stop_circle: {notice.text}")
    else:
        st.info(notice.text, icon=":material/savings:")


def respond(
    question: str,
    history: list[tuple[str, str]],
    settings: Settings,
    index: DocumentIndex,
    only: frozenset[str] | None = None,
) -> AnswerTurn | None:
    """Answer inside the assistant's chat message from the documents in `only` (None: all);
    returns the turn it kept, or None."""
    search = cached_search(index, settings.search_mode, only)
    service = resources.answer_service(settings, index, search)
    asker = Asker(
        owner=identity.owner(),
        page="chat",
        session_id=st.session_state.setdefault("session_id", str(uuid.uuid4())),
        limits=chat_limits(settings),
        scope=reading.scope_key(only),
    )
    events = service.ask(question, history, asker)
    with st.spinner("Searching your documents…"):
        event = next(events)
        while isinstance(event, Noticed):
            show_notice(event.notice)
            event = next(events)
    if isinstance(event, Refused):
        st.warning(rate_limit_message(event.refusal, question), icon=":material/hourglass_top:")
        return None
    if isinstance(event, Answered):  # from the cache
        turn = AnswerTurn.from_reply(event.reply)
        keep(question, turn)
        render_answer(turn)
        return turn
    if isinstance(event, Retrieved):
        # Until it is finished, the question is in the conversation with what was written of its
        # answer: Streamlit stops this run when the reader asks again mid-answer, and nothing
        # can be written to the session after that (the next run keeps it in the conversation).
        stopped = stopped_turn(event.sources)
        st.session_state.messages = [*st.session_state.messages, QuestionTurn(question), stopped]
        conversations.hold_draft(question, stopped)
        event = stream_answer(events, [] if event.low_relevance else event.sources, stopped)
        conversations.drop_draft()
        st.session_state.messages = st.session_state.messages[:-2]
    if isinstance(event, Failed):
        st.error(
            f"The model could not answer ({event.reason}). Check the provider settings "
            "(OPENAI_API_KEY, OPENAI_BASE_URL) or choose another provider in the sidebar, "
            "then ask again.",
            icon=":material/block:",
        )
        return None
    turn = AnswerTurn.from_reply(event.reply)
    tracing = resources.tracing(settings)
    if tracing and tracing.notice and not st.session_state.get("tracing_notice_shown"):
        # Said once per session, under the answer that found out.
        turn.tracing_notice = tracing.notice
        st.session_state.tracing_notice_shown = True
    keep(question, turn)
    answer_details(turn)
    return turn


def keep(question: str, answer: AnswerTurn) -> None:
    """Add the question and its answer to this session's conversation, as one step, and to the
    kept conversation (started with its first question)."""
    st.session_state.messages = [*st.session_state.messages, QuestionTurn(question), answer]
    conversations.keep_turn(resources.settings(), question, answer)


def stopped_turn(sources: list[Source]) -> AnswerTurn:
    """An answer in the making, kept as it is if a new question stops it: unchecked."""
    note = Notice(
        "stopped", "This answer was stopped before it was finished: what is here is unchecked."
    )
    return AnswerTurn(content="", sources=sources, notices=(note,))


def stream_answer(events: Any, sources: list[Source], draft_turn: AnswerTurn) -> Answered | Failed:
    """Stream the answer with st.write_stream, then show it checked; the event that ended it.

    Until the first words arrive (a local model reads its passages for some seconds), a note
    says which files and pages it is reading. `draft_turn` holds the text as it is shown.
    """
    waiting = st.empty()
    waiting.caption(f":material/edit_note: {ui.reading_note(sources)}")
    rest: list[Any] = []
    draft = st.empty()
    tokens = ui.text_only(events, Token, rest, on_first=waiting.empty)
    with draft.container():
        st.write_stream(inert_stream(_collected(tokens, draft_turn)))
    waiting.empty()
    last = rest[-1]
    if isinstance(last, Answered):
        # The draft gives way to the checked answer: citations fixed, unsupported sentences marked.
        with draft.container():
            checked = AnswerTurn.from_reply(last.reply)
            ui.answer_text(checked, ui.turn_key(checked))
    else:
        draft.empty()
    return last


def _collected(texts: Any, turn: AnswerTurn) -> Any:
    for text in texts:
        turn.content += text
        yield text


def render_answer(turn: AnswerTurn) -> None:
    """A kept answer: text, sources and the caption (marked when it came from the cache)."""
    for notice in turn.notices:
        show_notice(notice)
    ui.answer_text(turn, ui.turn_key(turn))
    answer_details(turn)


def answer_details(turn: AnswerTurn) -> None:
    """What follows an answer's text: its sources, who answered, trace links and feedback."""
    ui.source_list(turn.sources, ui.turn_key(turn))
    if turn.provider:
        st.caption(ui.answer_caption(turn.provider, turn.model, cached=turn.cached))
    answer_footer(turn)


def answer_footer(turn: AnswerTurn) -> None:
    """Under an answer: its trace links, thumbs up/down with a comment, and a tracing notice."""
    trace_id = turn.trace_id
    if not trace_id:
        return
    settings = resources.settings()
    tracing = resources.tracing(settings)
    if not turn.langsmith_url and tracing and (url := tracing.run_url(trace_id)):
        # The lookup the link needs finished after the answer: keep the link from now on.
        turn.langsmith_url = url
        resources.trace_store(settings).set_langsmith_url(trace_id, url)
    ui.trace_links(trace_id, turn.langsmith_url)
    entry_id = turn.entry_id or trace_id
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
    if turn.tracing_notice:
        st.caption(turn.tracing_notice)


def _feedback_changed(trace_id: str, entry_id: str, key: str) -> None:
    """Keep the thumbs and comment with the answer's record and send them to LangSmith."""
    score = st.session_state.get(key)
    comment = (st.session_state.get(f"{key}_comment") or "").strip() or None
    settings = resources.settings()
    # Only on this browser's own answers: the store refuses any other id.
    if not resources.trace_store(settings).set_feedback(
        entry_id, score, comment, owner=identity.owner()
    ):
        return
    if (tracing := resources.tracing(settings)) is not None:
        tracing.send_feedback(trace_id, score, comment, entry_id=entry_id)
