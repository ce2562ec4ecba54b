"""The catalog and original files in a shared SQL database, so several replicas serve one corpus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ingest.catalog import (
    DuplicateDocument,
    IndexConfig,
    IndexState,
    flags_by_document,
    state_of,
)
from ingest.database_chunks import chunk_values
from ingest.database_tables import (
    index_claims,
    index_documents,
    index_files,
    index_flags,
    index_state,
    keyword_chunks,
    keyword_meta,
)
from ingest.instructions import InstructionFlag
from ingest.keyword import ChunkRow
from ingest.records import DocumentRecord

_STATE = index_state.c.id == 1


class DatabaseCatalog:
    """What `Catalog` keeps in its SQLite file, in the tables of `engine`'s database; every
    replica on that database sees one catalog, and a change is one transaction."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine

    def state(self) -> IndexState | None:
        with self._engine.connect() as db:
            return state_of(db.execute(sa.select(index_state).where(_STATE)).mappings().first())

    def initialise_state(
        self, collection: str, config: IndexConfig, now: str, relevance_threshold: float | None
    ) -> IndexState:
        first = {
            "id": 1,
            "collection": collection,
            "version": 1,
            **asdict(config),
            "built_at": now,
            "relevance_threshold": relevance_threshold,
        }
        try:
            with self._engine.begin() as db:
                db.execute(sa.insert(index_state).values(first))
        except IntegrityError:
            pass  # another replica initialised it first: its state stands
        state = self.state()
        if state is None:
            raise RuntimeError("the index state vanished from the database as it was written")
        return state

    def version(self) -> int:
        with self._engine.connect() as db:
            found = db.execute(sa.select(index_state.c.version).where(_STATE)).scalar()
        return int(found or 0)

    def find_by_sha256(self, sha256: str) -> DocumentRecord | None:
        return self._one(index_documents.c.sha256 == sha256)

    def get(self, doc_id: str) -> DocumentRecord | None:
        return self._one(index_documents.c.doc_id == doc_id)

    def documents(self) -> list[DocumentRecord]:
        query = sa.select(index_documents).order_by(
            index_documents.c.added_at, index_documents.c.source
        )
        with self._engine.connect() as db:
            return [DocumentRecord(**row) for row in db.execute(query).mappings()]

    def doc_ids(self) -> set[str]:
        with self._engine.connect() as db:
            return set(db.execute(sa.select(index_documents.c.doc_id)).scalars())

    def add(self, record: DocumentRecord, flags: Sequence[InstructionFlag] = ()) -> int:
        """Insert a document and its flags and bump the version in one transaction; returns the
        new version. Raises DuplicateDocument when another replica added the same file first."""
        try:
            with self._engine.begin() as db:
                db.execute(sa.insert(index_documents).values(asdict(record)))
                _insert_flags(db, record.doc_id, flags)
                return _bump_version(db)
        except IntegrityError as error:
            raise DuplicateDocument(record.sha256) from error

    def remove(self, doc_id: str) -> int:
        with self._engine.begin() as db:
            db.execute(sa.delete(index_documents).where(index_documents.c.doc_id == doc_id))
            db.execute(sa.delete(index_flags).where(index_flags.c.doc_id == doc_id))
            return _bump_version(db)

    def instruction_flags(self) -> dict[str, list[InstructionFlag]]:
        query = sa.select(index_flags).order_by(index_flags.c.doc_id, index_flags.c.id)
        with self._engine.connect() as db:
            return flags_by_document(db.execute(query).mappings())

    def switch_collection(
        self,
        collection: str,
        config: IndexConfig,
        chunk_counts: dict[str, int],
        now: str,
        flags: dict[str, list[InstructionFlag]] | None = None,
        relevance_threshold: float | None = None,
    ) -> int:
        """As `Catalog.switch_collection`: the rebuilt collection becomes the active one."""
        with self._engine.begin() as db:
            for doc_id, count in chunk_counts.items():
                db.execute(
                    sa.update(index_documents)
                    .where(index_documents.c.doc_id == doc_id)
                    .values(chunks=count)
                )
            if flags is not None:
                db.execute(sa.delete(index_flags))
                for doc_id, found in flags.items():
                    _insert_flags(db, doc_id, found)
            db.execute(
                sa.update(index_state)
                .where(_STATE)
                .values(
                    collection=collection,
                    **asdict(config),
                    reindexed_at=now,
                    relevance_threshold=relevance_threshold,
                )
            )
            return _bump_version(db)

    def adopt(
        self,
        state: IndexState,
        records: Sequence[DocumentRecord],
        flags: dict[str, list[InstructionFlag]],
        originals: dict[str, bytes],
        chunks: Sequence[ChunkRow],
    ) -> bool:
        """Take in an index whose vectors are on the Chroma server but whose catalog, keyword
        chunks and files were kept in a data folder, all in one transaction; False (nothing
        changed) when the database has an index already (another replica adopted it first)."""
        row = {
            "id": 1,
            "collection": state.collection,
            "version": state.version,
            **asdict(state.config),
            "built_at": state.built_at,
            "reindexed_at": state.reindexed_at,
            "relevance_threshold": state.relevance_threshold,
        }
        try:
            with self._engine.begin() as db:
                db.execute(sa.insert(index_state).values(row))
                for record in records:
                    db.execute(sa.insert(index_documents).values(asdict(record)))
                    _insert_flags(db, record.doc_id, flags.get(record.doc_id, []))
                for sha256, data in originals.items():
                    db.execute(sa.insert(index_files).values(sha256=sha256, data=data))
                if chunks:
                    db.execute(sa.insert(keyword_chunks), chunk_values(state.collection, chunks))
                db.execute(
                    sa.insert(keyword_meta),
                    [
                        {"collection": state.collection, "key": key, "value": value}
                        for key, value in (("generation", "1"), ("version", str(state.version)))
                    ],
                )
        except IntegrityError:
            return False
        return True

    def claim(self, doc_id: str, holder: str, now: float, stale_s: float) -> bool:
        """Take the right to write `doc_id`'s chunks for `holder`: True when nobody holds it, or
        its holder has not renewed it for `stale_s` (it died mid-write)."""
        try:
            with self._engine.begin() as db:
                db.execute(
                    sa.insert(index_claims).values(doc_id=doc_id, holder=holder, renewed_s=now)
                )
            return True
        except IntegrityError:
            pass
        stale = index_claims.c.renewed_s < now - stale_s
        with self._engine.begin() as db:
            taken = db.execute(
                sa.update(index_claims)
                .where(index_claims.c.doc_id == doc_id, stale)
                .values(holder=holder, renewed_s=now)
            )
            return taken.rowcount == 1

    def claimed(self) -> list[str]:
        """The documents some replica holds a claim on (writing them, or died doing so)."""
        with self._engine.connect() as db:
            return list(db.execute(sa.select(index_claims.c.doc_id)).scalars())

    def holder_of(self, doc_id: str) -> str | None:
        query = sa.select(index_claims.c.holder).where(index_claims.c.doc_id == doc_id)
        with self._engine.connect() as db:
            return db.execute(query).scalar()

    def take_over(self, doc_id: str, previous: str, holder: str, now: float) -> bool:
        """Move a claim from `previous` (known to be gone) to `holder`, unless it changed hands."""
        with self._engine.begin() as db:
            moved = db.execute(
                sa.update(index_claims)
                .where(index_claims.c.doc_id == doc_id, index_claims.c.holder == previous)
                .values(holder=holder, renewed_s=now)
            )
            return moved.rowcount == 1

    def renew_claim(self, doc_id: str, holder: str, now: float) -> bool:
        """Whether `holder` still held the claim (and now holds it for longer): the claim
        handed from its holder to itself."""
        return self.take_over(doc_id, holder, holder, now)

    def release_claim(self, doc_id: str, holder: str) -> None:
        with self._engine.begin() as db:
            db.execute(
                sa.delete(index_claims).where(
                    index_claims.c.doc_id == doc_id, index_claims.c.holder == holder
                )
            )

    def close(self) -> None:
        """Nothing to close: connections return to the engine's pool after each call."""

    def _one(self, where: sa.ColumnElement[bool]) -> DocumentRecord | None:
        with self._engine.connect() as db:
            row = db.execute(sa.select(index_documents).where(where)).mappings().first()
        return DocumentRecord(**row) if row else None


