"""Admin password check: constant-time comparison and a lockout after repeated wrong tries."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MAX_FAILURES = 5
LOCKOUT_S = 30.0

Outcome = Literal["unlocked", "wrong", "locked", "empty", "not_configured"]


@dataclass
class AuthState:
    """One browser session's login state; small and plain so it can live in st.session_state.

    `unlocked_for` is a fingerprint of the password that unlocked the session, so changing or
    removing the password locks every session out again.
    """

    failures: int = 0
    locked_until: float = 0.0
    unlocked_for: str = ""


@dataclass(frozen=True)
class Attempt:
    """What a login attempt did; `wait_s` is the time left before the next try is accepted."""

    outcome: Outcome
    wait_s: float = 0.0


class AdminGate:
    """Checks the admin password against the configured one; None means no password is set."""

    def __init__(
        self,
        password: str | None,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
    ) -> None:
        self._password = password or None
        self._clock = clock
        self.max_failures = max_failures
        self.lockout_s = lockout_s

    @property
    def configured(self) -> bool:
        return self._password is not None

    def is_unlocked(self, state: AuthState) -> bool:
        return self._password is not None and hmac.compare_digest(
            state.unlocked_for, _fingerprint(self._password)
        )

    def wait_s(self, state: AuthState) -> float:
        """Seconds before another try is accepted; 0 when one may be made now."""
        return max(0.0, state.locked_until - self._clock())

    def attempt(self, state: AuthState, given: str) -> Attempt:
        """Try a password; while locked out the password is not even looked at."""
        if self._password is None:
            return Attempt("not_configured")
        wait = self.wait_s(state)
        if wait > 0:
            return Attempt("locked", wait)
        if not given:
            return Attempt("empty")
        if hmac.compare_digest(given.encode(), self._password.encode()):
            state.failures, state.locked_until = 0, 0.0
            state.unlocked_for = _fingerprint(self._password)
            return Attempt("unlocked")
        state.failures += 1
        # From the fifth wrong try on, every wrong try costs a full wait before the next.
        if state.failures >= self.max_failures:
            state.locked_until = self._clock() + self.lockout_s
            return Attempt("locked", self.lockout_s)
        return Attempt("wrong")

    def tries_left(self, state: AuthState) -> int:
        """Wrong tries still possible before the wait starts."""
        return max(0, self.max_failures - state.failures)

    @staticmethod
    def logout(state: AuthState) -> None:
        state.unlocked_for = ""


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
