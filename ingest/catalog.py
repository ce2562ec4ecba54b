"""SQLite catalog of stored documents and of the index's own state (active collection, version)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingest.instructions import InstructionFlag
from ingest.records import DocumentRecord
from ingest.sqlite_file import Migration, SQLiteFile

# Version 1 is the schema of 0.1.0, whose files carry no version (user_version 0): IF NOT EXISTS
# takes such a file over as it is, and one from before instruction flags gains their table.
MIGRATIONS = (
    Migration(
        1,
        "documents, index_state and instruction_flags, as in 0.1.0",
        (
            """CREATE TABLE IF NOT EXISTS documents (
                doc_id TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                sha256 TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                pages INTEGER NOT NULL,
                chunks INTEGER NOT NULL,
                size_bytes INTEGER NOT NULL,
                added_at TEXT NOT NULL,
                stored_path TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS index_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                collection TEXT NOT NULL,
                version INTEGER NOT NULL,
                embedding_provider TEXT NOT NULL,
                embedding_model TEXT NOT NULL,
                chunk_size INTEGER NOT NULL,
                chunk_overlap INTEGER NOT NULL,
                built_at TEXT NOT NULL,
                reindexed_at TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS instruction_flags (
                doc_id TEXT NOT NULL,
                page INTEGER NOT NULL,
                reason TEXT NOT NULL,
                excerpt TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS instruction_flags_doc ON instruction_flags (doc_id)",
        ),
    ),
    Migration(
        2,
        "an instruction flag's location (slide, sheet, heading) beside its page",
        ("ALTER TABLE instruction_flags ADD COLUMN location TEXT",),
    ),
    Migration(
        3,
        "the low-relevance threshold calibrated for the embedder the index was built with",
        ("ALTER TABLE index_state ADD COLUMN relevance_threshold REAL",),
    ),
)


@dataclass(frozen=True)
class IndexConfig:
    """How an index is built: which embedder, and how documents are cut into chunks."""

    embedding_provider: str
    embedding_model: str
    chunk_size: int
    chunk_overlap: int


def config_of(row: Mapping[str, Any]) -> IndexConfig:
    """The config stored in an index-state row."""
    return IndexConfig(
        row["embedding_provider"], row["embedding_model"], row["chunk_size"], row["chunk_overlap"]
    )


def state_of(row: Any) -> IndexState | None:
    """The index state in a row of `index_state` (by column name), if there is one."""
    if row is None:
        return None
    return IndexState(
        row["collection"],
        row["version"],
        config_of(row),
        row["built_at"],
        row["reindexed_at"],
        row["relevance_threshold"],
    )


def flags_by_document(rows: Iterable[Any]) -> dict[str, list[InstructionFlag]]:
    """Instruction-flag rows (by column name) grouped per document id, in the rows' order."""
    flags: dict[str, list[InstructionFlag]] = {}
    for row in rows:
        flags.setdefault(row["doc_id"], []).append(
            InstructionFlag(row["page"], row["reason"], row["excerpt"], row["location"])
        )
    return flags


class DuplicateDocument(RuntimeError):
    """A file with the same content was catalogued first (by another process or replica)."""


@dataclass(frozen=True)
class IndexState:
    """The index in use: its Chroma collection, version and the config it was built with.

    `relevance_threshold` is the low-relevance cut-off calibrated for the config's embedder when
    the collection was built (None: none is known, or the index predates the record).
    """

    collection: str
    version: int
    config: IndexConfig
    built_at: str
    reindexed_at: str | None
    relevance_threshold: float | None = None


