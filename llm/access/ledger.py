"""Spend ledger in the app's database: prices every model call and checks daily, weekly and
monthly caps."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llm.records.database import update_or_insert
from llm.records.tables import ledger_calls, ledger_caps, ledger_imports

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
_CAP_FIELDS: dict[Period, str] = {"day": "daily", "week": "weekly", "month": "monthly"}

# Answers computed on this machine cost nothing, whatever price the caller passes.
FREE_PROVIDERS = frozenset({"local", "extractive"})

# Fixed width with a trailing Z, so comparing the text compares the times.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# A sum of float costs can land a hair below a cap it has in fact reached.
_TOLERANCE_USD = 1e-9

# The ledger file of releases before the database: its calls and caps are copied in once.
LEGACY_FILE = "ledger.sqlite3"


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
    """Every model call with its cost, in the app's database: shared by all sessions and
    processes, and by every replica when the database is a server (caps then hold across
    machines).

    Caps start from the defaults given here (the settings); a cap set with `set_cap` is stored in
    the database and overrides the default from then on, across restarts.
    """

    def __init__(
        self,
        engine: Engine,
        caps: Caps,
        clock: Callable[[], datetime] = utc_now,
        legacy_file: Path | None = None,
    ) -> None:
        self._engine = engine
        self._default_caps = caps
        self._clock = clock
        if legacy_file is not None and legacy_file.is_file():
            _import_legacy(engine, legacy_file)

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
        with self._engine.begin() as db:
            db.execute(
                sa.insert(ledger_calls).values(
                    at_utc=_format(self._now()),
                    provider=provider,
                    model=model,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=cost,
                    estimated=estimated,
                )
            )
        return cost

    def spent(self, period: Period) -> float:
        """Dollars spent so far in the current UTC day, week (from Monday) or month."""
        with self._engine.connect() as db:
            return _sum(db, *period_bounds(period, self._now()))

    @property
    def caps(self) -> Caps:
        """The caps in force: stored ones where set, the defaults otherwise."""
        with self._engine.connect() as db:
            return self._caps(db)

    def set_cap(self, period: Period, dollars: float) -> None:
        """Change a cap at run time; stored, so it outlives restarts and every process sees it."""
        if not math.isfinite(dollars) or dollars < 0:
            raise ValueError("a cap must be a finite number of dollars, 0 or more")
        values = {"dollars": float(dollars), "updated_at_utc": _format(self._now())}
        with self._engine.begin() as db:
            update_or_insert(db, ledger_caps, {"period": _checked(period)}, values, values)

    def usage(self) -> list[PeriodSpend]:
        """Spend against cap for the current day, week and month, read in one transaction."""
        now = self._now()
        with self._engine.begin() as db:
            caps = self._caps(db)
            result = []
            for period in PERIODS:
                start, end = period_bounds(period, now)
                spent = _sum(db, start, end)
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

    def _caps(self, db: sa.Connection) -> Caps:
        stored = dict(db.execute(sa.select(ledger_caps.c.period, ledger_caps.c.dollars)).all())
        changes = {_CAP_FIELDS[p]: dollars for p, dollars in stored.items() if p in _CAP_FIELDS}
        return dataclasses.replace(self._default_caps, **changes)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now


def _sum(db: sa.Connection, start: datetime, end: datetime) -> float:
    total = db.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ledger_calls.c.cost_usd), 0.0)).where(
            ledger_calls.c.at_utc >= _format(start), ledger_calls.c.at_utc < _format(end)
        )
    ).scalar_one()
    return float(total)


def _import_legacy(engine: Engine, path: Path) -> None:
    """Copy an older release's ledger file in, once, in one transaction; the file is only read."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as old:
        tables = {row[0] for row in old.execute("SELECT name FROM sqlite_master")}
        calls = (
            old.execute(
                "SELECT at_utc, provider, model, input_tokens, output_tokens, cost_usd,"
                " estimated FROM calls ORDER BY id"
            ).fetchall()
            if "calls" in tables
            else []
        )
        caps = (
            old.execute("SELECT period, dollars, updated_at_utc FROM caps").fetchall()
            if "caps" in tables
            else []
        )
    # Another process copying it in at the same moment makes this one's copy fail whole.
    with suppress(IntegrityError):
        _copy_in(engine, calls, caps)


def _copy_in(engine: Engine, calls: list[tuple], caps: list[tuple]) -> None:
    with engine.begin() as db:
        if db.execute(
            sa.select(ledger_imports.c.source).where(ledger_imports.c.source == LEGACY_FILE)
        ).first():
            return
        columns = ("at_utc", "provider", "model", "input_tokens", "output_tokens", "cost_usd")
        rows = [
            {**dict(zip(columns, row, strict=False)), "estimated": bool(row[6])} for row in calls
        ]
        if rows:
            db.execute(sa.insert(ledger_calls), rows)
        for period, dollars, updated in caps:
            if (
                period in _CAP_FIELDS
                and not db.execute(
                    sa.select(ledger_caps.c.period).where(ledger_caps.c.period == period)
                ).first()
            ):
                db.execute(
                    sa.insert(ledger_caps).values(
                        period=period, dollars=dollars, updated_at_utc=updated
                    )
                )
        db.execute(sa.insert(ledger_imports).values(source=LEGACY_FILE, calls=len(rows)))


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _checked(period: str) -> Period:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    return period  # type: ignore[return-value]
