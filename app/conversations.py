"""The sidebar's kept conversations: listed latest first, reopened, renamed and deleted."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app import identity, resources
from llm.answering.chat_turns import AnswerTurn, ChatTurn, QuestionTurn
from llm.settings import Settings

# The sidebar lists this many; older ones stay kept.
LIST_LIMIT = 30


def keep_turn(settings: Settings, question: str, answer: AnswerTurn) -> None:
    """Add a question and its answer to the open conversation, or to a new one."""
    store = resources.conversations(settings)
    owner = identity.owner()
    try:
        open_id = st.session_state.get("conversation_id")
        if open_id is None or not store.add_turn(owner, open_id, question, answer.to_json()):
            open_id = store.start(owner, question)
            store.add_turn(owner, open_id, question, answer.to_json())
        st.session_state.conversation_id = open_id
    except SQLAlchemyError:
        # The answer is on the page either way; only keeping it for later failed.
        st.toast("This answer could not be saved to your conversations.", icon=":material/error:")


def hold_draft(question: str, answer: AnswerTurn) -> None:
    """Note the answer being written: if Streamlit ends this run before it is finished (the reader
    asked again or clicked), `keep_draft` keeps it as far as it got, stopped-note and all."""
    st.session_state.answer_in_progress = (question, answer)


def drop_draft() -> None:
    st.session_state.answer_in_progress = None


def keep_draft(settings: Settings) -> None:
    """Keep a stopped answer in its conversation: the run that wrote it could not, so the next
    run does, or a click that opens another conversation, before it does so."""
    draft = st.session_state.get("answer_in_progress")
    if draft is not None:
        drop_draft()
        keep_turn(settings, *draft)


def sidebar_list(settings: Settings, on_delete: Callable[[], None]) -> None:
    """The owner's conversations as buttons, the open one marked, with rename and delete."""
    store = resources.conversations(settings)
    owner = identity.owner()
    kept = store.list(owner)
    open_id = st.session_state.get("conversation_id")
    for conversation in kept[:LIST_LIMIT]:
        st.button(
            conversation.title,
            key=f"conversation_{conversation.id}",
            on_click=_open,
            args=(settings, conversation.id),
            type="primary" if conversation.id == open_id else "tertiary",
            icon=":material/chat:",
            width="stretch",
        )
    if len(kept) > LIST_LIMIT:
        st.caption(f"and {len(kept) - LIST_LIMIT} older ones")
    current = next((c for c in kept if c.id == open_id), None)
    if current is not None:
        with st.popover("Rename or delete", icon=":material/edit:"):
            st.text_input(
                "Title",
                value=current.title,
                key=f"conversation_title_{current.id}",
                on_change=_rename,
                args=(settings, current.id),
            )
            st.button(
                "Delete this conversation",
                on_click=_delete,
                args=(settings, current.id, on_delete),
                icon=":material/delete:",
            )


def _open(settings: Settings, conversation_id: str) -> None:
    keep_draft(settings)
    kept = resources.conversations(settings).turns(identity.owner(), conversation_id)
    if kept is None:
        st.toast("That conversation is gone.", icon=":material/error:")
        return
    turns: list[ChatTurn] = []
    for turn in kept:
        turns += [QuestionTurn(turn.question), AnswerTurn.from_json(turn.answer)]
    st.session_state.messages = turns
    st.session_state.conversation_id = conversation_id
    st.session_state.last_prompt = None


def _rename(settings: Settings, conversation_id: str) -> None:
    title = st.session_state.get(f"conversation_title_{conversation_id}", "")
    resources.conversations(settings).rename(identity.owner(), conversation_id, title)


def _delete(settings: Settings, conversation_id: str, on_delete: Callable[[], None]) -> None:
    drop_draft()
    resources.conversations(settings).delete(identity.owner(), conversation_id)
    on_delete()
