"""Collections on a real database (SQLite and PostgreSQL): who reads what, and which documents
a pick of collections lets a search return."""

from __future__ import annotations

import pytest

from llm.access.accounts import Accounts
from llm.access.collections import EVERYONE, CollectionError, Collections
from llm.records.database import open_database
from tests.test_accounts import FAST

PASSWORD = "a long enough password"


@pytest.fixture
def people(database_url: str) -> tuple[Accounts, Collections]:
    engine = open_database(database_url)
    return Accounts(engine, hasher=FAST), Collections(engine)


def test_each_reads_their_own_what_is_shared_with_them_and_everyones(
    people: tuple[Accounts, Collections],
) -> None:
    accounts, collections = people
    ada, bob, cy = (accounts.create(n, PASSWORD) for n in ("ada", "bob", "cy"))
    boss = accounts.create("boss", PASSWORD, is_admin=True)
    ada_own = collections.private_of(ada)
    assert collections.private_of(ada) == ada_own, "made once"
    team = collections.create(ada, "  Team\n notes ", "readers", [bob.id])
    public = collections.create(bob, "Handbook", "everyone")
    assert team.name == "Team notes" and team.readers == (bob.id,)

    def names(user) -> set[str]:
        return {c.name for c in collections.readable(user)}

    assert names(ada) == {"ada's documents", "Team notes", "Handbook", "Everyone's documents"}
    assert names(bob) == {"Team notes", "Handbook", "Everyone's documents"}
    assert names(cy) == {"Handbook", "Everyone's documents"}
    assert names(boss) == names(ada) | names(bob)
    assert [c.id for c in collections.writable(bob)][1:] == [public.id]
    assert EVERYONE not in {c.id for c in collections.writable(bob)}
    assert EVERYONE in {c.id for c in collections.writable(boss)}

    collections.share(team.id, "private")
    assert "Team notes" not in names(bob)
    with pytest.raises(CollectionError):
        collections.create(ada, "   ", "private")
    with pytest.raises(CollectionError):
        collections.delete(EVERYONE)


def test_a_scope_holds_the_picked_collections_documents_and_everyones_the_rest(
    people: tuple[Accounts, Collections],
) -> None:
    accounts, collections = people
    ada, bob = accounts.create("ada", PASSWORD), accounts.create("bob", PASSWORD)
    mine, team = collections.private_of(ada), collections.create(ada, "Team", "readers", [bob.id])
    collections.add_documents(mine.id, ["d-private", "d-both"])
    collections.add_documents(team.id, ["d-team", "d-both", "d-team"])
    indexed = {"d-private", "d-both", "d-team", "d-old"}  # d-old predates collections

    def scope_of(user) -> frozenset[str]:
        return collections.scope([c.id for c in collections.readable(user)], indexed)

    assert scope_of(ada) == indexed
    assert scope_of(bob) == {"d-both", "d-team", "d-old"}
    assert collections.scope([team.id], indexed) == {"d-both", "d-team"}
    assert collections.scope([EVERYONE], indexed) == {"d-old"}
    # Not yet indexed: in the collection, not in a scope.
    collections.add_documents(mine.id, ["d-waiting"])
    assert "d-waiting" not in scope_of(ada)

    assert collections.only_here(mine.id) == {"d-private", "d-waiting"}
    collections.remove_document(team.id, "d-both")
    assert collections.homes("d-both") == {mine.id}
    collections.forget_document("d-team")
    assert collections.homes("d-team") == set()


def test_a_removed_account_leaves_its_private_documents_to_the_admin_alone(
    people: tuple[Accounts, Collections],
) -> None:
    accounts, collections = people
    ada, bob = accounts.create("ada", PASSWORD), accounts.create("bob", PASSWORD)
    boss = accounts.create("boss", PASSWORD, is_admin=True)
    mine = collections.private_of(ada)
    collections.add_documents(mine.id, ["d-private"])
    accounts.remove("ada")
    kept = collections.get(mine.id)
    assert kept is not None and kept.owner_id is None
    assert collections.homes("d-private") == {mine.id}, "never falls to Everyone's documents"
    indexed = {"d-private"}
    assert collections.scope([c.id for c in collections.readable(bob)], indexed) == frozenset()
    assert collections.scope([c.id for c in collections.readable(boss)], indexed) == indexed
