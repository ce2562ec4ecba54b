"""Builds the heavy objects (embedder, index, chat model) from settings; the app caches them."""

from __future__ import annotations

from sqlalchemy import Engine

from ingest.catalog import IndexConfig
from ingest.embeddings import build_embeddings
from ingest.formats.ocr import Ocr
from ingest.index import DocumentIndex
from ingest.queue import IngestQueue
from ingest.worker import IndexWorker
from llm.access.ledger import LEGACY_FILE, Caps, SpendLedger
from llm.answering.attribution import EmbedFn
from llm.answering.pipeline import AnswerPipeline
from llm.models.choice import ChatModelChoice
from llm.records.database import database_url, open_database
from llm.records.langsmith_tracing import secret_values
from llm.records.trace_store import TRACES_FILE, TraceStore
from llm.retrieval.modes import SearchFn
from llm.settings import DEFAULT_OPENAI_EMBEDDING_MODEL, LOCAL_EMBEDDING_MODEL, Settings


def index_config(settings: Settings) -> IndexConfig:
    """The config a new index (or a reindex) is built with, as the settings ask."""
    model = settings.embedding_model
    if settings.embedding_provider == "openai" and model == LOCAL_EMBEDDING_MODEL:
        model = DEFAULT_OPENAI_EMBEDDING_MODEL
    return IndexConfig(
        embedding_provider=settings.embedding_provider,
        embedding_model=model,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )


def shares_state(settings: Settings) -> bool:
    """Whether the index's state lives on servers (vectors in Chroma, the rest in the database)
    rather than in the data dir: both servers are set, as for replicas on several machines."""
    return settings.chroma_url is not None and settings.database_url is not None


def build_index(settings: Settings, owner: str, engine: Engine | None = None) -> DocumentIndex:
    """Open (or create) the index; an existing index keeps its own config. When state is shared,
    its catalog, keyword chunks and files are in the database (`engine`, the app's database
    already open, or the settings' one); otherwise `engine` is not used."""
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None

    def embeddings_for(config: IndexConfig):
        return build_embeddings(
            config.embedding_provider, config.embedding_model, api_key, settings.openai_base_url
        )

    return DocumentIndex(
        settings.data_dir,
        embeddings_for,
        index_config(settings),
        max_file_bytes=settings.max_upload_mb * 1024 * 1024,
        chroma_url=settings.chroma_url,
        database=_shared_database(settings, engine),
        owner=owner,
        ocr=ocr_for(settings),
    )


def build_trace_store(settings: Settings, engine: Engine | None = None) -> TraceStore:
    """The record of answers: in the database (`engine` as for `build_index`) when state is
    shared, else in the data dir."""
    shared = _shared_database(settings, engine)
    if shared is not None:
        return TraceStore(engine=shared)
    return TraceStore(settings.data_dir / TRACES_FILE)


def _shared_database(settings: Settings, engine: Engine | None) -> Engine | None:
    if not shares_state(settings):
        return None
    return engine or open_database(database_url(settings))


def build_worker(index: DocumentIndex) -> IndexWorker:
    """The queue worker over an opened index, with the queue of the index's data dir; the
    index's owner starts it (the app, in a thread) and so becomes the queue's only consumer."""
    return IndexWorker(index, IngestQueue(index.data_dir))


def ocr_for(settings: Settings) -> Ocr:
    """How scanned PDF pages are read, as the settings ask."""
    return Ocr(settings.tesseract_cmd, settings.ocr_languages)


def build_ledger(settings: Settings, engine: Engine | None = None) -> SpendLedger:
    """The spending ledger in the app's database (`engine`, or the one the settings name),
    shared by every session and process using it; an older release's ledger file in the data
    dir is copied in once."""
    caps = Caps(settings.cap_daily_usd, settings.cap_weekly_usd, settings.cap_monthly_usd)
    engine = engine or open_database(database_url(settings))
    return SpendLedger(engine, caps, legacy_file=settings.data_dir / LEGACY_FILE)


def build_pipeline(
    settings: Settings,
    search: SearchFn,
    choice: ChatModelChoice,
    embed: EmbedFn | None = None,
    index_threshold: float | None = None,
) -> AnswerPipeline:
    """The answer pipeline over a search function, with the settings' retrieval knobs.

    `embed` (the index's embedder) lets attribution recognise a paraphrased sentence as supported.
    `index_threshold` is the low-relevance threshold calibrated for the index's embedder; a
    threshold in the settings overrides it.
    """
    return AnswerPipeline(
        search,
        choice,
        settings.top_k,
        settings.max_answer_tokens,
        (
            index_threshold
            if settings.low_relevance_threshold is None
            else settings.low_relevance_threshold
        ),
        evidence_tokens=settings.evidence_tokens,
        embed=embed,
        secrets=secret_values(settings),
    )
