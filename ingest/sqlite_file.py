"""One SQLite file shared by many threads: a connection per thread, WAL, immediate transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SQLiteFile:
    """WAL mode and a long busy timeout, so threads and processes queue instead of failing."""

    def __init__(self, path: Path, rows_as_dicts: bool = False):
        self.path = path
        self._rows_as_dicts = rows_as_dicts
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (sqlite3 objects are per thread)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            if self._rows_as_dicts:
                connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken up front, so two writers never deadlock."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection; other threads' close as their threads end."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
