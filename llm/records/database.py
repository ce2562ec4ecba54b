"""The app's relational database (accounts, conversations): SQLite in the data dir by default,
or a server such as PostgreSQL, always brought to the newest schema with Alembic on opening."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError

from llm.settings import Settings

DATABASE_FILE = "docqa.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(settings: Settings) -> str:
    """The configured URL, or the SQLite file in the data dir."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return f"sqlite:///{(settings.data_dir / DATABASE_FILE).resolve()}"


def open_database(url: str) -> Engine:
    """An engine on `url` whose schema is the newest one (made or migrated now if need be)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    upgrade(engine)
    return engine


def head_revision() -> str:
    """The newest schema's revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Apply every migration the database lacks, in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def update_or_insert(
    db: sa.Connection,
    table: sa.Table,
    key: dict[str, Any],
    changes: dict[str, Any],
    first: dict[str, Any],
) -> None:
    """Apply `changes` to the row of `table` matching `key`, or insert `key` with `first` when
    there is none; a row another process inserted meanwhile gets the `changes` instead. (No
    portable upsert in SQLAlchemy Core: each dialect has its own ON CONFLICT.)"""
    match = [table.c[name] == value for name, value in key.items()]
    if db.execute(sa.update(table).where(*match).values(changes)).rowcount:
        return
    try:
        with db.begin_nested():
            db.execute(sa.insert(table).values({**key, **first}))
    except IntegrityError:
        db.execute(sa.update(table).where(*match).values(changes))


def _sqlite_pragmas(connection: sqlite3.Connection, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers in while one process writes.
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()
