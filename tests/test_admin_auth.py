"""Admin password gate: constant-time compare, lockout arithmetic on a fake clock, no password."""

from __future__ import annotations

import hmac

import pytest

from llm.access.admin_auth import LOCKOUT_S, MAX_FAILURES, AdminGate, AuthState, Tries, TryBook


class FakeClock:
    """Seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_right_password_unlocks_and_logout_locks() -> None:
    gate, state = AdminGate("s3cret"), AuthState()
    tries = Tries()
    assert not gate.is_unlocked(state)
    assert gate.attempt(state, tries, "s3cret").outcome == "unlocked"
    assert gate.is_unlocked(state)
    gate.logout(state)
    assert not gate.is_unlocked(state)


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    gate, state = AdminGate("s3cret"), AuthState()
    tries = Tries()
    assert gate.attempt(state, tries, "guess").outcome == "wrong"
    assert (b"guess", b"s3cret") in calls
    assert gate.attempt(state, tries, "s3cret").outcome == "unlocked"
    assert (b"s3cret", b"s3cret") in calls


def test_five_wrong_tries_lock_for_thirty_seconds() -> None:
    clock = FakeClock()
    gate, state = AdminGate("s3cret", clock=clock), AuthState()
    tries = Tries()
    outcomes = [gate.attempt(state, tries, f"wrong{n}").outcome for n in range(MAX_FAILURES)]
    assert outcomes == ["wrong"] * (MAX_FAILURES - 1) + ["locked"]
    assert gate.wait_s(tries) == LOCKOUT_S == 30.0

    clock.now += 29.5
    # Even the right password is refused while locked; the wait is what is left of 30 s.
    locked = gate.attempt(state, tries, "s3cret")
    assert (locked.outcome, locked.wait_s) == ("locked", 0.5)
    assert not gate.is_unlocked(state)

    clock.now += 0.5
    assert gate.wait_s(tries) == 0
    # One more try after the wait; a wrong one starts another full wait.
    again = gate.attempt(state, tries, "still wrong")
    assert (again.outcome, again.wait_s) == ("locked", 30.0)
    clock.now += 30
    assert gate.attempt(state, tries, "s3cret").outcome == "unlocked"
    assert (tries.failures, gate.tries_left(tries)) == (0, MAX_FAILURES)


def test_tries_left_counts_down_and_empty_input_costs_nothing() -> None:
    gate, state = AdminGate("s3cret", clock=FakeClock()), AuthState()
    tries = Tries()
    assert gate.attempt(state, tries, "").outcome == "empty"
    assert gate.tries_left(tries) == 5
    gate.attempt(state, tries, "nope")
    gate.attempt(state, tries, "nope")
    assert gate.tries_left(tries) == 3


@pytest.mark.parametrize("configured", [None, ""])
def test_no_password_configured_never_unlocks(configured: str | None) -> None:
    gate, state = AdminGate(configured), AuthState()
    tries = Tries()
    assert not gate.configured
    for given in ["", "admin", "None"]:
        assert gate.attempt(state, tries, given).outcome == "not_configured"
    assert not gate.is_unlocked(state)
    # A state unlocked under some password does not carry over to a gate without one.
    AdminGate("old").attempt(state, tries, "old")
    assert not gate.is_unlocked(state)


def test_changed_password_locks_open_sessions() -> None:
    state, tries = AuthState(), Tries()
    AdminGate("first").attempt(state, tries, "first")
    assert AdminGate("first").is_unlocked(state)
    assert not AdminGate("second").is_unlocked(state)


def test_tries_are_kept_per_client_and_shared_by_its_sessions() -> None:
    book = TryBook()
    gate = AdminGate("s3cret", clock=FakeClock())
    first_tab, second_tab = AuthState(), AuthState()
    for n in range(MAX_FAILURES):
        gate.attempt(first_tab, book.tries("10.0.0.1"), f"wrong{n}")
    # A new tab from the same address is still locked out; another address is not.
    assert gate.attempt(second_tab, book.tries("10.0.0.1"), "s3cret").outcome == "locked"
    assert gate.attempt(AuthState(), book.tries("10.0.0.2"), "s3cret").outcome == "unlocked"
    assert not gate.is_unlocked(second_tab)
