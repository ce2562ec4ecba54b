"""Collections: who may read which documents; "Everyone's documents" holds what no other does.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    collections = op.create_table(
        "collections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        # An account's removal leaves its collections to the admin, never unassigned.
        sa.Column(
            "owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("created_s", sa.Float, nullable=False),
    )
    op.create_table(
        "collection_readers",
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
    op.create_table(
        "collection_documents",
        sa.Column(
            "collection_id",
            sa.String(32),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("doc_id", sa.String(64), primary_key=True, index=True),
    )
    op.bulk_insert(
        collections,
        [
            {
                "id": "everyone",
                "name": "Everyone's documents",
                "owner_id": None,
                "visibility": "everyone",
                "created_s": 0.0,
            }
        ],
    )
