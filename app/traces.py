"""Traces page: answers as they were made, newest first and searchable, one shown in full.

A visitor lists only their own browser's answers; an unlocked admin lists everyone's. A trace
link opens its one answer for whoever holds it (the id is random), and nothing here names
another answer's id to someone who may not list it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import identity, preview, reading, resources, ui
from app.preview import Passage
from app.text import inert_markdown
from llm.answering.chat_turns import AnswerTurn
from llm.answering.pipeline import Source
from llm.records.langsmith_tracing import Tracing
from llm.records.trace_store import TraceRecord, TraceStore

LIST_LIMIT = 200


def feedback_label(record: TraceRecord) -> str:
    if record.feedback_score is None:
        return ""
    thumb = "👍" if record.feedback_score == 1 else "👎"
    return f"{thumb} {record.feedback_comment}" if record.feedback_comment else thumb


def list_rows(records: list[TraceRecord]) -> list[dict[str, Any]]:
    return [
        {
            "time (UTC)": f"{record.created_at:%Y-%m-%d %H:%M:%S}",
            "question": record.question,
            "answer": record.answer,
            "model": f"{record.provider} · {record.model}",
            "total s": round(record.timings.total_s, 2),
            "feedback": feedback_label(record),
            "from": record.page + (" (cached)" if record.cached else ""),
        }
        for record in records
    ]


def chunk_rows(record: TraceRecord) -> list[dict[str, Any]]:
    return [
        {
            "#": source["number"],
            "source": source["source"],
            "where": Source.from_json(source).where,
            "chunk": source["chunk_index"],
            "score": source["score"],
            "text": source["text"],
            "flag": source.get("flag") or "",
        }
        for source in record.sources
    ]


def timing_and_tokens(record: TraceRecord) -> None:
    timings, usage = record.timings, record.usage
    estimated = " (est.)" if usage.estimated else ""
    figures = [
        ("Retrieval", f"{timings.retrieval_s * 1000:.0f} ms"),
        ("First token", f"{timings.first_token_s:.2f} s"),
        ("Total", f"{timings.total_s:.2f} s"),
        ("Input tokens", f"{usage.input_tokens}{estimated}"),
        ("Output tokens", f"{usage.output_tokens}{estimated}"),
    ]
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(label, value)


def langsmith_link(record: TraceRecord, tracing: Tracing | None, store: TraceStore) -> None:
    url = record.langsmith_url
    run_id = record.cached_from or record.id
    if not url and tracing is not None and (url := tracing.run_url(run_id)):
        store.set_langsmith_url(run_id, url)
    if url:
        st.page_link(url, label="View in LangSmith", icon=":material/open_in_new:")
    elif tracing is None:
        st.caption("LangSmith tracing is off, so this record is the whole trace.")
    else:
        st.caption(tracing.notice or "The LangSmith link is not known yet; reload in a moment.")


def show_trace(
    record: TraceRecord, tracing: Tracing | None, store: TraceStore, admin: bool
) -> None:
    cached = " · served from the cache" if record.cached else ""
    st.caption(
        f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC · {record.provider} · {record.model} · "
        f"asked on the {record.page} page{cached} · trace {record.id}"
    )
    if record.cached_from and admin:
        st.page_link(
            ui.TRACES_PAGE,
            label="Open the trace of the original answer",
            icon=":material/history:",
            query_params={"trace": record.cached_from},
        )
    turn = AnswerTurn.from_record(record)
    st.subheader("Question", anchor=False)
    st.text(record.question)
    st.markdown("**What was searched**")
    st.text(record.standalone_question)
    if record.provider == "local" and record.standalone_question != record.question:
        st.caption(
            "A follow-up to the local model is searched as asked and beside the previous "
            "question (shown); the two results are fused, the better-matching one leading."
        )
    timing_and_tokens(record)

    st.subheader(f"Retrieved chunks ({len(record.sources)})", anchor=False)
    if record.sources:
        st.dataframe(
            chunk_rows(record),
            hide_index=True,
            column_config={"score": st.column_config.NumberColumn(format="%.3f")},
        )
        with st.container(horizontal=True, gap="small"):
            for source in turn.sources:
                preview.page_button(
                    f"[{source.number}] {inert_markdown(source.where)}",
                    Passage(source.doc_id, source.page, source.text),
                    key=f"trace_{record.id}_chunk{source.number}",
                )
    else:
        st.caption("No chunk matched the question.")

    st.subheader("Prompt sent to the model", anchor=False)
    if record.prompt:
        st.json(record.prompt, expanded=True)
    else:
        st.caption("No prompt: this answer quotes the chunks without calling a model.")

    st.subheader("Answer", anchor=False)
    ui.answer_text(turn, key=f"trace_{record.id}")
    if (attribution := turn.attribution) is not None and attribution.claims:
        st.caption(
            f"Sentences checked against the chunks: {attribution.claims} making a claim, "
            f"{attribution.unsupported} not supported by any chunk."
        )
        st.dataframe(
            [
                {
                    "sentence": sentence.text,
                    "supported": sentence.supported if sentence.claim else None,
                    "cites": ", ".join(f"[{n}]" for n in sentence.citations),
                    "support score": sentence.score,
                }
                for sentence in attribution.sentences
                if sentence.text
            ],
            hide_index=True,
            column_config={"support score": st.column_config.NumberColumn(format="%.2f")},
        )
    feedback = feedback_label(record)
    st.caption(f"Feedback: {feedback}" if feedback else "No feedback given.")
    langsmith_link(record, tracing, store)


settings = resources.settings()
store = resources.trace_store(settings)
tracing = resources.tracing(settings)
admin = identity.is_admin(settings)

st.title("Traces")
st.caption(
    "How each answer was made: the question searched, the chunks found with their scores, "
    "the exact prompt, the answer, timings and tokens. A trace's URL can be shared: it opens "
    "that one answer for whoever has it (with accounts: for its owner and admins)."
)
detail = st.container()

st.subheader("All recent answers" if admin else "Your recent answers", anchor=False)
st.caption(
    "You are logged in as admin, so every visitor's answers are listed."
    if admin
    else "Only your answers (from this browser, or when signed in, from your account) are "
    "listed; nobody else sees them here. "
    "An admin (logged in on the Admin page) sees every answer."
)
search = st.text_input(
    "Search questions and answers", key="trace_search", placeholder="e.g. warranty"
)
records = store.recent(LIST_LIMIT, search, owner=None if admin else identity.owner())
chosen = st.query_params.get("trace")
ids = [record.id for record in records]
labels = {r.id: f"{r.created_at:%Y-%m-%d %H:%M:%S} · {r.question}" for r in records}
picked = st.selectbox(
    "Open an answer",
    ids,
    index=ids.index(chosen) if chosen in ids else None,
    format_func=labels.get,
    placeholder="Pick an answer to see its trace",
)
if picked and picked != chosen:
    st.query_params["trace"] = picked
    chosen = picked
if records:
    st.dataframe(list_rows(records), hide_index=True)
else:
    st.caption("No answer matches." if search else "No answers yet: ask one on the Chat page.")

with detail:
    record = store.get(chosen) if chosen else None
    # With accounts, a trace's passages may come from a private collection: its URL opens it
    # for its owner and admins only. Without accounts, the URL is the key.
    private = reading.reader() is not None and not admin
    if record is not None and private and record.owner != identity.owner():
        st.warning("This trace belongs to another user's answer.", icon=":material/lock:")
    elif record is not None:
        show_trace(record, tracing, store, admin)
        st.divider()
    elif chosen:
        st.warning(
            f"There is no trace with id {inert_markdown(chosen)} in this data folder.", icon="🔎"
        )
