"""Token-bucket rate limiting: the arithmetic, and limits per session, per client and app-wide."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
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
        retry_after = 0.0 if allowed else self.wait_for(tokens)
        return Decision(allowed=allowed, retry_after_s=retry_after, remaining=tokens)

    def wait_for(self, tokens: float) -> float:
        """Seconds until a bucket holding `tokens` holds one whole token."""
        return max(0.0, 1.0 - tokens) * 60.0 / self.refill_per_minute

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now


@dataclass(frozen=True)
class Limit:
    """One bucket a question must pass, with its state and the words that name it to the user."""

    name: str
    bucket: TokenBucket
    state: BucketState


@dataclass(frozen=True)
class Refusal:
    """The limit that refused a question and how long until it would pass."""

    limit: Limit
    wait_s: float


class SharedBuckets:
    """Bucket states by key (a client address, or the whole app), seen by every session of the
    process; a browser's reload or new tab starts a new session but finds the same state here.

    Tokens are taken from every limit or from none, under one lock: a question refused by the
    app-wide limit must not use up the client's own allowance.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self._states: dict[str, BucketState] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def state(self, key: str, bucket: TokenBucket) -> BucketState:
        with self._lock:
            if key not in self._states and len(self._states) >= self._max_keys:
                self._forget_full(bucket)
            return self._states.setdefault(key, bucket.new_state())

    def take(self, limits: Sequence[Limit]) -> Refusal | None:
        """One token from each limit, or None taken and the refusal with the longest wait."""
        with self._lock:
            refusals = [
                Refusal(limit, limit.bucket.wait_for(tokens))
                for limit in limits
                if (tokens := limit.bucket.available(limit.state)) < 1.0 - _EPSILON
            ]
            if refusals:
                return max(refusals, key=lambda refusal: refusal.wait_s)
            for limit in limits:
                limit.bucket.try_take(limit.state)
            return None

    def _forget_full(self, bucket: TokenBucket) -> None:
        # A full bucket holds nothing worth keeping: forgetting it is the same as a new one.
        for key, state in list(self._states.items()):
            if bucket.available(state) >= bucket.capacity:
                del self._states[key]
