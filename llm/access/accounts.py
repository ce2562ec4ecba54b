"""User accounts: Argon2-hashed passwords, sign-ins that outlive a reload, and a lockout after
repeated wrong passwords, all kept in the database so every replica sees the same state."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llm.records.database import update_or_insert
from llm.records.tables import login_sessions, login_tries, users

MAX_FAILURES = 5
LOCKOUT_S = 30.0
MIN_PASSWORD_CHARS = 8
# An e-mail address fits too: single sign-on names accounts after the address it vouches for.
_NAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")

Outcome = Literal["signed_in", "wrong", "locked", "empty"]


class AccountError(ValueError):
    """An account cannot be made or changed as asked; the message says why, for the user."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool

    @property
    def owner(self) -> str:
        """The key this user's answers and conversations are kept under."""
        return f"user:{self.id}"


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt did: the session token on success, else the wait before the
    next try is taken (locked) or the tries left before the wait starts (wrong)."""

    outcome: Outcome
    token: str | None = None
    user: User | None = None
    wait_s: float = 0.0
    tries_left: int = 0


class Accounts:
    """The accounts of one database."""

    def __init__(
        self,
        engine: Engine,
        session_days: int = 30,
        clock: Callable[[], float] = time.time,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._engine = engine
        self._session_s = session_days * 86400.0
        self._clock = clock
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._hasher = hasher or PasswordHasher()
        # Checked when the name is unknown, so a wrong name takes as long as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    def any_users(self) -> bool:
        with self._engine.connect() as db:
            return db.execute(sa.select(users.c.id).limit(1)).first() is not None

    def users(self) -> list[User]:
        with self._engine.connect() as db:
            rows = db.execute(sa.select(users).order_by(users.c.name)).all()
        return [_user(row) for row in rows]

    def create(self, name: str, password: str, is_admin: bool = False) -> User:
        """A new account; raises AccountError when the name is taken or either is unfit."""
        name = normalise_name(name)
        if problem := name_problem(name) or password_problem(password):
            raise AccountError(problem)
        row = {
            "name": name,
            "password_hash": self._hasher.hash(password),
            "is_admin": is_admin,
            "created_s": self._clock(),
        }
        try:
            with self._engine.begin() as db:
                user_id = db.execute(sa.insert(users).values(row)).inserted_primary_key[0]
        except IntegrityError:
            raise AccountError(f"The name “{name}” is taken.") from None
        return User(int(user_id), name, is_admin)

    def remove(self, name: str) -> bool:
        """Delete an account; its sign-ins end with it."""
        with self._engine.begin() as db:
            user_id = _user_id(db, normalise_name(name))
            if user_id is None:
                return False
            db.execute(sa.delete(login_sessions).where(login_sessions.c.user_id == user_id))
            db.execute(sa.delete(users).where(users.c.id == user_id))
        return True

    def set_password(self, name: str, password: str) -> None:
        """A new password; every sign-in made with the old one ends."""
        if problem := password_problem(password):
            raise AccountError(problem)
        with self._engine.begin() as db:
            user_id = _user_id(db, normalise_name(name))
            if user_id is None:
                raise AccountError(f"There is no account “{name}”.")
            hashed = self._hasher.hash(password)
            db.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=hashed))
            db.execute(sa.delete(login_sessions).where(login_sessions.c.user_id == user_id))

    def sign_in(self, name: str, password: str) -> SignIn:
        """Check a name and password. Wrong tries count per name, known or not (so a wrong
        name reads like a wrong password), and from the fifth on each costs a full wait."""
        name = normalise_name(name)
        if not name or not password:
            return SignIn("empty")
        now = self._clock()
        wait = self._wait_s(name, now)
        if wait > 0:
            return SignIn("locked", wait_s=wait)
        with self._engine.connect() as db:
            row = db.execute(sa.select(users).where(users.c.name == name)).first()
        hashed = row.password_hash if row is not None else self._decoy
        if not self._verify(hashed, password) or row is None:
            failures = self._count_failure(name, now)
            if failures >= self.max_failures:
                return SignIn("locked", wait_s=self.lockout_s)
            return SignIn("wrong", tries_left=self.max_failures - failures)
        user = _user(row)
        with self._engine.begin() as db:
            db.execute(sa.delete(login_tries).where(login_tries.c.name == name))
            token = self._start_session(db, user, now)
            if self._hasher.check_needs_rehash(row.password_hash):
                rehashed = self._hasher.hash(password)
                db.execute(
                    sa.update(users).where(users.c.id == user.id).values(password_hash=rehashed)
                )
        return SignIn("signed_in", token=token, user=user)

    def sign_in_verified(self, email: str) -> SignIn:
        """A sign-in for an identity the deployment's identity provider vouched for (single
        sign-on): the account named after its e-mail address, made on first use with a
        password nobody knows (an admin may set one), then a session like a password's."""
        name = normalise_name(email)
        if problem := name_problem(name):
            raise AccountError(problem)
        # Refused only when the account exists: made by an earlier sign-on, or by an admin.
        with contextlib.suppress(AccountError):
            self.create(name, secrets.token_urlsafe(32))
        with self._engine.begin() as db:
            user = _user(db.execute(sa.select(users).where(users.c.name == name)).one())
            token = self._start_session(db, user, self._clock())
        return SignIn("signed_in", token=token, user=user)

    def user_for(self, token: str | None) -> User | None:
        """The user a session token signs in, while it is valid."""
        if not token:
            return None
        query = (
            sa.select(users)
            .join(login_sessions, login_sessions.c.user_id == users.c.id)
            .where(login_sessions.c.token_hash == _digest(token))
            .where(login_sessions.c.expires_s > self._clock())
        )
        with self._engine.connect() as db:
            row = db.execute(query).first()
        return _user(row) if row else None

    def sign_out(self, token: str | None) -> None:
        """End the sign-in of `token` (on every device that holds it)."""
        if token:
            with self._engine.begin() as db:
                db.execute(
                    sa.delete(login_sessions).where(login_sessions.c.token_hash == _digest(token))
                )

    def _start_session(self, db: sa.Connection, user: User, now: float) -> str:
        token = secrets.token_urlsafe(32)
        db.execute(
            sa.insert(login_sessions).values(
                token_hash=_digest(token),
                user_id=user.id,
                created_s=now,
                expires_s=now + self._session_s,
            )
        )
        return token

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, InvalidHashError):
            return False

    def _wait_s(self, name: str, now: float) -> float:
        with self._engine.connect() as db:
            until = db.execute(
                sa.select(login_tries.c.locked_until_s).where(login_tries.c.name == name)
            ).scalar()
        return max(0.0, (until or 0.0) - now)

    def _count_failure(self, name: str, now: float) -> int:
        """One more wrong try for `name`; starts the wait once there are enough of them."""
        with self._engine.begin() as db:
            update_or_insert(
                db,
                login_tries,
                {"name": name},
                {"failures": login_tries.c.failures + 1},
                {"failures": 1, "locked_until_s": 0},
            )
            failures = db.execute(
                sa.select(login_tries.c.failures).where(login_tries.c.name == name)
            ).scalar_one()
            if failures >= self.max_failures:
                db.execute(
                    sa.update(login_tries)
                    .where(login_tries.c.name == name)
                    .values(locked_until_s=now + self.lockout_s)
                )
        return int(failures)


def normalise_name(name: str) -> str:
    return name.strip().lower()


def name_problem(name: str) -> str | None:
    if not _NAME.fullmatch(name):
        return (
            "A name is 1 to 64 letters, digits, dots, dashes, underscores, @ or +, starting "
            "with a letter or digit."
        )
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"A password needs at least {MIN_PASSWORD_CHARS} characters."
    return None


def _user(row: sa.Row) -> User:
    return User(int(row.id), str(row.name), bool(row.is_admin))


def _user_id(db: sa.Connection, name: str) -> int | None:
    return db.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()


def _digest(token: str) -> str:
    # Only a digest is stored: whoever reads the database cannot sign in with what it holds.
    return hashlib.sha256(token.encode()).hexdigest()
