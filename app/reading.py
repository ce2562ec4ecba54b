"""What a signed-in user reads and where their uploads go: the sidebar's collection controls,
and the set of documents their searches, answers and page previews may touch. Without accounts
nothing is filtered: everyone reads everything, as before accounts existed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import streamlit as st

from app import resources
from ingest.index import DocumentIndex
from ingest.records import doc_id_of
from llm.access.accounts import User
from llm.access.collections import EVERYONE, VISIBILITIES, Collection, CollectionError
from llm.settings import Settings

SHARING_LABELS = {
    "private": "Only me",
    "readers": "Me and the people I name",
    "everyone": "Everyone",
}


def reader() -> User | None:
    user = st.session_state.get("user")
    return user if isinstance(user, User) else None


def scope(settings: Settings, index: DocumentIndex) -> frozenset[str] | None:
    """The ids of the documents this session's searches may return; None: every document."""
    user = reader()
    if user is None:
        return None
    store = resources.collections(settings)
    readable = [c.id for c in store.readable(user)]
    picked = [c for c in st.session_state.get("search_in", readable) if c in readable]
    if user.is_admin and set(picked) == {c.id for c in store.all()}:
        return None
    return store.scope(picked, {record.doc_id for record in index.documents()})


def scope_key(only: frozenset[str] | None) -> str:
    """A short digest naming a scope, for cache keys ("" for every document)."""
    if only is None:
        return ""
    return hashlib.sha256("\x1f".join(sorted(only)).encode()).hexdigest()[:24]


def may_read(settings: Settings, index: DocumentIndex, doc_id: str) -> bool:
    """Whether this session may open a document (a page preview asks before drawing it)."""
    user = reader()
    if user is None or user.is_admin:
        return True
    store = resources.collections(settings)
    readable = [c.id for c in store.readable(user)]
    return doc_id in store.scope(readable, {doc_id})


def file_into_collection(settings: Settings, files: Sequence[tuple[str, bytes]]) -> None:
    """Put the uploaded files' documents in the chosen collection before they are indexed, so
    none is ever searchable as Everyone's while it waits."""
    user = reader()
    if user is None:
        return
    store = resources.collections(settings)
    writable = {c.id for c in store.writable(user)}
    target = st.session_state.get("upload_to")
    if target not in writable:
        target = store.private_of(user).id
    store.add_documents(target, [doc_id_of(data) for _, data in files])


def sidebar_controls(settings: Settings, index: DocumentIndex, user: User) -> None:
    """Which collections to search, where uploads go, and a new collection."""
    store = resources.collections(settings)
    store.private_of(user)
    readable = store.readable(user)
    names = {c.id: c.name for c in readable}
    ids = list(names)
    # A collection shared with the user since they last looked is searched too, until unpicked.
    known = st.session_state.get("search_known", set())
    picked = st.session_state.get("search_in", [])
    st.session_state.search_in = [c for c in picked if c in names] + [
        c for c in ids if c not in known and c not in picked
    ]
    st.session_state.search_known = set(ids)
    st.multiselect(
        "Search in",
        ids,
        key="search_in",
        format_func=lambda collection_id: names.get(collection_id, collection_id),
        help="The collections your questions are answered from.",
    )
    writable = store.writable(user)
    writable_names = {c.id: c.name for c in writable}
    st.selectbox(
        "Add uploads to",
        list(writable_names),
        key="upload_to",
        format_func=lambda collection_id: writable_names.get(collection_id, collection_id),
    )
    with st.popover("New collection", icon=":material/create_new_folder:"):
        st.text_input("Name", key="new_collection_name")
        st.radio(
            "Who may read it",
            VISIBILITIES,
            format_func=SHARING_LABELS.__getitem__,
            key="new_collection_sharing",
        )
        others = others_of(settings, user)
        st.multiselect(
            "People (for “the people I name”)",
            list(others),
            format_func=lambda user_id: others.get(user_id, str(user_id)),
            key="new_collection_readers",
        )
        st.button("Create", on_click=_create, args=(settings, user), icon=":material/add:")
    target = store.get(st.session_state.get("upload_to", ""))
    if target is not None and target.id != EVERYONE and target.writable_by(user):
        _manage(settings, index, target, others_of(settings, user))
    if error := st.session_state.pop("collection_error", None):
        st.error(error, icon=":material/block:")


def others_of(settings: Settings, user: User) -> dict[int, str]:
    return {u.id: u.name for u in resources.accounts(settings).users() if u.id != user.id}


def _manage(
    settings: Settings, index: DocumentIndex, target: Collection, others: dict[int, str]
) -> None:
    """Sharing, documents and deletion of the collection uploads go to."""
    with st.popover(f"Manage “{target.name}”", icon=":material/folder_managed:"):
        st.radio(
            "Who may read it",
            VISIBILITIES,
            index=VISIBILITIES.index(target.visibility),
            format_func=SHARING_LABELS.__getitem__,
            key=f"sharing_{target.id}",
        )
        st.multiselect(
            "People (for “the people I name”)",
            list(others),
            default=[r for r in target.readers if r in others],
            format_func=lambda user_id: others.get(user_id, str(user_id)),
            key=f"readers_{target.id}",
        )
        st.button(
            "Save sharing", key=f"share_{target.id}", on_click=_share, args=(settings, target.id)
        )
        held = resources.collections(settings).documents_of(target.id)
        records = [r for r in index.documents() if r.doc_id in held]
        for record in records:
            st.button(
                f"Remove {record.source}",
                key=f"remove_{target.id}_{record.doc_id}",
                on_click=_remove_document,
                args=(settings, index, target.id, record.doc_id),
                icon=":material/remove_circle:",
                type="tertiary",
            )
        st.button(
            "Delete the collection",
            key=f"delete_{target.id}",
            on_click=_delete_collection,
            args=(settings, index, target.id),
            icon=":material/delete:",
            help="Its documents that no other collection holds are deleted from the index.",
        )


def _create(settings: Settings, user: User) -> None:
    store = resources.collections(settings)
    try:
        made = store.create(
            user,
            st.session_state.get("new_collection_name", ""),
            st.session_state.get("new_collection_sharing", "private"),
            st.session_state.get("new_collection_readers", []),
        )
    except CollectionError as refused:
        st.session_state.collection_error = str(refused)
        return
    st.session_state.new_collection_name = ""
    st.session_state.search_in = [*st.session_state.get("search_in", []), made.id]
    st.session_state.upload_to = made.id


def _share(settings: Settings, collection_id: str) -> None:
    try:
        resources.collections(settings).share(
            collection_id,
            st.session_state.get(f"sharing_{collection_id}", "private"),
            st.session_state.get(f"readers_{collection_id}", []),
        )
    except CollectionError as refused:
        st.session_state.collection_error = str(refused)


def _remove_document(
    settings: Settings, index: DocumentIndex, collection_id: str, doc_id: str
) -> None:
    store = resources.collections(settings)
    if store.homes(doc_id) == {collection_id}:
        # Out of the index first: a document in no collection would read as Everyone's.
        index.remove(doc_id)
    store.remove_document(collection_id, doc_id)


def _delete_collection(settings: Settings, index: DocumentIndex, collection_id: str) -> None:
    store = resources.collections(settings)
    for doc_id in store.only_here(collection_id):
        index.remove(doc_id)
    store.delete(collection_id)
    st.session_state.pop("upload_to", None)
