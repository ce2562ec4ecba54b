"""SQLiteFile's migrations on real SQLite files: order, once only, rollback, newer files, races."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from ingest.sqlite_file import Migration, SchemaTooNew, SQLiteFile


def slow_insert(db: sqlite3.Connection) -> None:
    # Long enough that a second opener reads the old version before the first one commits.
    time.sleep(0.3)
    db.execute("INSERT INTO log VALUES ('three')")


# Each step appends to `log` and none could run twice: CREATE TABLE without IF NOT EXISTS.
MIGRATIONS = (
    Migration(
        1, "log", ("CREATE TABLE log (step TEXT NOT NULL)", "INSERT INTO log VALUES ('one')")
    ),
    Migration(2, "second", ("INSERT INTO log VALUES ('two')", "CREATE TABLE second (x INTEGER)")),
    Migration(3, "third, by a function", (slow_insert,)),
)
BROKEN_SECOND = (
    MIGRATIONS[0],
    Migration(
        2, "fails half way", ("CREATE TABLE second (x INTEGER)", "INSERT INTO absent VALUES (1)")
    ),
)


def logged(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        steps = [row[0] for row in db.execute("SELECT step FROM log ORDER BY rowid")]
    db.close()
    return steps


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return version


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    return names


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    return mode


def open_at(path_text: str, start: Barrier) -> None:
    # Module level so spawned processes can unpickle it.
    start.wait(timeout=60)
    SQLiteFile(Path(path_text), MIGRATIONS).close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


def test_pending_migrations_run_in_order_exactly_once(path: Path) -> None:
    SQLiteFile(path, MIGRATIONS[:2]).close()
    assert (logged(path), user_version(path)) == (["one", "two"], 2)

    upgraded = SQLiteFile(path, MIGRATIONS)
    assert upgraded.latest_version == 3
    upgraded.close()
    SQLiteFile(path, MIGRATIONS).close()

    assert (logged(path), user_version(path)) == (["one", "two", "three"], 3)


def test_a_failing_migration_rolls_back_and_leaves_the_previous_version(path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="absent") as failed:
        SQLiteFile(path, BROKEN_SECOND)

    assert failed.value.__notes__ == [f"migrating {path} to version 2: fails half way"]

    assert (logged(path), user_version(path)) == (["one"], 1)
    assert "second" not in tables(path)
    SQLiteFile(path, MIGRATIONS).close()
    assert (logged(path), user_version(path)) == (["one", "two", "three"], 3)


def test_a_file_newer_than_the_code_is_refused_and_left_alone(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    db.close()

    with pytest.raises(SchemaTooNew) as refused:
        SQLiteFile(path, MIGRATIONS)

    message = str(refused.value)
    assert str(path) in message
    assert "version 7" in message and "up to 3" in message
    assert (user_version(path), tables(path), journal_mode(path)) == (7, set(), "delete")


def test_migrations_must_be_numbered_from_one_without_gaps(path: Path) -> None:
    for numbered_wrong in (MIGRATIONS[1:], (MIGRATIONS[0], MIGRATIONS[2]), MIGRATIONS[::-1]):
        with pytest.raises(ValueError, match="numbered 1, 2"):
            SQLiteFile(path, numbered_wrong)
    assert not path.exists()


def test_two_threads_opening_an_old_file_at_once_migrate_it_once(path: Path) -> None:
    SQLiteFile(path, MIGRATIONS[:1]).close()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            start.wait(timeout=60)
            SQLiteFile(path, MIGRATIONS).close()
        except BaseException as error:
            errors.append(error)

    openers = [threading.Thread(target=open_it) for _ in range(2)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=60)

    assert errors == []
    assert (logged(path), user_version(path)) == (["one", "two", "three"], 3)


def test_two_processes_opening_an_old_file_at_once_migrate_it_once(path: Path) -> None:
    SQLiteFile(path, MIGRATIONS[:1]).close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    openers = [context.Process(target=open_at, args=(str(path), start)) for _ in range(2)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=120)

    assert [opener.exitcode for opener in openers] == [0, 0]
    assert (logged(path), user_version(path)) == (["one", "two", "three"], 3)
