"""The index's own state as tables of a shared SQL database, for replicas that serve one corpus.

The app's Alembic migrations (llm/records/migrations) create these tables; this module only
describes them to SQLAlchemy, so the ingest library needs no part of the app to use them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

index_documents = sa.Table(
    "index_documents",
    metadata,
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("added_at", sa.String(32), nullable=False),
    sa.Column("stored_path", sa.Text, nullable=False),
)

index_state = sa.Table(
    "index_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("embedding_provider", sa.String(32), nullable=False),
    sa.Column("embedding_model", sa.String(200), nullable=False),
    sa.Column("chunk_size", sa.Integer, nullable=False),
    sa.Column("chunk_overlap", sa.Integer, nullable=False),
    sa.Column("built_at", sa.String(32), nullable=False),
    sa.Column("reindexed_at", sa.String(32)),
    sa.Column("relevance_threshold", sa.Float),
)

index_flags = sa.Table(
    "index_flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=False, index=True),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text, nullable=False),
    sa.Column("location", sa.Text),
)

# A replica writing a document's chunks holds its claim, renewed as it goes, so another replica
# given the same file waits for it instead of writing the same chunks at the same time.
index_claims = sa.Table(
    "index_claims",
    metadata,
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("renewed_s", sa.Float, nullable=False),
)

index_files = sa.Table(
    "index_files",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

keyword_chunks = sa.Table(
    "keyword_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("collection", sa.String(64), nullable=False, index=True),
    sa.Column("doc_id", sa.String(64), nullable=False),
    sa.Column("chunk_index", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Column("location", sa.Text),
    sa.Column("ocr", sa.Boolean, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.Text, nullable=False),
    sa.UniqueConstraint("collection", "doc_id", "chunk_index"),
)

keyword_meta = sa.Table(
    "keyword_meta",
    metadata,
    sa.Column("collection", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