class DatabaseFiles:
    """Uploaded files as they came, in the database: every replica can re-read (reindex) and
    show (page previews) any document, whichever replica took the upload."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine

    def put(self, sha256: str, data: bytes) -> None:
        """Store a file under its checksum; the same bytes stored twice are kept once."""
        try:
            with self._engine.begin() as db:
                db.execute(sa.insert(index_files).values(sha256=sha256, data=data))
        except IntegrityError:
            pass  # already stored (by a replica adding the same file, or a crashed earlier try)

    def read(self, sha256: str) -> bytes:
        with self._engine.connect() as db:
            data = db.execute(
                sa.select(index_files.c.data).where(index_files.c.sha256 == sha256)
            ).scalar()
        if data is None:
            raise FileNotFoundError(f"no stored file with checksum {sha256[:16]}…")
        return bytes(data)

    def delete(self, sha256: str) -> None:
        with self._engine.begin() as db:
            db.execute(sa.delete(index_files).where(index_files.c.sha256 == sha256))

    def delete_document(self, doc_id: str) -> None:
        """The stored file of a document id (a document's id starts its content's checksum)."""
        with self._engine.begin() as db:
            db.execute(sa.delete(index_files).where(index_files.c.sha256.startswith(doc_id)))

    def size_bytes(self) -> int:
        with self._engine.connect() as db:
            total = db.execute(sa.select(sa.func.sum(sa.func.length(index_files.c.data)))).scalar()
        return int(total or 0)


def _insert_flags(db: sa.Connection, doc_id: str, flags: Sequence[InstructionFlag]) -> None:
    if flags:
        db.execute(
            sa.insert(index_flags),
            [{"doc_id": doc_id, **asdict(flag)} for flag in flags],
        )


def _bump_version(db: sa.Connection) -> int:
    # One UPDATE is atomic in every database: two replicas bumping at once get two versions.
    db.execute(sa.update(index_state).where(_STATE).values(version=index_state.c.version + 1))
    return int(db.execute(sa.select(index_state.c.version).where(_STATE)).scalar_one())
