"""Spend ledger in SQLite: prices every model call and checks daily, weekly and monthly caps."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from ingest.sqlite_file import Migration, SQLiteFile

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
_CAP_FIELDS: dict[Period, str] = {"day": "daily", "week": "weekly", "month": "monthly"}

# Answers computed on this machine cost nothing, whatever price the caller passes.
FREE_PROVIDERS = frozenset({"local", "extractive"})

# Fixed width with a trailing Z, so comparing the text compares the times.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# A sum of float costs can land a hair below a cap it has in fact reached.
_TOLERANCE_USD = 1e-9

# Version 1 is the schema of 0.1.0, whose files carry no version (user_version 0): IF NOT EXISTS
# takes such a file over as it is.
MIGRATIONS = (
    Migration(
        1,
        "calls and caps, as in 0.1.0",
        (
            """CREATE TABLE IF NOT EXISTS calls (
                id INTEGER PRIMARY KEY,
                at_utc TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                cost_usd REAL NOT NULL,
                estimated INTEGER NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS calls_at_utc ON calls (at_utc)",
            """CREATE TABLE IF NOT EXISTS caps (
                period TEXT PRIMARY KEY,
                dollars REAL NOT NULL,
                updated_at_utc TEXT NOT NULL
            )""",
        ),
    ),
)


@dataclass(frozen=True)
class Caps:
    """Spending caps in dollars; a cap of 0 allows no paid calls at all."""

    daily: float
    weekly: float
    monthly: float

    def for_period(self, period: Period) -> float:
        return getattr(self, _CAP_FIELDS[_checked(period)])


@dataclass(frozen=True)
class PeriodSpend:
    """Spend in the current UTC period against its cap, for the admin page."""

    period: Period
    spent: float
    limit: float
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.spent >= self.limit - _TOLERANCE_USD


@dataclass(frozen=True)
class CapStatus:
    """Whether paid calls must stop now.

    When exceeded, `which` names the exceeded period whose reset comes last (paid calls resume
    only then). Otherwise `which` is None and the figures are those of the period with the least
    headroom left.
    """

    exceeded: bool
    which: Period | None
    limit: float
    spent: float
    resets_at: datetime


def cost_of(input_tokens: int, output_tokens: int, price: tuple[float, float]) -> float:
    """Dollars for a call, with `price` in dollars per million (input, output) tokens."""
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of the UTC calendar period holding `now`."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if _checked(period) == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    if first.month == 12:
        return first, first.replace(year=first.year + 1, month=1)
    return first, first.replace(month=first.month + 1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SpendLedger:
    """Every model call with its cost, shared by all sessions and processes through one file.

    Caps start from the defaults given here (the settings); a cap set with `set_cap` is stored in
    the database and overrides the default from then on, across restarts.
    """

    def __init__(
        self,
        db_path: Path,
        caps: Caps,
        clock: Callable[[], datetime] = utc_now,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.db_path = Path(db_path)
        self._default_caps = caps
        self._clock = clock
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # With WAL, NORMAL survives an app crash; only a power cut may lose the last calls.
        self._db = SQLiteFile(
            self.db_path, MIGRATIONS, busy_timeout_s=busy_timeout_s, synchronous="NORMAL"
        )

    def record(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        price_per_million: tuple[float, float] = (0.0, 0.0),
        estimated: bool = False,
    ) -> float:
        """Store one call and return its cost; `estimated` means tokens were counted locally."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts cannot be negative")
        free = provider in FREE_PROVIDERS
        cost = 0.0 if free else cost_of(input_tokens, output_tokens, price_per_million)
        row = (_format(self._now()), provider, model, input_tokens, output_tokens, cost, estimated)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO calls (at_utc, provider, model, input_tokens, output_tokens,"
                " cost_usd, estimated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return cost

    def spent(self, period: Period) -> float:
        """Dollars spent so far in the current UTC day, week (from Monday) or month."""
        return _sum(self._db.connection(), *period_bounds(period, self._now()))

    @property
    def caps(self) -> Caps:
        """The caps in force: stored ones where set, the defaults otherwise."""
        return self._caps(self._db.connection())

    def set_cap(self, period: Period, dollars: float) -> None:
        """Change a cap at run time; stored, so it outlives restarts and every process sees it."""
        if not math.isfinite(dollars) or dollars < 0:
            raise ValueError("a cap must be a finite number of dollars, 0 or more")
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO caps (period, dollars, updated_at_utc) VALUES (?, ?, ?)"
                " ON CONFLICT (period) DO UPDATE SET"
                " dollars = excluded.dollars, updated_at_utc = excluded.updated_at_utc",
                (_checked(period), float(dollars), _format(self._now())),
            )

    def usage(self) -> list[PeriodSpend]:
        """Spend against cap for the current day, week and month, read from one snapshot."""
        now = self._now()
        with self._db.snapshot() as conn:
            caps = self._caps(conn)
            result = []
            for period in PERIODS:
                start, end = period_bounds(period, now)
                spent = _sum(conn, start, end)
                result.append(PeriodSpend(period, spent, caps.for_period(period), end))
        return result

    def check(self) -> CapStatus:
        """Whether any cap is reached (spent at or above it) right now."""
        usage = self.usage()
        over = [spend for spend in usage if spend.exceeded]
        if over:
            last = max(over, key=lambda s: (s.resets_at, PERIODS.index(s.period)))
            return CapStatus(True, last.period, last.limit, last.spent, last.resets_at)
        nearest = min(usage, key=lambda s: s.limit - s.spent)
        return CapStatus(False, None, nearest.limit, nearest.spent, nearest.resets_at)

    def _caps(self, conn: sqlite3.Connection) -> Caps:
        stored = dict(conn.execute("SELECT period, dollars FROM caps").fetchall())
        changes = {_CAP_FIELDS[p]: dollars for p, dollars in stored.items() if p in _CAP_FIELDS}
        return dataclasses.replace(self._default_caps, **changes)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now


def _sum(conn: sqlite3.Connection, start: datetime, end: datetime) -> float:
    row = conn.execute(
        "SELECT COALESCE(SUM(cost_usd), 0.0) FROM calls WHERE at_utc >= ? AND at_utc < ?",
        (_format(start), _format(end)),
    ).fetchone()
    return float(row[0])


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _checked(period: str) -> Period:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    return period  # type: ignore[return-value]
