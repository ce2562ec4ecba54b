"""Chat page: upload documents, ask questions, read streamed answers with their sources."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import answering, conversations, indexing, reading, resources, ui
from app.text import inert_markdown, snippet
from ingest.loaders import ACCEPTED_TYPES
from ingest.ownership import DataDirBusy
from ingest.sqlite_file import SchemaTooNew
from llm.answering.chat_turns import AnswerTurn, history_pairs
from llm.answering.questions import clean_question, question_problem

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples"


def new_chat() -> None:
    """A fresh page; the conversation so far stays in the list."""
    conversations.keep_draft(resources.settings())
    st.session_state.messages = []
    st.session_state.last_prompt = None
    st.session_state.conversation_id = None


st.session_state.setdefault("messages", [])
st.session_state.setdefault("last_prompt", None)
st.session_state.setdefault("conversation_id", None)

base_settings = resources.settings()
try:
    index = resources.index(base_settings)
except (DataDirBusy, SchemaTooNew) as refused:
    st.error(str(refused), icon=":material/lock:")
    st.stop()

with st.sidebar:
    st.subheader("Conversations")
    st.button(
        "New chat",
        on_click=new_chat,
        icon=":material/add_comment:",
        disabled=not st.session_state.messages,
    )
    conversations.sidebar_list(base_settings, on_delete=new_chat)
    st.subheader("Documents")
    if (user := reading.reader()) is not None:
        reading.sidebar_controls(base_settings, index, user)
    uploads = ui.document_uploader(base_settings, key="uploader")
    only = reading.scope(base_settings, index)
    shown = len(index.documents()) if only is None else len(only)
    st.caption(
        f"{shown} document(s) indexed" + ("" if only is None else " in the collections you search")
    )
    st.subheader("Answering")
    settings = ui.model_controls(base_settings)
    with st.expander("Prompt sent (last answer)"):
        if st.session_state.last_prompt:
            st.json(st.session_state.last_prompt, expanded=False)
        else:
            st.caption("Ask a question to see the exact messages sent to the model.")

st.title("Ask your documents")
if not index.is_empty:
    resources.preload_chat_model(settings)

if uploads:
    indexing.queue_upload(base_settings, [(f.name, f.getvalue()) for f in uploads], "uploader")

if index.is_empty and resources.worker(base_settings).queue.active_jobs():
    st.info(
        "Your documents are being indexed (the sidebar shows how far). The chat opens as soon "
        "as the first one is in.",
        icon=":material/hourglass_top:",
    )
elif index.is_empty:
    st.info(
        f"No documents yet. Add {ACCEPTED_TYPES} files with the uploader in the sidebar, "
        "then ask a question about them. Or start with the bundled sample documents.",
        icon=":material/waving_hand:",
    )
    if st.button("Load the sample documents", type="primary", icon=":material/library_add:"):
        samples = sorted(SAMPLES_DIR.glob("*.pdf"))
        indexing.queue_upload(
            base_settings, [(path.name, path.read_bytes()) for path in samples], "uploader"
        )

elif not st.session_state.messages:
    st.caption(
        "Ask anything about your documents in the box below. Answers cite the file and page "
        "they rest on; click a file and page under an answer to see the passage on its page."
    )

# An answer the reader stopped by asking again (or clicking) is kept before anything else.
conversations.keep_draft(base_settings)
for turn in st.session_state.messages:
    avatar = ui.USER_AVATAR if turn.role == "user" else ui.ASSISTANT_AVATAR
    with st.chat_message(turn.role, avatar=avatar):
        if isinstance(turn, AnswerTurn):
            answering.render_answer(turn)
        else:
            st.markdown(inert_markdown(turn.content))

typed = st.chat_input("Ask a question about your documents", disabled=index.is_empty)
question = clean_question(typed or "")
if typed and (problem := question_problem(question, settings.max_question_chars)):
    st.warning(
        f"{problem} Your question was not sent; it began: "
        f"“{inert_markdown(snippet(question, 200))}”",
        icon=":material/edit_off:",
    )
elif question:
    with st.chat_message("user", avatar=ui.USER_AVATAR):
        st.markdown(inert_markdown(question))
    with st.chat_message("assistant", avatar=ui.ASSISTANT_AVATAR):
        reply = answering.respond(
            question, history_pairs(st.session_state.messages), settings, index, only
        )
    if reply is not None:
        st.session_state.last_prompt = reply.prompt
        st.rerun()