class Catalog:
    """Documents and index state in one SQLite file; safe across threads and processes."""

    def __init__(self, path: Path):
        self.path = path
        self._db = SQLiteFile(path, MIGRATIONS, rows_as_dicts=True)

    def state(self) -> IndexState | None:
        return state_of(
            self._db.connection().execute("SELECT * FROM index_state WHERE id = 1").fetchone()
        )

    def initialise_state(
        self, collection: str, config: IndexConfig, now: str, relevance_threshold: float | None
    ) -> IndexState:
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO index_state (id, collection, version, embedding_provider,"
                " embedding_model, chunk_size, chunk_overlap, built_at, relevance_threshold)"
                " VALUES (1, ?, 1, ?, ?, ?, ?, ?, ?)",
                (collection, *_config_row(config), now, relevance_threshold),
            )
        state = self.state()
        if state is None:
            raise RuntimeError(
                f"the index state in {self.path} vanished right after it was written"
            )
        return state

    def version(self) -> int:
        row = (
            self._db.connection().execute("SELECT version FROM index_state WHERE id = 1").fetchone()
        )
        return int(row["version"]) if row else 0

    def find_by_sha256(self, sha256: str) -> DocumentRecord | None:
        row = (
            self._db.connection()
            .execute("SELECT * FROM documents WHERE sha256 = ?", (sha256,))
            .fetchone()
        )
        return DocumentRecord(**dict(row)) if row else None

    def get(self, doc_id: str) -> DocumentRecord | None:
        row = (
            self._db.connection()
            .execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,))
            .fetchone()
        )
        return DocumentRecord(**dict(row)) if row else None

    def documents(self) -> list[DocumentRecord]:
        rows = self._db.connection().execute("SELECT * FROM documents ORDER BY added_at, source")
        return [DocumentRecord(**dict(row)) for row in rows]

    def doc_ids(self) -> set[str]:
        rows = self._db.connection().execute("SELECT doc_id FROM documents")
        return {row["doc_id"] for row in rows}

    def add(self, record: DocumentRecord, flags: Sequence[InstructionFlag] = ()) -> int:
        """Insert a document and its instruction flags and bump the version in one transaction;
        returns the new version. Raises DuplicateDocument when the same file was added first."""
        try:
            with self._db.transaction() as db:
                db.execute(
                    "INSERT INTO documents VALUES (:doc_id, :source, :sha256, :kind, :pages,"
                    " :chunks, :size_bytes, :added_at, :stored_path)",
                    asdict(record),
                )
                _insert_flags(db, record.doc_id, flags)
                return _bump_version(db)
        except sqlite3.IntegrityError as error:
            raise DuplicateDocument(record.sha256) from error

    def remove(self, doc_id: str) -> int:
        with self._db.transaction() as db:
            db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            db.execute("DELETE FROM instruction_flags WHERE doc_id = ?", (doc_id,))
            return _bump_version(db)

    def instruction_flags(self) -> dict[str, list[InstructionFlag]]:
        """Per document id, its passages that read as instructions to a model, in page order."""
        rows = self._db.connection().execute(
            "SELECT doc_id, page, reason, excerpt, location FROM instruction_flags"
            " ORDER BY doc_id, rowid"
        )
        return flags_by_document(rows)

    def switch_collection(
        self,
        collection: str,
        config: IndexConfig,
        chunk_counts: dict[str, int],
        now: str,
        flags: dict[str, list[InstructionFlag]] | None = None,
        relevance_threshold: float | None = None,
    ) -> int:
        """Make a rebuilt collection the active one, in one atomic step; returns the new version.

        `flags`, when given, replaces every document's instruction flags (a reindex finds them
        again, so documents added before flagging existed gain theirs)."""
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE documents SET chunks = ? WHERE doc_id = ?",
                [(count, doc_id) for doc_id, count in chunk_counts.items()],
            )
            if flags is not None:
                db.execute("DELETE FROM instruction_flags")
                for doc_id, found in flags.items():
                    _insert_flags(db, doc_id, found)
            db.execute(
                "UPDATE index_state SET collection = ?, embedding_provider = ?,"
                " embedding_model = ?, chunk_size = ?, chunk_overlap = ?, reindexed_at = ?,"
                " relevance_threshold = ? WHERE id = 1",
                (collection, *_config_row(config), now, relevance_threshold),
            )
            return _bump_version(db)

    def close(self) -> None:
        self._db.close()


def _insert_flags(db: sqlite3.Connection, doc_id: str, flags: Sequence[InstructionFlag]) -> None:
    db.executemany(
        "INSERT INTO instruction_flags (doc_id, page, reason, excerpt, location)"
        " VALUES (?, ?, ?, ?, ?)",
        [(doc_id, flag.page, flag.reason, flag.excerpt, flag.location) for flag in flags],
    )


def _config_row(config: IndexConfig) -> tuple[str, str, int, int]:
    return (
        config.embedding_provider,
        config.embedding_model,
        config.chunk_size,
        config.chunk_overlap,
    )


def _bump_version(db: sqlite3.Connection) -> int:
    db.execute("UPDATE index_state SET version = version + 1 WHERE id = 1")
    return int(db.execute("SELECT version FROM index_state WHERE id = 1").fetchone()[0])
