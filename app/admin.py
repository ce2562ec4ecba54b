"""Admin page behind a password: index health, spend and caps, documents, uploads, reindex."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import streamlit as st

from app import identity, indexing, preview, resources, ui
from app.preview import Passage
from app.text import duration
from ingest.catalog import IndexConfig
from ingest.index import DocumentIndex, Progress, ReindexFailed
from ingest.instructions import InstructionFlag
from ingest.ownership import DataDirBusy
from ingest.records import DocumentRecord
from ingest.sqlite_file import SchemaTooNew
from llm.access.accounts import AccountError, Accounts
from llm.access.admin_auth import AdminGate, AuthState, Tries
from llm.access.ledger import PERIODS, SpendLedger
from llm.components import index_config
from llm.settings import LOCAL_EMBEDDING_MODEL, Settings, chunking_problem, field_bounds

PERIOD_LABELS = {"day": "Today", "week": "This week", "month": "This month"}
PROVIDER_LABELS = {"local": "local, offline", "openai": "OpenAI API"}
CONFIG_LABELS = {
    "embedding_provider": "embedding provider",
    "embedding_model": "embedding model",
    "chunk_size": "chunk size",
    "chunk_overlap": "chunk overlap",
}


# -- callbacks (run before the page is drawn, so what follows shows their effect) --------------


def try_login(gate: AdminGate, state: AuthState, tries: Tries) -> None:
    attempt = gate.attempt(state, tries, st.session_state.get("admin_password_input", ""))
    # The typed password is not kept in the session once it has been checked.
    st.session_state.admin_password_input = ""
    if attempt.outcome == "wrong":
        left = gate.tries_left(tries)
        st.session_state.admin_login_error = (
            f"Wrong password. {left} more wrong {'try' if left == 1 else 'tries'} "
            f"before a {gate.lockout_s:.0f} s wait."
        )
    elif attempt.outcome == "locked":
        st.session_state.admin_login_error = (
            f"Too many wrong tries. Wait {attempt.wait_s:.0f} s before trying again."
        )
    elif attempt.outcome == "empty":
        st.session_state.admin_login_error = "Type the admin password first."


def log_out(gate: AdminGate, state: AuthState) -> None:
    gate.logout(state)
    st.session_state.pop("admin_pending_delete", None)


def add_user(accounts: Accounts) -> None:
    name = st.session_state.get("admin_new_user_name", "")
    try:
        user = accounts.create(
            name,
            st.session_state.get("admin_new_user_pw", ""),
            is_admin=bool(st.session_state.get("admin_new_user_admin")),
        )
    except AccountError as refused:
        st.session_state.admin_user_error = str(refused)
        return
    st.session_state.admin_new_user_pw = ""
    st.session_state.admin_notice = f"Added the account “{user.name}”."


def reset_password(accounts: Accounts) -> None:
    name = st.session_state.get("admin_user_pick", "")
    try:
        accounts.set_password(name, st.session_state.get("admin_user_new_pw", ""))
    except AccountError as refused:
        st.session_state.admin_user_error = str(refused)
        return
    st.session_state.admin_user_new_pw = ""
    st.session_state.admin_notice = f"New password set for “{name}”; its sign-ins have ended."


def remove_user(accounts: Accounts) -> None:
    name = st.session_state.get("admin_user_pick", "")
    if accounts.remove(name):
        st.session_state.admin_notice = f"Deleted the account “{name}”."


def ask_to_delete(doc_ids: list[str]) -> None:
    st.session_state.admin_pending_delete = doc_ids


def cancel_delete() -> None:
    st.session_state.pop("admin_pending_delete", None)


def delete_documents(index: DocumentIndex, doc_ids: list[str]) -> None:
    removed = [record.source for doc_id in doc_ids if (record := index.document(doc_id))]
    collections = resources.collections(resources.settings())
    for doc_id in doc_ids:
        # Out of the index first: a document in no collection would read as Everyone's.
        index.remove(doc_id)
        collections.forget_document(doc_id)
    st.session_state.pop("admin_pending_delete", None)
    st.session_state.admin_table_round = st.session_state.get("admin_table_round", 0) + 1
    st.session_state.admin_notice = f"Deleted {len(removed)} document(s): {', '.join(removed)}."


def save_caps(ledger: SpendLedger) -> None:
    caps = ledger.caps
    changed = []
    for period in PERIODS:
        dollars = float(st.session_state[f"admin_cap_{period}"])
        if dollars != caps.for_period(period):
            ledger.set_cap(period, dollars)
            changed.append(f"{PERIOD_LABELS[period].lower()} ${dollars:,.2f}")
    st.session_state.admin_notice = (
        f"Caps changed: {', '.join(changed)}." if changed else "The caps are unchanged."
    )


def flagged_passages(
    records: Sequence[DocumentRecord], flags: dict[str, list[InstructionFlag]]
) -> None:
    """Where the shown documents hold text written as instructions to a model."""
    found = [(record, flag) for record in records for flag in flags.get(record.doc_id, [])]
    if not found:
        return
    with st.expander(
        f":material/gpp_maybe: {len(found)} passage(s) read like instructions to an AI model",
        expanded=True,
    ):
        st.caption(
            "Found when the files were added. These sentences are never sent to the model; "
            "delete the document if it should not be searched at all."
        )
        st.dataframe(
            [
                {
                    "Document": record.source,
                    "Where": flag.where,
                    "Why": flag.reason,
                    "Passage": flag.excerpt,
                }
                for record, flag in found
            ],
            hide_index=True,
        )


# -- small pure helpers ------------------------------------------------------------------------


def config_differences(built: IndexConfig, wanted: IndexConfig) -> list[str]:
    """Plain-English differences between how the index was built and what the settings ask."""
    return [
        f"{label}: index {getattr(built, name)}, settings {getattr(wanted, name)}"
        for name, label in CONFIG_LABELS.items()
        if getattr(built, name) != getattr(wanted, name)
    ]


def threshold_text(calibrated: float | None, settings: Settings) -> str:
    """How the chat decides a question is off-topic for this index, in words."""
    if settings.low_relevance_threshold is not None:
        return f"cosine {settings.low_relevance_threshold:.2f} (set in the settings)"
    if calibrated is None:
        return "not calibrated for this embedding model: only an empty search counts"
    return f"cosine {calibrated:.2f} (calibrated for this embedding model)"


def embedding_choices(current: Settings) -> list[tuple[str, str]]:
    """(provider, model) pairs a reindex can use: local always, OpenAI when a key is set."""
    choices = [("local", LOCAL_EMBEDDING_MODEL)]
    if current.openai_configured:
        openai = index_config(current.model_copy(update={"embedding_provider": "openai"}))
        choices.append(("openai", openai.embedding_model))
    return choices


def matching(records: Sequence[DocumentRecord], query: str) -> list[DocumentRecord]:
    needle = query.strip().lower()
    return [r for r in records if needle in r.source.lower() or needle in r.doc_id.lower()]


def document_rows(
    records: Sequence[DocumentRecord], flags: dict[str, list[InstructionFlag]]
) -> list[dict[str, Any]]:
    return [
        {
            "Name": record.source,
            "Pages": record.pages,
            "Chunks": record.chunks,
            "Flagged": len(flags.get(record.doc_id, [])),
            "Size": record.size_bytes,
            "Added at": datetime.fromisoformat(record.added_at),
            "SHA-256": record.sha256[:12],
        }
        for record in records
    ]


def progress_text(progress: Progress) -> str:
    eta = progress.eta_s
    if progress.files_done == progress.files_total:
        left = "done"
    elif eta is None:
        left = "estimating time left…"
    else:
        left = f"about {duration(eta)} left"
    return (
        f"{progress.files_done}/{progress.files_total} files · {progress.chunks_done} chunks · "
        f"{duration(progress.elapsed_s)} elapsed · {left} (last: {progress.current_file})"
    )


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


# -- page --------------------------------------------------------------------------------------

settings = resources.settings()
password = settings.admin_password.get_secret_value() if settings.admin_password else None
gate = AdminGate(password)
auth: AuthState = st.session_state.setdefault("admin_auth", AuthState())
tries = resources.admin_tries(settings).tries(identity.client_address(settings))

st.title("Admin")
admin_user = identity.signed_in_admin()

if not gate.configured and not admin_user:
    st.info(
        "The Admin page is locked because no admin password is set. Add "
        '`admin_password = "…"` to `.streamlit/secrets.toml`, or set the environment variable '
        "`DOCQA_ADMIN_PASSWORD`, then restart the app.",
        icon=":material/lock:",
    )
    st.stop()

if not admin_user and not gate.is_unlocked(auth):
    with st.form("admin_login"):
        st.text_input("Admin password", type="password", key="admin_password_input")
        st.form_submit_button(
            "Unlock",
            type="primary",
            on_click=try_login,
            args=(gate, auth, tries),
            icon=":material/key:",
        )
    if error := st.session_state.pop("admin_login_error", None):
        st.error(error, icon=":material/block:")
    elif wait := gate.wait_s(tries):
        st.warning(f"Too many wrong tries. Wait {wait:.0f} s before trying again.")
    st.stop()

try:
    index = resources.index(settings)
except (DataDirBusy, SchemaTooNew) as refused:
    st.error(str(refused), icon="🔒")
    st.stop()
ledger = resources.ledger(settings)

if gate.is_unlocked(auth):
    with st.sidebar:
        st.button(
            "Lock the admin page",
            on_click=log_out,
            args=(gate, auth),
            icon=":material/logout:",
            key="admin_logout",
        )
accounts = resources.accounts(settings)

if notice := st.session_state.pop("admin_notice", None):
    st.success(notice)

# Keyed, so notices appearing above the tabs do not send the admin back to the first one.
overview, documents_tab, reindex_tab, users_tab = st.tabs(
    ["Overview", "Documents", "Reindex", "Users"], key="admin_tab", on_change="rerun"
)

with overview:
    st.subheader("Index health")
    stats = index.stats()
    columns = st.columns(5)
    columns[0].metric("Documents", stats.documents)
    columns[1].metric("Pages", stats.pages)
    columns[2].metric("Chunks", stats.chunks)
    columns[3].metric("Index version", stats.version)
    columns[4].metric("Size on disk", _megabytes(stats.disk_bytes))
    built = stats.config
    st.markdown(
        f"**Embedding model:** {built.embedding_model} "
        f"({PROVIDER_LABELS.get(built.embedding_provider, built.embedding_provider)})  \n"
        f"**Chunks:** {built.chunk_size} characters, {built.chunk_overlap} overlap  \n"
        f"**Off-topic below:** {threshold_text(stats.relevance_threshold, settings)}  \n"
        f"**Built:** {_when(stats.built_at)} · **last reindex:** {_when(stats.reindexed_at)}"
    )
    if differences := config_differences(built, index_config(settings)):
        st.warning(
            "The index was built with other settings than the current ones ("
            + "; ".join(differences)
            + "). New uploads still use the index's own settings: reindex to apply the current "
            "ones.",
            icon=":material/sync_problem:",
        )

    st.subheader("Model spending")
    usage = ledger.usage()
    for column, spend in zip(st.columns(len(usage)), usage, strict=True):
        with column:
            st.metric(PERIOD_LABELS[spend.period], f"${spend.spent:,.2f} of ${spend.limit:,.2f}")
            share = spend.spent / spend.limit if spend.limit else 1.0
            st.progress(min(share, 1.0))
            reached = "**cap reached**, " if spend.exceeded else ""
            st.caption(f"{reached}resets {spend.resets_at:%Y-%m-%d %H:%M} UTC")
    with st.form("admin_caps"):
        st.markdown("**Change the caps** (every session and process, kept across restarts)")
        cap_columns = st.columns(len(PERIODS))
        for column, period in zip(cap_columns, PERIODS, strict=True):
            column.number_input(
                f"{PERIOD_LABELS[period]} ($)",
                min_value=0.0,
                value=float(ledger.caps.for_period(period)),
                step=1.0,
                key=f"admin_cap_{period}",
            )
        st.form_submit_button("Save caps", on_click=save_caps, args=(ledger,))

with documents_tab:
    records = index.documents()
    if not records:
        st.info("No documents indexed yet: upload some below.", icon=":material/info:")
    else:
        query = st.text_input("Search by name or id", key="admin_doc_search")
        shown = matching(records, query)
        round_ = st.session_state.get("admin_table_round", 0)
        # A new key per search and after each change, so a selection never points at other rows.
        flags = index.instruction_flags()
        table = st.dataframe(
            document_rows(shown, flags),
            key=f"admin_documents_{round_}_{query.strip().lower()}",
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            column_config={
                "Size": st.column_config.NumberColumn(format="bytes"),
                "Added at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                "Flagged": st.column_config.NumberColumn(
                    help="Passages that read like instructions to an AI model"
                ),
            },
        )
        st.caption(
            f"{len(shown)} of {len(records)} document(s) shown. "
            "Select rows to delete them, or one row to see its pages."
        )
        flagged_passages(shown, flags)
        selected = [shown[row].doc_id for row in table.selection.rows if row < len(shown)]
        pending = st.session_state.get("admin_pending_delete")
        if pending:
            names = [record.source for doc_id in pending if (record := index.document(doc_id))]
            st.warning(
                f"Delete {len(names)} document(s) for good? Their chunks and stored files are "
                f"removed: {', '.join(names)}.",
                icon=":material/warning:",
            )
            confirm, cancel = st.columns([1, 1, 4])[:2]
            confirm.button(
                "Yes, delete",
                type="primary",
                on_click=delete_documents,
                args=(index, pending),
                icon=":material/delete_forever:",
                key="admin_confirm_delete",
            )
            cancel.button("Cancel", on_click=cancel_delete, key="admin_cancel_delete")
        else:
            st.button(
                f"Delete {len(selected)} selected…" if selected else "Select rows to delete",
                disabled=not selected,
                on_click=ask_to_delete,
                args=(selected,),
                icon=":material/delete:",
                key="admin_delete",
            )
        if len(selected) == 1 and (record := index.document(selected[0])) is not None:
            preview.page_button(
                f"Show {record.source}", Passage(record.doc_id, 1, ""), key="admin_preview"
            )

    st.subheader("Upload")
    uploads = ui.document_uploader(settings, key="admin_uploader")
    st.caption(
        "Files are indexed in the background: the sidebar shows the progress on every page, and "
        "what became of each file when the job ends."
    )
    if uploads:
        indexing.queue_upload(settings, [(f.name, f.getvalue()) for f in uploads], "admin_uploader")

with reindex_tab:
    st.markdown(
        "Rebuild the whole index from the stored files. Questions keep being answered from the "
        "current index until the new one is complete; if the rebuild fails or is stopped, the "
        "current index stays as it is. Leaving this page stops the rebuild."
    )
    choices = embedding_choices(settings)
    current = (stats.config.embedding_provider, stats.config.embedding_model)
    with st.form("admin_reindex"):
        size_column, overlap_column = st.columns(2)
        chunk_size = size_column.number_input(
            "Chunk size (characters)",
            *field_bounds("chunk_size"),
            stats.config.chunk_size,
            50,
            key="admin_chunk_size",
        )
        chunk_overlap = overlap_column.number_input(
            "Chunk overlap (characters)",
            *field_bounds("chunk_overlap"),
            stats.config.chunk_overlap,
            10,
            key="admin_overlap",
        )
        provider, model = st.selectbox(
            "Embedding model",
            choices,
            index=choices.index(current) if current in choices else 0,
            format_func=lambda choice: f"{choice[1]} ({PROVIDER_LABELS[choice[0]]})",
        )
        start = st.form_submit_button("Reindex", type="primary", icon=":material/refresh:")
    if start and (problem := chunking_problem(int(chunk_size), int(chunk_overlap))):
        st.error(f"{problem[0].upper()}{problem[1:]}.")
    elif start:
        config = IndexConfig(provider, model, int(chunk_size), int(chunk_overlap))
        bar = st.progress(0.0, text=f"Starting: {stats.documents} file(s) to re-read…")

        def show(progress: Progress) -> None:
            bar.progress(progress.files_done / progress.files_total, text=progress_text(progress))

        try:
            done = index.reindex(config, on_progress=show)
        except ReindexFailed as failed:
            st.error("The reindex stopped; the current index is unchanged and still in use.")
            for error in failed.errors:
                st.error(f"**{error.file}**: {error.error}", icon="⚠️")
        except Exception as error:  # e.g. OpenAI embeddings unreachable: say so, keep the page
            st.error(f"The reindex failed; the current index is unchanged and in use. {error}")
        else:
            st.session_state.admin_notice = (
                f"Reindexed {done.documents} document(s) into {done.chunks} chunks in "
                f"{duration(done.elapsed_s)}; index version {done.version}."
            )
            st.rerun()

with users_tab:
    people = accounts.users()
    if people:
        st.dataframe(
            [{"Name": u.name, "Admin": u.is_admin} for u in people],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(
            "No accounts: the app is open to everyone who reaches it, as one shared user. Once "
            "an account exists, every visitor signs in first, reads only the collections they "
            "own or that are shared with them, and sees only their own answers and "
            "conversations.",
            icon=":material/group_off:",
        )
    with st.form("admin_add_user", clear_on_submit=False):
        st.markdown("**Add an account**")
        st.text_input("Name", key="admin_new_user_name")
        st.text_input("Password (at least 8 characters)", type="password", key="admin_new_user_pw")
        st.checkbox(
            "Admin (opens this page without the admin password)", key="admin_new_user_admin"
        )
        st.form_submit_button(
            "Add", on_click=add_user, args=(accounts,), icon=":material/person_add:"
        )
    if people:
        with st.form("admin_change_user"):
            st.markdown("**Change an account**")
            st.selectbox("Account", [u.name for u in people], key="admin_user_pick")
            st.text_input("New password", type="password", key="admin_user_new_pw")
            left, right = st.columns(2)
            left.form_submit_button(
                "Set the password", on_click=reset_password, args=(accounts,), icon=":material/key:"
            )
            right.form_submit_button(
                "Delete the account",
                on_click=remove_user,
                args=(accounts,),
                icon=":material/delete:",
            )
    if error := st.session_state.pop("admin_user_error", None):
        st.error(error, icon=":material/block:")
