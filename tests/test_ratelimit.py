"""Token-bucket arithmetic, driven by a hand-set clock."""

from __future__ import annotations

import pytest

from llm.access.ratelimit import TokenBucket


class SetClock:
    """A clock the test moves by hand: waiting real minutes for refills is not practical, and the
    bucket is pure arithmetic on the times it is given, so nothing real is left out."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


@pytest.fixture
def bucket(clock: SetClock) -> TokenBucket:
    # 5 a minute: one token every 12 seconds.
    return TokenBucket(capacity=5, refill_per_minute=5, clock=clock)


def test_burst_up_to_capacity_then_refused(bucket: TokenBucket) -> None:
    state = bucket.new_state()
    decisions = [bucket.try_take(state) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after_s == pytest.approx(12.0)
    assert all(d.retry_after_s == 0 for d in decisions[:5])


def test_retry_after_is_exact(bucket: TokenBucket, clock: SetClock) -> None:
    state = bucket.new_state()
    for _ in range(5):
        bucket.try_take(state)
    clock.now += 11.5
    early = bucket.try_take(state)
    assert not early.allowed
    assert early.retry_after_s == pytest.approx(0.5)
    clock.now += early.retry_after_s
    on_time = bucket.try_take(state)
    assert on_time.allowed
    assert on_time.remaining == pytest.approx(0.0)


def test_refill_rate(bucket: TokenBucket, clock: SetClock) -> None:
    state = bucket.new_state()
    for _ in range(5):
        bucket.try_take(state)
    clock.now += 30.0  # 2.5 tokens back
    assert bucket.available(state) == pytest.approx(2.5)
    assert bucket.try_take(state).allowed
    assert bucket.try_take(state).allowed
    third = bucket.try_take(state)
    assert not third.allowed
    assert third.remaining == pytest.approx(0.5)
    assert third.retry_after_s == pytest.approx(6.0)


def test_never_above_capacity(bucket: TokenBucket, clock: SetClock) -> None:
    state = bucket.new_state()
    bucket.try_take(state)
    clock.now += 3600.0
    assert bucket.available(state) == 5.0
    assert [bucket.try_take(state).allowed for _ in range(6)] == [True] * 5 + [False]


def test_explicit_now_overrides_clock(bucket: TokenBucket) -> None:
    state = bucket.new_state(now=0.0)
    for _ in range(5):
        assert bucket.try_take(state, now=0.0).allowed
    assert not bucket.try_take(state, now=0.0).allowed
    assert bucket.try_take(state, now=12.0).allowed


def test_clock_stepping_back_neither_drains_nor_fills(bucket: TokenBucket, clock: SetClock) -> None:
    state = bucket.new_state()
    for _ in range(3):
        bucket.try_take(state)
    clock.now -= 100.0
    assert bucket.available(state) == 2.0
    assert bucket.try_take(state).remaining == 1.0


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity=0, refill_per_minute=5)
    with pytest.raises(ValueError):
        TokenBucket(capacity=5, refill_per_minute=0)
