"""Spend ledger on a real database (a SQLite file and a real PostgreSQL server): persistence,
concurrent processes (replicas, on the server), caps and their resets, an old ledger file
copied in once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import sqlalchemy as sa

from llm.access.ledger import LEGACY_FILE, Caps, SpendLedger, cost_of, period_bounds
from llm.records.database import open_database

WIDE_CAPS = Caps(daily=1000.0, weekly=1000.0, monthly=1000.0)
PER_PROCESS = 200


class SetClock:
    """A clock the test sets by hand: period boundaries cannot be waited for in real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fixed_wednesday_noon() -> datetime:
    # Module level so spawned processes can unpickle it.
    return datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def record_many(url: str, start: Barrier, provider: str) -> None:
    ledger = SpendLedger(open_database(url), WIDE_CAPS, clock=fixed_wednesday_noon)
    start.wait(timeout=60)
    for _ in range(PER_PROCESS):
        # 0.5 dollars, exact in binary floating point, so the total can be compared exactly.
        ledger.record(provider, "gpt-4o-mini", 250_000, 125_000, (1.0, 2.0))


def dollars(ledger: SpendLedger, amount: float) -> None:
    """Record a paid call costing `amount` (price 1 dollar per million input tokens)."""
    ledger.record("openai", "gpt-4o-mini", round(amount * 1_000_000), 0, (1.0, 0.0))


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


def calls(url: str) -> list[tuple]:
    with open_database(url).connect() as db:
        return [
            tuple(row)
            for row in db.execute(
                sa.text(
                    "SELECT at_utc, provider, model, input_tokens, output_tokens, cost_usd,"
                    " estimated FROM ledger_calls ORDER BY id"
                )
            )
        ]


def test_cost_of_prices_per_million() -> None:
    assert cost_of(1000, 500, (0.15, 0.60)) == pytest.approx(0.00045)
    assert cost_of(0, 0, (2.5, 10.0)) == 0.0


def test_record_stores_the_call(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 14, 30, tzinfo=UTC))
    ledger = SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock)
    cost = ledger.record("openai", "gpt-4o-mini", 1000, 500, (0.15, 0.60), estimated=True)
    assert cost == pytest.approx(0.00045)
    assert calls(db_url) == [
        ("2025-03-05T14:30:00.000000Z", "openai", "gpt-4o-mini", 1000, 500, cost, True)
    ]


def test_local_and_extractive_cost_nothing(db_url: str) -> None:
    ledger = SpendLedger(open_database(db_url), WIDE_CAPS)
    assert ledger.record("local", "SmolLM2-135M-Instruct", 900, 300, (2.5, 10.0)) == 0.0
    assert ledger.record("extractive", "", 0, 0) == 0.0
    assert ledger.spent("day") == 0.0
    with pytest.raises(ValueError):
        ledger.record("openai", "gpt-4o", -1, 0, (2.5, 10.0))


def test_survives_reopen(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 9, 0, tzinfo=UTC))
    dollars(SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock), 1.25)
    reopened = SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock)
    dollars(reopened, 0.5)
    assert SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock).spent("day") == pytest.approx(
        1.75
    )


def test_two_processes_recording_at_once_add_up_exactly(db_url: str) -> None:
    parent = SpendLedger(open_database(db_url), WIDE_CAPS, clock=fixed_wednesday_noon)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=record_many, args=(db_url, start, name))
        for name in ("openai-a", "openai-b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert parent.spent("day") == 2 * PER_PROCESS * 0.5
    counts: dict[str, int] = {}
    for row in calls(db_url):
        counts[row[1]] = counts.get(row[1], 0) + 1
    assert counts == {"openai-a": PER_PROCESS, "openai-b": PER_PROCESS}


def test_cap_trips_at_the_cap_not_before(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 12, 0, tzinfo=UTC))  # a Wednesday
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=1.0, weekly=10.0, monthly=100.0), clock=clock
    )
    dollars(ledger, 0.9999)
    below = ledger.check()
    assert not below.exceeded
    assert below.which is None
    assert below.spent == pytest.approx(0.9999)
    assert below.limit == 1.0  # the day has the least headroom
    dollars(ledger, 0.0001)
    at_cap = ledger.check()
    assert at_cap.exceeded
    assert at_cap.which == "day"
    assert at_cap.limit == 1.0
    assert at_cap.spent == pytest.approx(1.0)
    assert at_cap.resets_at == datetime(2025, 3, 6, tzinfo=UTC)
    dollars(ledger, 0.5)
    assert ledger.check().which == "day"


def test_weekly_and_monthly_caps_trip_with_the_days_spread_out(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 3, 8, 0, tzinfo=UTC))  # Monday
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=5.0, weekly=6.0, monthly=8.0), clock=clock
    )
    for _ in range(3):  # Monday, Tuesday, Wednesday
        dollars(ledger, 2.0)
        clock.now += timedelta(days=1)
    week = ledger.check()
    assert (week.exceeded, week.which, week.spent) == (True, "week", pytest.approx(6.0))
    assert week.resets_at == datetime(2025, 3, 10, tzinfo=UTC)
    clock.now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)  # next Monday
    dollars(ledger, 1.99)
    assert not ledger.check().exceeded
    dollars(ledger, 0.01)
    month = ledger.check()
    assert (month.exceeded, month.which, month.spent) == (True, "month", pytest.approx(8.0))
    assert month.resets_at == datetime(2025, 4, 1, tzinfo=UTC)


