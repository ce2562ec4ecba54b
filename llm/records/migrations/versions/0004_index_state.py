"""State for replicas sharing one corpus: the index's catalog, instruction flags, original files
and keyword chunks (ingest/database_tables.py describes them), and the answers' traces.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_documents",
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
    op.create_table(
        "index_state",
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
    op.create_table(
        "index_flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text, nullable=False),
        sa.Column("location", sa.Text),
    )
    op.create_index("ix_index_flags_doc_id", "index_flags", ["doc_id"])
    op.create_table(
        "index_claims",
        sa.Column("doc_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("renewed_s", sa.Float, nullable=False),
    )
    op.create_table(
        "index_files",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "keyword_chunks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection", sa.String(64), nullable=False),
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
    op.create_index("ix_keyword_chunks_collection", "keyword_chunks", ["collection"])
    op.create_table(
        "keyword_meta",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "traces",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("page", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("standalone_question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("timings", sa.Text, nullable=False),
        sa.Column("usage", sa.Text, nullable=False),
        sa.Column("langsmith_url", sa.Text),
        sa.Column("cached_from", sa.Text),
        sa.Column("feedback_score", sa.Integer),
        sa.Column("feedback_comment", sa.Text),
        sa.Column("attribution", sa.Text),
        sa.Column("owner", sa.Text),
    )
    op.create_index("ix_traces_created_at", "traces", ["created_at"])
