"""The spend ledger: every model call with its cost, and the caps set at run time.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at_utc", sa.String(32), nullable=False, index=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
    )
    op.create_table(
        "ledger_caps",
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("dollars", sa.Float, nullable=False),
        sa.Column("updated_at_utc", sa.String(32), nullable=False),
    )
    op.create_table(
        "ledger_imports",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
