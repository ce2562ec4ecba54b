"""Accounts on a real database (a SQLite file and a real PostgreSQL server): hashed passwords,
sign-ins that a token brings back, the lockout, and nothing secret kept in the clear."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from llm.access.accounts import AccountError, Accounts
from llm.records.database import head_revision, open_database

PASSWORD = "a long enough password"
# The lowest Argon2 cost: these tests hash dozens of times; the app keeps the library's default.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def accounts_on(url: str, clock: Clock | None = None, **kwargs: float) -> Accounts:
    return Accounts(open_database(url), clock=clock or Clock(), hasher=FAST, **kwargs)


def test_a_user_signs_in_and_the_token_brings_them_back_until_they_sign_out(
    database_url: str,
) -> None:
    accounts = accounts_on(database_url)
    assert not accounts.any_users()
    made = accounts.create("  Ada ", PASSWORD, is_admin=True)
    assert (made.name, made.is_admin) == ("ada", True)
    assert accounts.any_users()

    attempt = accounts.sign_in("ADA", PASSWORD)
    assert attempt.outcome == "signed_in" and attempt.token
    assert accounts.user_for(attempt.token) == made
    # Another device signs in with a token of its own; signing out one leaves the other.
    other = accounts.sign_in("ada", PASSWORD).token
    accounts.sign_out(attempt.token)
    assert accounts.user_for(attempt.token) is None
    assert accounts.user_for(other) == made
    assert accounts.user_for("not-a-token") is None
    assert accounts.user_for(None) is None


def test_the_database_holds_no_password_and_no_token_in_the_clear(database_url: str) -> None:
    accounts = accounts_on(database_url)
    accounts.create("ada", PASSWORD)
    token = accounts.sign_in("ada", PASSWORD).token
    assert token
    engine = open_database(database_url)
    with engine.connect() as db:
        stored = " ".join(
            str(value)
            for table in ("users", "login_sessions")
            for row in db.execute(sa.text(f"SELECT * FROM {table}"))
            for value in row
        )
    assert PASSWORD not in stored and token not in stored
    assert "$argon2id$" in stored


def test_five_wrong_passwords_lock_the_name_and_a_wrong_name_reads_the_same(
    database_url: str,
) -> None:
    clock = Clock()
    accounts = accounts_on(database_url, clock, lockout_s=30.0)
    accounts.create("ada", PASSWORD)
    for left in (4, 3, 2, 1):
        attempt = accounts.sign_in("ada", "wrong password")
        assert (attempt.outcome, attempt.tries_left) == ("wrong", left)
    assert accounts.sign_in("ada", "wrong password").outcome == "locked"
    # While locked, even the right password is not looked at.
    locked = accounts.sign_in("ada", PASSWORD)
    assert (locked.outcome, locked.wait_s) == ("locked", 30.0)
    clock.now += 31
    assert accounts.sign_in("ada", PASSWORD).outcome == "signed_in"
    # The count starts again after a sign-in.
    assert accounts.sign_in("ada", "wrong password").tries_left == 4

    # A name nobody has answers exactly like a wrong password, lockout included.
    for left in (4, 3, 2, 1):
        attempt = accounts.sign_in("nobody", PASSWORD)
        assert (attempt.outcome, attempt.tries_left) == ("wrong", left)
    assert accounts.sign_in("nobody", PASSWORD).outcome == "locked"
    assert accounts.sign_in("", PASSWORD).outcome == "empty"


def test_the_lockout_holds_for_every_process_on_the_database(database_url: str) -> None:
    # Two Accounts on one database stand for two app replicas.
    first, second = accounts_on(database_url), accounts_on(database_url)
    first.create("ada", PASSWORD)
    for _ in range(3):
        first.sign_in("ada", "wrong password")
    assert second.sign_in("ada", "wrong password").tries_left == 1
    assert second.sign_in("ada", "wrong password").outcome == "locked"
    assert first.sign_in("ada", PASSWORD).outcome == "locked"


def test_a_sign_in_ends_when_it_expires_or_the_password_or_account_goes(
    database_url: str,
) -> None:
    clock = Clock()
    accounts = Accounts(open_database(database_url), session_days=1, clock=clock, hasher=FAST)
    accounts.create("ada", PASSWORD)
    token = accounts.sign_in("ada", PASSWORD).token
    clock.now += 86400 + 1
    assert accounts.user_for(token) is None

    token = accounts.sign_in("ada", PASSWORD).token
    accounts.set_password("ada", "another long password")
    assert accounts.user_for(token) is None
    assert accounts.sign_in("ada", PASSWORD).outcome == "wrong"

    token = accounts.sign_in("ada", "another long password").token
    assert accounts.remove("ada")
    assert accounts.user_for(token) is None
    assert not accounts.remove("ada")
    assert accounts.sign_in("ada", "another long password").outcome == "wrong"


def test_unfit_names_and_passwords_are_refused_with_the_reason(database_url: str) -> None:
    accounts = accounts_on(database_url)
    accounts.create("ada", PASSWORD)
    for name, password, reason in [
        ("Ada", PASSWORD, "taken"),
        ("bob", "short", "at least 8"),
        ("bob smith", PASSWORD, "letters, digits"),
        ("", PASSWORD, "letters, digits"),
    ]:
        try:
            accounts.create(name, password)
        except AccountError as refused:
            assert reason in str(refused)
        else:
            raise AssertionError(f"{name!r} / {password!r} was accepted")
    assert [user.name for user in accounts.users()] == ["ada"]


def test_opening_the_database_again_migrates_nothing_twice(database_url: str) -> None:
    open_database(database_url)
    engine = open_database(database_url)
    with engine.connect() as db:
        versions = db.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        seeded = db.execute(sa.text("SELECT id FROM collections")).scalars().all()
    assert versions == [head_revision()]
    assert seeded == ["everyone"], "the seeded collection must be made once"


def test_a_single_sign_on_identity_gets_one_account_named_after_its_address(
    database_url: str,
) -> None:
    accounts = accounts_on(database_url)
    first = accounts.sign_in_verified(" Grace.Hopper+docs@Example.org ")
    again = accounts.sign_in_verified("grace.hopper+docs@example.org")
    assert first.user == again.user
    assert first.user is not None and first.user.name == "grace.hopper+docs@example.org"
    assert first.token != again.token
    assert accounts.user_for(first.token) == accounts.user_for(again.token) == first.user
    assert [user.name for user in accounts.users()] == ["grace.hopper+docs@example.org"]
    # An account an admin made under that address is the one the sign-on opens.
    made = accounts.create("linus@example.org", "a long password")
    assert accounts.sign_in_verified("linus@example.org").user == made
    with pytest.raises(AccountError, match="1 to 64"):
        accounts.sign_in_verified("x" * 70 + "@example.org")
