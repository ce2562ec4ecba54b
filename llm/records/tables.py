"""The database's tables as SQLAlchemy sees them; Alembic's migrations are what create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("created_s", sa.Float, nullable=False),
)

login_tries = sa.Table(
    "login_tries",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until_s", sa.Float, nullable=False),
)

login_sessions = sa.Table(
    "login_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_s", sa.Float, nullable=False),
    sa.Column("expires_s", sa.Float, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("created_s", sa.Float, nullable=False),
    sa.Column("updated_s", sa.Float, nullable=False),
)

conversation_turns = sa.Table(
    "conversation_turns",
    metadata,
    sa.Column(
        "conversation_id",
        sa.String(32),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.JSON, nullable=False),
    sa.Column("created_s", sa.Float, nullable=False),
)

collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("created_s", sa.Float, nullable=False),
)

collection_readers = sa.Table(
    "collection_readers",
    metadata,
    sa.Column(
        "collection_id",
        sa.String(32),
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
)

collection_documents = sa.Table(
    "collection_documents",
    metadata,
    sa.Column(
        "collection_id",
        sa.String(32),
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("doc_id", sa.String(64), primary_key=True),
)

ledger_calls = sa.Table(
    "ledger_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at_utc", sa.String(32), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("estimated", sa.Boolean, nullable=False),
)

ledger_caps = sa.Table(
    "ledger_caps",
    metadata,
    sa.Column("period", sa.String(8), primary_key=True),
    sa.Column("dollars", sa.Float, nullable=False),
    sa.Column("updated_at_utc", sa.String(32), nullable=False),
)

# A ledger file of an older release, once copied in (so it is never counted twice).
ledger_imports = sa.Table(
    "ledger_imports",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
)
