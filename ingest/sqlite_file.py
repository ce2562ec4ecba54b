"""One SQLite file shared by threads and processes, its schema kept by numbered migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Migration:
    """Schema version `version`: its steps (SQL statements, or functions given the connection)
    run in order inside one transaction, which also records the version."""

    version: int
    description: str
    steps: tuple[Step, ...]


class SchemaTooNew(RuntimeError):
    """The file was written by a newer release: opening it with older code could corrupt it."""


class SQLiteFile:
    """A connection per thread, a busy timeout so writers queue, immediate transactions.

    Opening brings the file to the last of `migrations` (numbered 1, 2, ... with no gaps); its
    version is the file's `PRAGMA user_version`, 0 for a file no migration has touched yet.
    """

    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        *,
        busy_timeout_s: float = 30.0,
        rows_as_dicts: bool = False,
        wal: bool = True,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ):
        if [migration.version for migration in migrations] != list(range(1, len(migrations) + 1)):
            raise ValueError(f"the migrations of {path} must be numbered 1, 2, ... in order")
        self.path = path
        self._migrations = tuple(migrations)
        self._busy_timeout_s = busy_timeout_s
        self._rows_as_dicts = rows_as_dicts
        self._wal = wal
        self._synchronous = synchronous
        self._local = threading.local()
        self._open()

    @property
    def latest_version(self) -> int:
        """The schema version this code writes: that of its last migration."""
        return len(self._migrations)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (sqlite3 objects are per thread)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None
            )
            if self._rows_as_dicts:
                connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken up front, so two writers never deadlock."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in it sees the file as it was at the first one."""
        with self._transaction("BEGIN") as db:
            yield db

    def close(self) -> None:
        """Close this thread's connection; other threads' close as their threads end."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self.connection()
        db.execute(begin)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _open(self) -> None:
        """Refuse a newer file before changing anything in it, then bring it up to date."""
        start = self._version(self.connection())
        if self._wal:
            # WAL lets readers carry on while one process writes; the mode sticks to the file.
            self.connection().execute("PRAGMA journal_mode=WAL")
        for migration in self._migrations[start:]:
            with self.transaction() as db:
                # Read again under the write lock: another process may have migrated meanwhile.
                if self._version(db) < migration.version:
                    self._apply(db, migration)

    def _apply(self, db: sqlite3.Connection, migration: Migration) -> None:
        try:
            for step in migration.steps:
                _run(db, step)
        except Exception as error:
            error.add_note(
                f"migrating {self.path} to version {migration.version}: {migration.description}"
            )
            raise
        db.execute(f"PRAGMA user_version = {migration.version:d}")

    def _version(self, db: sqlite3.Connection) -> int:
        """The file's schema version, refused when newer than this code's."""
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if found > self.latest_version:
            raise SchemaTooNew(
                f"{self.path} has schema version {found}, but this DocQA knows versions up to "
                f"{self.latest_version} only: a newer release wrote it. Open it with that "
                "release; this one could corrupt it."
            )
        return found


def _run(db: sqlite3.Connection, step: Step) -> None:
    # A script would go through executescript, which commits: one statement per step instead.
    if isinstance(step, str):
        db.execute(step)
    else:
        step(db)
