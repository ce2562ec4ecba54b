"""Admin password check: constant-time comparison and a lockout after repeated wrong tries.

Wrong tries count per client address, not per browser session: a new tab or a reload must not
buy five fresh guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
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

    unlocked_for: str = ""


@dataclass
class Tries:
    """Wrong tries from one client address and when its lockout ends."""

    failures: int = 0
    locked_until: float = 0.0


class TryBook:
    """Tries per client address, shared by every session of the process."""

    def __init__(self) -> None:
        self._tries: dict[str, Tries] = {}
        self._lock = threading.Lock()

    def tries(self, client: str) -> Tries:
        with self._lock:
            return self._tries.setdefault(client, Tries())


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

    def wait_s(self, tries: Tries) -> float:
        """Seconds before another try is accepted; 0 when one may be made now."""
        return max(0.0, tries.locked_until - self._clock())

    def attempt(self, state: AuthState, tries: Tries, given: str) -> Attempt:
        """Try a password for this session, counting against its client's tries; while locked
        out the password is not even looked at."""
        if self._password is None:
            return Attempt("not_configured")
        wait = self.wait_s(tries)
        if wait > 0:
            return Attempt("locked", wait)
        if not given:
            return Attempt("empty")
        if hmac.compare_digest(given.encode(), self._password.encode()):
            tries.failures, tries.locked_until = 0, 0.0
            state.unlocked_for = _fingerprint(self._password)
            return Attempt("unlocked")
        tries.failures += 1
        # From the fifth wrong try on, every wrong try costs a full wait before the next.
        if tries.failures >= self.max_failures:
            tries.locked_until = self._clock() + self.lockout_s
            return Attempt("locked", self.lockout_s)
        return Attempt("wrong")

    def tries_left(self, tries: Tries) -> int:
        """Wrong tries still possible before the wait starts."""
        return max(0, self.max_failures - tries.failures)

    @staticmethod
    def logout(state: AuthState) -> None:
        state.unlocked_for = ""


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()
