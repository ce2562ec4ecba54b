"""Kept conversations on a real database (SQLite and PostgreSQL): in order, latest first, and
never read, added to, renamed or deleted by anyone but their owner."""

from __future__ import annotations

import sqlalchemy as sa

from llm.records.conversations import TITLE_CHARS, Conversations, title_of
from llm.records.database import open_database


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def answer(text: str) -> dict:
    return {"content": text, "sources": [{"source": "R-data.pdf", "page": 15}]}


def test_turns_come_back_in_order_and_the_latest_conversation_first(database_url: str) -> None:
    store = Conversations(open_database(database_url), clock=Clock())
    first = store.start("user:1", "How do I read fixed-width files?")
    store.add_turn("user:1", first, "How do I read fixed-width files?", answer("Use read.fwf [1]."))
    second = store.start("user:1", "What is RODBC?")
    store.add_turn("user:1", second, "What is RODBC?", answer("An ODBC interface [1]."))
    store.add_turn("user:1", first, "And Fortran formats?", answer("Use read.fortran [1]."))

    assert [c.id for c in store.list("user:1")] == [first, second]
    turns = store.turns("user:1", first)
    assert turns is not None
    assert [t.question for t in turns] == [
        "How do I read fixed-width files?",
        "And Fortran formats?",
    ]
    assert turns[1].answer == answer("Use read.fortran [1].")

    assert store.rename("user:1", second, "  RODBC\n notes ")
    assert [c.title for c in store.list("user:1")] == [
        "How do I read fixed-width files?",
        "RODBC notes",
    ]
    assert not store.rename("user:1", second, "   ")

    assert store.delete("user:1", first)
    assert [c.id for c in store.list("user:1")] == [second]
    assert store.turns("user:1", first) is None
    with open_database(database_url).connect() as db:
        kept = db.execute(sa.text("SELECT count(*) FROM conversation_turns")).scalar()
    assert kept == 1, "a deleted conversation's turns must go with it"


def test_another_owner_can_neither_see_nor_change_a_conversation(database_url: str) -> None:
    store = Conversations(open_database(database_url))
    mine = store.start("user:1", "private question")
    store.add_turn("user:1", mine, "private question", answer("private answer"))

    assert store.list("user:2") == []
    assert store.turns("user:2", mine) is None
    assert not store.add_turn("user:2", mine, "sneaked in", answer("x"))
    assert not store.rename("user:2", mine, "mine now")
    assert not store.delete("user:2", mine)
    turns = store.turns("user:1", mine)
    assert turns is not None and [t.question for t in turns] == ["private question"]
    assert store.list("user:1")[0].title == "private question"


def test_a_title_is_one_line_cut_at_a_word() -> None:
    long = "How do I " + "really " * 30 + "read files?"
    title = title_of(long)
    assert len(title) <= TITLE_CHARS and title.endswith("really…")
    assert title_of("two\nlines") == "two lines"
