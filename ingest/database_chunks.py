"""A keyword index's chunks in a shared SQL database: every replica searches one BM25 corpus."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ingest.database_tables import keyword_chunks, keyword_meta
from ingest.keyword import ChunkRow

_COLUMNS = ("doc_id", "chunk_index", "source", "page", "location", "ocr", "text", "tokens")


def chunk_values(collection: str, rows: Sequence[ChunkRow]) -> list[dict[str, object]]:
    """Rows of the shared chunk table for a collection's chunks."""
    return [{"collection": collection, **dict(zip(_COLUMNS, row, strict=True))} for row in rows]


class DatabaseChunks:
    """The chunks of one collection (a column of the shared table), with its counters; see
    `ingest.keyword.ChunkStore`. A change and its new generation are one transaction, so a
    corpus read between two equal readings of the generation is exactly that generation's."""

    def __init__(self, engine: sa.Engine, collection: str):
        self._engine = engine
        self._collection = collection
        self._mine = keyword_chunks.c.collection == collection
        self._make_counters()

    def generation(self) -> int:
        with self._engine.connect() as db:
            return _meta_int(db, self._collection, "generation")

    def version(self) -> int:
        with self._engine.connect() as db:
            return _meta_int(db, self._collection, "version")

    def doc_ids(self) -> set[str]:
        query = sa.select(keyword_chunks.c.doc_id).where(self._mine).distinct()
        with self._engine.connect() as db:
            return set(db.execute(query).scalars())

    def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(keyword_chunks).where(self._mine)
        with self._engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def replace(self, doc_id: str, rows: Sequence[ChunkRow], version: int) -> None:
        with self._engine.begin() as db:
            self._delete(db, doc_id)
            if rows:
                db.execute(sa.insert(keyword_chunks), chunk_values(self._collection, rows))
            self._changed(db, version)

    def remove(self, doc_id: str, version: int) -> bool:
        with self._engine.begin() as db:
            deleted = self._delete(db, doc_id) > 0
            if deleted:
                self._changed(db, version)
            else:
                _set_meta(db, self._collection, "version", version)
        return deleted

    def set_version(self, version: int) -> None:
        with self._engine.begin() as db:
            _set_meta(db, self._collection, "version", version)

    def corpus(self) -> tuple[int, int, list[int], list[str]]:
        query = (
            sa.select(keyword_chunks.c.id, keyword_chunks.c.tokens)
            .where(self._mine)
            .order_by(keyword_chunks.c.id)
        )
        with self._engine.connect() as db:
            while True:
                generation = _meta_int(db, self._collection, "generation")
                version = _meta_int(db, self._collection, "version")
                stored = db.execute(query).all()
                db.commit()
                if _meta_int(db, self._collection, "generation") == generation:
                    break
        return generation, version, [row[0] for row in stored], [row[1] for row in stored]

    def fetch(self, row_ids: Sequence[int]) -> dict[int, tuple]:
        if not row_ids:
            return {}
        c = keyword_chunks.c
        query = sa.select(
            c.id, c.doc_id, c.source, c.page, c.chunk_index, c.text, c.location, c.ocr
        ).where(c.id.in_(list(row_ids)))
        with self._engine.connect() as db:
            return {row[0]: tuple(row[1:]) for row in db.execute(query)}

    def retokenize_unless(self, tokenizer: str, tokenize: Callable[[str], list[str]]) -> None:
        with self._engine.begin() as db:
            stored = _meta(db, self._collection, "tokenizer", lock=True)
            if stored == tokenizer:
                return
            texts = db.execute(
                sa.select(keyword_chunks.c.id, keyword_chunks.c.text).where(self._mine)
            ).all()
            for row_id, text in texts:
                db.execute(
                    sa.update(keyword_chunks)
                    .where(keyword_chunks.c.id == row_id)
                    .values(tokens=" ".join(tokenize(text)))
                )
            _set_meta(db, self._collection, "tokenizer", tokenizer)
            self._bump(db)

    def close(self) -> None:
        """Nothing to close: connections return to the engine's pool after each call."""

    def drop(self) -> None:
        with self._engine.begin() as db:
            db.execute(sa.delete(keyword_chunks).where(self._mine))
            db.execute(sa.delete(keyword_meta).where(keyword_meta.c.collection == self._collection))

    def _make_counters(self) -> None:
        """The collection's counter rows, made by its first user (the later ones find them)."""
        mine = keyword_meta.c.collection == self._collection
        with self._engine.connect() as db:
            present = set(db.execute(sa.select(keyword_meta.c.key).where(mine)).scalars())
        for key, first in (("generation", "0"), ("version", "0"), ("tokenizer", "")):
            if key in present:
                continue
            try:
                with self._engine.begin() as db:
                    db.execute(
                        sa.insert(keyword_meta).values(
                            collection=self._collection, key=key, value=first
                        )
                    )
            except IntegrityError:
                pass  # another replica made it meanwhile

    def _delete(self, db: sa.Connection, doc_id: str) -> int:
        done = db.execute(
            sa.delete(keyword_chunks).where(self._mine, keyword_chunks.c.doc_id == doc_id)
        )
        return done.rowcount

    def _changed(self, db: sa.Connection, version: int) -> None:
        self._bump(db)
        _set_meta(db, self._collection, "version", version)

    def _bump(self, db: sa.Connection) -> None:
        # Locked as it is read: two replicas changing at once must make two generations.
        generation = int(_meta(db, self._collection, "generation", lock=True) or 0)
        _set_meta(db, self._collection, "generation", generation + 1)


def _meta(db: sa.Connection, collection: str, key: str, lock: bool = False) -> str | None:
    query = sa.select(keyword_meta.c.value).where(
        keyword_meta.c.collection == collection, keyword_meta.c.key == key
    )
    return db.execute(query.with_for_update() if lock else query).scalar()


def _meta_int(db: sa.Connection, collection: str, key: str) -> int:
    return int(_meta(db, collection, key) or 0)


def _set_meta(db: sa.Connection, collection: str, key: str, value: object) -> None:
    # The rows exist: DatabaseChunks makes them when it opens a collection.
    match = (keyword_meta.c.collection == collection, keyword_meta.c.key == key)
    db.execute(sa.update(keyword_meta).where(*match).values(value=str(value)))
