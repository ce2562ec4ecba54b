"""Heavy objects built once per process with st.cache_resource, and settings read once per run."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st
from sqlalchemy import Engine

from ingest.index import DocumentIndex
from ingest.worker import IndexWorker
from llm.access.accounts import Accounts
from llm.access.admin_auth import TryBook
from llm.access.collections import Collections
from llm.access.ledger import SpendLedger
from llm.access.ratelimit import SharedBuckets
from llm.answering.pipeline import warm_up
from llm.components import (
    build_index,
    build_ledger,
    build_trace_store,
    build_worker,
    ocr_for,
)
from llm.models.choice import ChatModelChoice, build_chat_model
from llm.records.conversations import Conversations
from llm.records.database import database_url, open_database
from llm.records.langsmith_tracing import Tracing, secret_values
from llm.records.trace_store import TraceStore
from llm.retrieval.modes import SearchFn
from llm.service import AnswerCache, AnswerService
from llm.settings import Settings, load_settings

APP_OWNER = "the DocQA app (streamlit run)"
# Only what identifies the store: an existing index keeps the chunking and embedder it was built
# with, so other settings must not open a second instance on the same data dir.
_INDEX_FIELDS = {"data_dir", "chroma_url"}
_MODEL_FIELDS = {
    "llm_provider",
    "llm_model",
    "local_model",
    "models_dir",
    "temperature",
    "evidence_bias",
    "max_answer_tokens",
    "context_window",
    "openai_base_url",
}


def settings() -> Settings:
    """Settings for this run: env vars and .streamlit/secrets.toml (cheap, so not cached)."""
    return load_settings()


def index(current: Settings) -> DocumentIndex:
    """One index per data dir and store settings, shared by every session of this process."""
    opened = _index(_key(current, _INDEX_FIELDS), current)
    opened.max_file_bytes = current.max_upload_mb * 1024 * 1024
    opened.ocr = ocr_for(current)
    return opened


def worker(current: Settings) -> IndexWorker:
    """The queue worker of the index, shared by every session: it indexes what any page (or
    `docqa add`, while the app owns the data dir) queues, in a thread of this process. Started
    with the first page view, and again should it ever have stopped."""
    started = _worker(_key(current, _INDEX_FIELDS), index(current))
    started.start()
    return started


def preload_chat_model(current: Settings) -> None:
    """Start loading the chat model in the background: the local model takes seconds to load
    and to read its system prompt, which a reader would otherwise wait for on the first question."""
    _model_load(_key(current, _MODEL_FIELDS), current)


def chat_model(current: Settings) -> ChatModelChoice:
    """The chat model for these settings, loaded once per provider, model and temperature."""
    key = _key(current, _MODEL_FIELDS)
    load = _model_load(key, current)
    try:
        if load.done():
            return load.result()
        with st.spinner("Loading the language model…"):
            return load.result()
    except Exception:
        # A failed load (a missing model file, a bad setting) is tried again next time.
        _model_load.clear(key, current)
        raise


@st.cache_resource(show_spinner="Opening the document index…")
def _index(key: str, _settings: Settings) -> DocumentIndex:
    return build_index(_settings, owner=APP_OWNER, engine=database(_settings))


@st.cache_resource(show_spinner=False)
def _worker(key: str, _index: DocumentIndex) -> IndexWorker:
    return build_worker(_index)


@st.cache_resource(show_spinner=False)
def _model_load(key: str, _settings: Settings) -> Future[ChatModelChoice]:
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docqa-model-load")
    load = loader.submit(_loaded_model, _settings)
    loader.shutdown(wait=False)
    return load


def _loaded_model(current: Settings) -> ChatModelChoice:
    choice = build_chat_model(current)
    warm_up(choice)
    return choice


def _key(current: Settings, fields: set[str]) -> str:
    """A cache key of the fields that matter; the API key enters only as a digest."""
    secret = current.openai_api_key.get_secret_value() if current.openai_api_key else ""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return current.model_dump_json(include=fields) + digest


@st.cache_resource
def _ledger(key: str, _settings: Settings, _engine: Engine) -> SpendLedger:
    return build_ledger(_settings, _engine)


def ledger(current: Settings) -> SpendLedger:
    """The spending ledger in the database (shared across sessions, processes and, on a
    database server, replicas)."""
    key = _url_key(database_url(current)) + str(current.data_dir.resolve())
    return _ledger(key, current, database(current))


@st.cache_resource
def _shared_buckets(data_dir: str) -> SharedBuckets:
    return SharedBuckets()


def shared_buckets(current: Settings) -> SharedBuckets:
    """Rate-limit buckets per client address and for the whole app, seen by every session of
    the app on this data dir (a reload or a new tab finds them as they were)."""
    return _shared_buckets(str(current.data_dir.resolve()))


@st.cache_resource
def _admin_tries(data_dir: str) -> TryBook:
    return TryBook()


def admin_tries(current: Settings) -> TryBook:
    """Wrong admin passwords per client address, so a new tab does not get fresh tries."""
    return _admin_tries(str(current.data_dir.resolve()))


@st.cache_resource
def _trace_store(key: str, _settings: Settings, _engine: Engine) -> TraceStore:
    return build_trace_store(_settings, _engine)


def trace_store(current: Settings) -> TraceStore:
    """The record of every answer made with this data dir, for the Traces page."""
    key = _url_key(database_url(current)) + str(current.data_dir.resolve())
    return _trace_store(key, current, database(current))


@st.cache_resource(show_spinner=False)
def _database(key: str, _url: str) -> Engine:
    return open_database(_url)


def database(current: Settings) -> Engine:
    """The database of accounts and conversations, opened (and migrated) once per URL."""
    url = database_url(current)
    return _database(_url_key(url), url)


def accounts(current: Settings) -> Accounts:
    """The accounts in this run's database."""
    key = _url_key(database_url(current))
    return _accounts(key, current.session_days, database(current))


