"""Token-bucket rate limiting as pure arithmetic; the caller keeps one bucket state per session."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Refill arithmetic in floats can land a hair below a whole token exactly when
# retry_after_s says it should be there; this keeps that promise.
_EPSILON = 1e-9


@dataclass
class BucketState:
    """Mutable per-session state (plain floats, so it can live in st.session_state)."""

    tokens: float
    updated_at: float


@dataclass(frozen=True)
class Decision:
    """Outcome of one request: allowed or not, seconds until it would be, tokens left after it."""

    allowed: bool
    retry_after_s: float
    remaining: float


class TokenBucket:
    """Bursts of up to `capacity` requests, refilled at `refill_per_minute` tokens a minute."""

    def __init__(
        self,
        capacity: float,
        refill_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if refill_per_minute <= 0:
            raise ValueError("refill_per_minute must be positive")
        self.capacity = float(capacity)
        self.refill_per_minute = float(refill_per_minute)
        self._clock = clock

    def new_state(self, now: float | None = None) -> BucketState:
        """A full bucket: a new session may burst straight away."""
        return BucketState(tokens=self.capacity, updated_at=self._now(now))

    def available(self, state: BucketState, now: float | None = None) -> float:
        """Tokens in the bucket at `now`, without taking any."""
        # A clock that steps backwards must not drain the bucket.
        elapsed = max(0.0, self._now(now) - state.updated_at)
        return min(self.capacity, state.tokens + elapsed * self.refill_per_minute / 60.0)

    def try_take(self, state: BucketState, now: float | None = None) -> Decision:
        """Take one token if there is one; updates `state` in place either way."""
        now = self._now(now)
        tokens = self.available(state, now)
        allowed = tokens >= 1.0 - _EPSILON
        if allowed:
            tokens = max(0.0, tokens - 1.0)
        state.tokens = tokens
        state.updated_at = max(now, state.updated_at)
        retry_after = 0.0 if allowed else (1.0 - tokens) * 60.0 / self.refill_per_minute
        return Decision(allowed=allowed, retry_after_s=retry_after, remaining=tokens)

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now
