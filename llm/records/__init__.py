"""Records: the trace store, LangSmith tracing, the keys of cached answers, and the database of
accounts, collections and kept conversations (SQLAlchemy tables, Alembic migrations)."""
