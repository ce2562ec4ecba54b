"""Alembic's entry: runs the migrations on the connection `llm.records.database` hands over."""

from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # Two replicas starting at once: the second waits here, then finds nothing left to do.
    connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
# Batch mode: SQLite can only change a table's constraints by copying it.
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
