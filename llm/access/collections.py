"""Collections: which documents each user may read. A user's uploads go into a collection they
own, private or shared (with everyone, or with named users); a document no collection holds
(indexed before accounts existed, or by `docqa add`) belongs to "Everyone's documents".

Only the catalog of collections lives here; the index knows nothing of users. The app turns
the collections a user picks into the set of document ids a search may return (`scope`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llm.access.accounts import User
from llm.records.tables import collection_documents, collection_readers, collections

EVERYONE = "everyone"
Visibility = Literal["private", "everyone", "readers"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "readers", "everyone")


class CollectionError(ValueError):
    """A collection cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class Collection:
    id: str
    name: str
    owner_id: int | None
    visibility: Visibility
    readers: tuple[int, ...] = ()

    def readable_by(self, user: User) -> bool:
        return (
            user.is_admin
            or self.visibility == EVERYONE
            or self.owner_id == user.id
            or (self.visibility == "readers" and user.id in self.readers)
        )

    def writable_by(self, user: User) -> bool:
        """Owners add to their collections; admins to any (and to Everyone's documents)."""
        return user.is_admin or (self.owner_id is not None and self.owner_id == user.id)


class Collections:
    """The collections of one database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def all(self) -> list[Collection]:
        return self._load()

    def get(self, collection_id: str) -> Collection | None:
        found = self._load(collections.c.id == collection_id)
        return found[0] if found else None

    def _load(self, *where: sa.ColumnElement[bool]) -> list[Collection]:
        """The collections matching `where` (all without), oldest first, with their readers."""
        with self._engine.connect() as db:
            rows = db.execute(
                sa.select(collections).where(*where).order_by(collections.c.created_s)
            ).all()
            readers: dict[str, list[int]] = {}
            ids = [row.id for row in rows]
            for collection_id, user_id in db.execute(
                sa.select(collection_readers).where(collection_readers.c.collection_id.in_(ids))
            ):
                readers.setdefault(collection_id, []).append(int(user_id))
        return [
            Collection(
                row.id,
                row.name,
                row.owner_id,
                row.visibility,
                tuple(sorted(readers.get(row.id, []))),
            )
            for row in rows
        ]

    def readable(self, user: User) -> list[Collection]:
        return [c for c in self.all() if c.readable_by(user)]

    def writable(self, user: User) -> list[Collection]:
        """Where the user may upload: their private collection first (made when missing)."""
        own = self.private_of(user)
        return [own, *(c for c in self.all() if c.writable_by(user) and c.id != own.id)]

    def private_of(self, user: User) -> Collection:
        """The user's own private collection, made on first need."""
        collection_id = f"private-{user.id}"
        if (found := self.get(collection_id)) is not None:
            return found
        try:
            with self._engine.begin() as db:
                self._insert(db, collection_id, f"{user.name}'s documents", user, "private")
        except IntegrityError:
            pass  # made already, by this or another process
        found = self.get(collection_id)
        assert found is not None
        return found

    def create(
        self, owner: User, name: str, visibility: Visibility, readers: Sequence[int] = ()
    ) -> Collection:
        name = " ".join(name.split())
        if not name or len(name) > 100:
            raise CollectionError("A collection's name is 1 to 100 characters.")
        collection_id = uuid.uuid4().hex
        with self._engine.begin() as db:
            self._insert(db, collection_id, name, owner, _checked(visibility))
            _set_readers(db, collection_id, readers if visibility == "readers" else ())
        found = self.get(collection_id)
        assert found is not None
        return found

    def _insert(
        self, db: sa.Connection, collection_id: str, name: str, owner: User, visibility: str
    ) -> None:
        db.execute(
            sa.insert(collections).values(
                id=collection_id,
                name=name,
                owner_id=owner.id,
                visibility=visibility,
                created_s=self._clock(),
            )
        )

    def share(
        self, collection_id: str, visibility: Visibility, readers: Sequence[int] = ()
    ) -> None:
        if collection_id == EVERYONE:
            raise CollectionError("Everyone's documents are everyone's.")
        with self._engine.begin() as db:
            db.execute(
                sa.update(collections)
                .where(collections.c.id == collection_id)
                .values(visibility=_checked(visibility))
            )
            _set_readers(db, collection_id, readers if visibility == "readers" else ())

    def add_documents(self, collection_id: str, doc_ids: Iterable[str]) -> None:
        """Put documents in a collection (before they are indexed: never seen unassigned)."""
        present = self.documents_of(collection_id)
        with self._engine.begin() as db:
            rows = [
                {"collection_id": collection_id, "doc_id": doc_id}
                for doc_id in dict.fromkeys(doc_ids)
                if doc_id not in present
            ]
            if rows:
                db.execute(sa.insert(collection_documents), rows)

    def documents_of(self, collection_id: str) -> set[str]:
        return self._pairs(collection_documents.c.doc_id, collection_id=collection_id)

    def homes(self, doc_id: str) -> set[str]:
        """The collections holding a document (empty: it is Everyone's)."""
        return self._pairs(collection_documents.c.collection_id, doc_id=doc_id)

    def _pairs(self, wanted: sa.Column, **where: str) -> set[str]:
        """One side of the collection-document pairs whose other side is as given."""
        query = sa.select(wanted).where(
            *(collection_documents.c[name] == value for name, value in where.items())
        )
        with self._engine.connect() as db:
            return set(db.execute(query).scalars())

    def only_here(self, collection_id: str) -> set[str]:
        """The documents no other collection holds: deleting the collection must delete them
        from the index first, or they would fall to Everyone's documents."""
        return {d for d, held in self._homes().items() if held == {collection_id}}

    def remove_document(self, collection_id: str, doc_id: str) -> None:
        with self._engine.begin() as db:
            db.execute(
                sa.delete(collection_documents).where(
                    collection_documents.c.collection_id == collection_id,
                    collection_documents.c.doc_id == doc_id,
                )
            )

    def forget_document(self, doc_id: str) -> None:
        """A document deleted from the index leaves every collection."""
        with self._engine.begin() as db:
            db.execute(
                sa.delete(collection_documents).where(collection_documents.c.doc_id == doc_id)
            )

    def delete(self, collection_id: str) -> None:
        if collection_id == EVERYONE:
            raise CollectionError("Everyone's documents cannot be deleted.")
        with self._engine.begin() as db:
            for table, column in (
                (collection_documents, collection_documents.c.collection_id),
                (collection_readers, collection_readers.c.collection_id),
                (collections, collections.c.id),
            ):
                db.execute(sa.delete(table).where(column == collection_id))

    def scope(self, picked: Sequence[str], known: Iterable[str]) -> frozenset[str]:
        """The ids among `known` (the indexed documents) that the picked collections hold;
        Everyone's documents hold every document no collection holds."""
        homes, wanted = self._homes(), set(picked)
        return frozenset(doc_id for doc_id in known if homes.get(doc_id, {EVERYONE}) & wanted)

    def _homes(self) -> dict[str, set[str]]:
        """Every document a collection holds, with the collections holding it."""
        homes: dict[str, set[str]] = {}
        with self._engine.connect() as db:
            for collection_id, doc_id in db.execute(
                sa.select(collection_documents.c.collection_id, collection_documents.c.doc_id)
            ):
                homes.setdefault(doc_id, set()).add(collection_id)
        return homes


def _checked(visibility: str) -> Visibility:
    if visibility not in VISIBILITIES:
        raise CollectionError(f"Unknown sharing {visibility!r}.")
    return visibility  # type: ignore[return-value]


def _set_readers(db: sa.Connection, collection_id: str, readers: Sequence[int]) -> None:
    db.execute(
        sa.delete(collection_readers).where(collection_readers.c.collection_id == collection_id)
    )
    rows = [
        {"collection_id": collection_id, "user_id": user_id} for user_id in dict.fromkeys(readers)
    ]
    if rows:
        db.execute(sa.insert(collection_readers), rows)