def test_when_several_caps_trip_the_latest_reset_is_named(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 12, 0, tzinfo=UTC))
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=1.0, weekly=100.0, monthly=1.0), clock=clock
    )
    dollars(ledger, 1.0)
    status = ledger.check()
    assert status.which == "month"
    assert status.resets_at == datetime(2025, 4, 1, tzinfo=UTC)


def test_day_cap_resets_at_midnight_utc(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 23, 59, 59, 999_999, tzinfo=UTC))
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=1.0, weekly=10.0, monthly=100.0), clock=clock
    )
    dollars(ledger, 1.0)
    assert ledger.check().which == "day"
    clock.now = datetime(2025, 3, 6, tzinfo=UTC)
    assert not ledger.check().exceeded
    assert (ledger.spent("day"), ledger.spent("week"), ledger.spent("month")) == (0.0, 1.0, 1.0)


def test_week_cap_resets_on_monday(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 9, 23, 59, tzinfo=UTC))  # Sunday
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=100.0, weekly=2.0, monthly=100.0), clock=clock
    )
    dollars(ledger, 2.0)
    status = ledger.check()
    assert (status.which, status.resets_at) == ("week", datetime(2025, 3, 10, tzinfo=UTC))
    clock.now = datetime(2025, 3, 10, tzinfo=UTC)
    assert not ledger.check().exceeded
    assert (ledger.spent("week"), ledger.spent("month")) == (0.0, 2.0)


def test_month_cap_resets_on_the_first_while_the_week_carries_on(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 31, 23, 0, tzinfo=UTC))  # a Monday
    ledger = SpendLedger(
        open_database(db_url), Caps(daily=100.0, weekly=100.0, monthly=5.0), clock=clock
    )
    dollars(ledger, 5.0)
    status = ledger.check()
    assert (status.which, status.resets_at) == ("month", datetime(2025, 4, 1, tzinfo=UTC))
    clock.now = datetime(2025, 4, 1, tzinfo=UTC)
    assert not ledger.check().exceeded
    assert (ledger.spent("month"), ledger.spent("week")) == (0.0, 5.0)


def test_december_rolls_into_the_next_year() -> None:
    now = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
    assert period_bounds("month", now) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_periods_are_utc_whatever_the_clock_zone(db_url: str) -> None:
    # 01:30 on the 6th in UTC+2 is still the 5th in UTC.
    clock = SetClock(datetime(2025, 3, 6, 1, 30, tzinfo=timezone(timedelta(hours=2))))
    ledger = SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock)
    dollars(ledger, 1.0)
    clock.now = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
    assert ledger.spent("day") == 1.0
    with pytest.raises(ValueError):
        SpendLedger(open_database(db_url), WIDE_CAPS, clock=lambda: datetime(2025, 3, 5)).spent(
            "day"
        )


def test_set_cap_persists_and_overrides_the_default(db_url: str) -> None:
    clock = SetClock(datetime(2025, 3, 5, 12, 0, tzinfo=UTC))
    defaults = Caps(daily=5.0, weekly=20.0, monthly=50.0)
    ledger = SpendLedger(open_database(db_url), defaults, clock=clock)
    dollars(ledger, 6.0)
    assert ledger.check().which == "day"
    ledger.set_cap("day", 12.5)
    assert not ledger.check().exceeded
    reopened = SpendLedger(open_database(db_url), defaults, clock=clock)
    assert reopened.caps == Caps(daily=12.5, weekly=20.0, monthly=50.0)
    reopened.set_cap("day", 3.0)
    assert ledger.caps.daily == 3.0  # the first instance sees the change too
    assert ledger.check().which == "day"


def test_set_cap_rejects_nonsense(db_url: str) -> None:
    ledger = SpendLedger(open_database(db_url), WIDE_CAPS)
    with pytest.raises(ValueError):
        ledger.set_cap("day", -1.0)
    with pytest.raises(ValueError):
        ledger.set_cap("day", float("nan"))
    with pytest.raises(ValueError):
        ledger.set_cap("year", 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ledger.spent("year")  # type: ignore[arg-type]
    assert ledger.caps == WIDE_CAPS


def test_an_old_ledger_file_is_copied_in_once_and_left_as_it_was(
    db_url: str, tmp_path: Path
) -> None:
    legacy = tmp_path / LEGACY_FILE
    with closing(sqlite3.connect(legacy)) as old:
        old.executescript(
            """CREATE TABLE calls (id INTEGER PRIMARY KEY, at_utc TEXT, provider TEXT,
               model TEXT, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
               estimated INTEGER);
            CREATE TABLE caps (period TEXT PRIMARY KEY, dollars REAL, updated_at_utc TEXT);
            INSERT INTO calls VALUES (1, '2025-03-05T10:00:00.000000Z', 'openai',
               'gpt-4o-mini', 1000, 500, 0.5, 0);
            INSERT INTO caps VALUES ('day', 2.5, '2025-03-05T09:00:00.000000Z');"""
        )
        old.commit()
    before = legacy.read_bytes()
    clock = SetClock(datetime(2025, 3, 5, 12, 0, tzinfo=UTC))
    for _ in range(2):  # opened twice: counted once
        ledger = SpendLedger(open_database(db_url), WIDE_CAPS, clock=clock, legacy_file=legacy)
    assert ledger.spent("day") == 0.5
    assert ledger.caps == Caps(daily=2.5, weekly=WIDE_CAPS.weekly, monthly=WIDE_CAPS.monthly)
    assert legacy.read_bytes() == before