@st.cache_resource(show_spinner=False)
def _accounts(key: str, session_days: int, _engine: Engine) -> Accounts:
    return Accounts(_engine, session_days=session_days)


def _url_key(url: str) -> str:
    # The URL may hold a password: only its digest names the cached objects.
    return hashlib.sha256(url.encode()).hexdigest()


def collections(current: Settings) -> Collections:
    """The collections (who reads which documents) in this run's database."""
    return Collections(database(current))


def conversations(current: Settings) -> Conversations:
    """The kept conversations in this run's database."""
    return Conversations(database(current))


@st.cache_resource
def _answer_cache(data_dir: str, ttl_s: int) -> AnswerCache:
    return AnswerCache(ttl_s)


def answer_service(current: Settings, index: DocumentIndex, search: SearchFn) -> AnswerService:
    """The answering service over this run's settings, with the process's shared parts: the
    answer cache, the shared rate-limit buckets, the ledger and the trace store."""
    return AnswerService(
        current,
        index,
        search,
        lambda: chat_model(current),
        ledger(current),
        trace_store(current),
        tracing(current),
        limits=shared_buckets(current),
        cache=_answer_cache(str(current.data_dir.resolve()), current.cache_ttl_seconds),
    )


def tracing(current: Settings) -> Tracing | None:
    """LangSmith tracing when configured: one client per endpoint, project, key and secrets."""
    if not current.langsmith_enabled:
        return None
    # Every secret is in the key: the client's redactor is built from their values.
    secrets = "\x1f".join(secret_values(current))
    digest = hashlib.sha256(secrets.encode()).hexdigest()[:12]
    fields = {"langsmith_endpoint", "langsmith_project"}
    return _tracing(current.model_dump_json(include=fields) + digest, current)


@st.cache_resource(show_spinner=False)
def _tracing(key: str, _settings: Settings) -> Tracing:
    return Tracing(_settings)
