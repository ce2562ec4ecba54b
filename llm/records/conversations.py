"""Each owner's conversations, kept in the database: listed, reopened, renamed and deleted, and
only ever by the owner they belong to."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from llm.records.tables import conversation_turns, conversations

TITLE_CHARS = 80


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    updated_s: float


@dataclass(frozen=True)
class KeptTurn:
    """A question and its answer as kept (the answer as the chat page's JSON)."""

    question: str
    answer: dict[str, Any]


class Conversations:
    """The conversations of one database; every call names the owner it acts for."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def list(self, owner: str) -> list[Conversation]:
        """The owner's conversations, the latest first."""
        query = (
            sa.select(conversations.c.id, conversations.c.title, conversations.c.updated_s)
            .where(conversations.c.owner == owner)
            .order_by(conversations.c.updated_s.desc(), conversations.c.id)
        )
        with self._engine.connect() as db:
            return [Conversation(*row) for row in db.execute(query)]

    def start(self, owner: str, first_question: str) -> str:
        """A new, empty conversation titled after its first question; returns its id."""
        now = self._clock()
        conversation_id = uuid.uuid4().hex
        with self._engine.begin() as db:
            db.execute(
                sa.insert(conversations).values(
                    id=conversation_id,
                    owner=owner,
                    title=title_of(first_question),
                    created_s=now,
                    updated_s=now,
                )
            )
        return conversation_id

    def add_turn(
        self, owner: str, conversation_id: str, question: str, answer: dict[str, Any]
    ) -> bool:
        """Append a question and its answer; False when the conversation is not the owner's."""
        now = self._clock()
        with self._engine.begin() as db:
            if not _owned(db, owner, conversation_id):
                return False
            last = db.execute(
                sa.select(sa.func.max(conversation_turns.c.position)).where(
                    conversation_turns.c.conversation_id == conversation_id
                )
            ).scalar()
            db.execute(
                sa.insert(conversation_turns).values(
                    conversation_id=conversation_id,
                    position=(last + 1) if last is not None else 0,
                    question=question,
                    answer=answer,
                    created_s=now,
                )
            )
            db.execute(
                sa.update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(updated_s=now)
            )
        return True

    def turns(self, owner: str, conversation_id: str) -> list[KeptTurn] | None:
        """The conversation's turns in order; None when it is not the owner's."""
        with self._engine.connect() as db:
            if not _owned(db, owner, conversation_id):
                return None
            rows = db.execute(
                sa.select(conversation_turns.c.question, conversation_turns.c.answer)
                .where(conversation_turns.c.conversation_id == conversation_id)
                .order_by(conversation_turns.c.position)
            )
            return [KeptTurn(question, answer) for question, answer in rows]

    def rename(self, owner: str, conversation_id: str, title: str) -> bool:
        title = title_of(title)
        if not title:
            return False
        with self._engine.begin() as db:
            done = db.execute(
                sa.update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.owner == owner)
                .values(title=title)
            )
        return done.rowcount == 1

    def delete(self, owner: str, conversation_id: str) -> bool:
        with self._engine.begin() as db:
            if not _owned(db, owner, conversation_id):
                return False
            # Turns first: not every database enforces the cascade (SQLite only when asked).
            db.execute(
                sa.delete(conversation_turns).where(
                    conversation_turns.c.conversation_id == conversation_id
                )
            )
            db.execute(sa.delete(conversations).where(conversations.c.id == conversation_id))
        return True


def title_of(text: str) -> str:
    """One line of at most TITLE_CHARS characters, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line
    return line[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _owned(db: sa.Connection, owner: str, conversation_id: str) -> bool:
    query = sa.select(conversations.c.id).where(
        conversations.c.id == conversation_id, conversations.c.owner == owner
    )
    return db.execute(query).first() is not None
