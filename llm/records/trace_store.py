"""The app's own record of every answer, for the Traces page: an SQLite file under the data dir,
or the app's database when replicas share one corpus."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from ingest.sqlite_file import Migration, SQLiteFile
from llm.answering.pipeline import AnswerResult, Timings, Usage

TRACES_FILE = "traces.sqlite3"
TRACES_PAGE = "traces"
# Fixed width with a trailing Z, so comparing the text compares the times.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# The table as the SQLite file's migrations below and the app database's migration 0004 make it;
# JSON fields are kept as text in both.
traces = sa.Table(
    "traces",
    sa.MetaData(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("page", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("standalone_question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("timings", sa.Text, nullable=False),
    sa.Column("usage", sa.Text, nullable=False),
    sa.Column("langsmith_url", sa.Text),
    sa.Column("cached_from", sa.Text),
    sa.Column("feedback_score", sa.Integer),
    sa.Column("feedback_comment", sa.Text),
    sa.Column("attribution", sa.Text),
    sa.Column("owner", sa.Text),
)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Add the columns that came after the first release with a trace store, where missing."""
    present = {row[1] for row in db.execute("PRAGMA table_info(traces)")}
    for name in ("attribution", "owner"):
        if name not in present:
            db.execute(f"ALTER TABLE traces ADD COLUMN {name} TEXT")


# Version 1 is the schema of 0.1.0, whose files carry no version (user_version 0): IF NOT EXISTS
# takes such a file over, and one from before attribution and owners gains their columns.
MIGRATIONS = (
    Migration(
        1,
        "traces, as in 0.1.0",
        (
            """CREATE TABLE IF NOT EXISTS traces (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                page TEXT NOT NULL,
                question TEXT NOT NULL,
                standalone_question TEXT NOT NULL,
                answer TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                sources TEXT NOT NULL,
                prompt TEXT NOT NULL,
                timings TEXT NOT NULL,
                usage TEXT NOT NULL,
                langsmith_url TEXT,
                cached_from TEXT,
                feedback_score INTEGER,
                feedback_comment TEXT,
                attribution TEXT,
                owner TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS traces_created_at ON traces (created_at)",
            _add_missing_columns,
        ),
    ),
)


@dataclass(frozen=True)
class TraceRecord:
    """One answer as it was made; `cached_from` names the original when it came from the cache."""

    id: str
    created_at: datetime
    page: str
    question: str
    standalone_question: str
    answer: str
    provider: str
    model: str
    sources: list[dict[str, Any]]
    prompt: list[dict[str, str]]
    timings: Timings
    usage: Usage
    langsmith_url: str | None
    cached_from: str | None
    feedback_score: int | None
    feedback_comment: str | None
    # Which sentences the documents support, and the evidence quotes (None for older records).
    attribution: dict[str, Any] | None = None
    # Who asked: a browser's key ("browser:…"), "cli", or None for records older than owners.
    owner: str | None = None

    @property
    def cached(self) -> bool:
        return self.cached_from is not None


def app_trace_url(public_url: str, trace_id: str) -> str:
    """The Traces page opened on one answer, e.g. http://localhost:8501/traces?trace=<id>."""
    return f"{public_url.rstrip('/')}/{TRACES_PAGE}?{urlencode({'trace': trace_id})}"


class TraceStore:
    """Answers in an SQLite file (`db_path`) or in the app's database (`engine`); any thread or
    process may use it."""

    def __init__(
        self,
        db_path: Path | None = None,
        busy_timeout_s: float = 10.0,
        *,
        engine: sa.Engine | None = None,
    ) -> None:
        if engine is None:
            if db_path is None:
                raise ValueError("a trace store needs a file or a database")
            engine = _sqlite_engine(Path(db_path), busy_timeout_s)
        self.db_path = db_path
        self._engine = engine

    def record(
        self,
        result: AnswerResult,
        *,
        page: str,
        owner: str,
        langsmith_url: str | None = None,
    ) -> TraceRecord:
        """Keep a finished answer under its root run id (a new id when it has none)."""
        trace_id = result.run_id or str(uuid.uuid4())
        row = {
            "id": trace_id,
            "created_at": _now(),
            "page": page,
            "question": result.question,
            "standalone_question": result.standalone_question,
            "answer": result.answer,
            "provider": result.provider,
            "model": result.model,
            "sources": _json([asdict(source) for source in result.sources]),
            "prompt": _json(result.prompt_messages),
            "timings": _json(asdict(result.timings)),
            "usage": _json(result.usage.to_json()),
            "langsmith_url": langsmith_url,
            "attribution": _json(result.attribution.to_json()) if result.attribution else None,
            "owner": owner,
        }
        with self._engine.begin() as db:
            db.execute(sa.insert(traces).values(row))
        return self._get_required(trace_id)

    def record_cache_hit(
        self, origin_id: str, question: str, page: str, owner: str
    ) -> TraceRecord | None:
        """A new entry for an answer served from the cache, copying the original's content
        (not its asker: the entry is the new asker's own)."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(traces).where(traces.c.id == origin_id)).mappings().first()
        if row is None:
            return None
        trace_id = str(uuid.uuid4())
        copy = {
            **row,
            "id": trace_id,
            "created_at": _now(),
            "page": page,
            "question": question,
            "cached_from": origin_id,
            "feedback_score": None,
            "feedback_comment": None,
            "owner": owner,
        }
        with self._engine.begin() as db:
            db.execute(sa.insert(traces).values(copy))
        return self.get(trace_id)

    def get(self, trace_id: str) -> TraceRecord | None:
        with self._engine.connect() as db:
            row = db.execute(sa.select(traces).where(traces.c.id == trace_id)).mappings().first()
        return _to_record(row) if row else None

    def recent(
        self, limit: int = 50, search: str | None = None, *, owner: str | None
    ) -> list[TraceRecord]:
        """Newest first, only `owner`'s (None: everyone's, for an admin); `search` keeps answers
        whose question or answer contains it (any case)."""
        query = sa.select(traces)
        if owner is not None:
            query = query.where(traces.c.owner == owner)
        if search and search.strip():
            pattern = "%" + _escape_like(search.strip()) + "%"
            searched = (traces.c.question, traces.c.standalone_question, traces.c.answer)
            query = query.where(
                sa.or_(*(column.ilike(pattern, escape="\\") for column in searched))
            )
        query = query.order_by(traces.c.created_at.desc(), traces.c.id.desc()).limit(limit)
        with self._engine.connect() as db:
            return [_to_record(row) for row in db.execute(query).mappings()]

    def set_feedback(
        self, trace_id: str, score: int | None, comment: str | None, *, owner: str
    ) -> bool:
        """Keep thumbs (1 up, 0 down, None cleared) and comment (blank: none) on one of `owner`'s
        answers; False if there is no such answer of theirs."""
        with self._engine.begin() as db:
            changed = db.execute(
                sa.update(traces)
                .where(traces.c.id == trace_id, traces.c.owner == owner)
                .values(feedback_score=score, feedback_comment=(comment or "").strip() or None)
            ).rowcount
        return bool(changed)

    def set_langsmith_url(self, trace_id: str, url: str) -> None:
        """The LangSmith link, once known (it can take a lookup that finishes after the answer)."""
        with self._engine.begin() as db:
            db.execute(
                sa.update(traces)
                .where(sa.or_(traces.c.id == trace_id, traces.c.cached_from == trace_id))
                .values(langsmith_url=url)
            )

    def _get_required(self, trace_id: str) -> TraceRecord:
        record = self.get(trace_id)
        if record is None:
            raise RuntimeError(f"trace {trace_id} vanished right after it was written")
        return record


def _sqlite_engine(path: Path, busy_timeout_s: float) -> sa.Engine:
    """An engine on the traces file, brought to its newest schema first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    SQLiteFile(path, MIGRATIONS, busy_timeout_s=busy_timeout_s, wal=False).close()
    return sa.create_engine(
        f"sqlite:///{path.resolve()}",
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _to_record(row: Any) -> TraceRecord:
    attribution = row["attribution"]
    return TraceRecord(
        id=row["id"],
        created_at=datetime.strptime(row["created_at"], _TIME_FORMAT).replace(tzinfo=UTC),
        page=row["page"],
        question=row["question"],
        standalone_question=row["standalone_question"],
        answer=row["answer"],
        provider=row["provider"],
        model=row["model"],
        sources=json.loads(row["sources"]),
        prompt=json.loads(row["prompt"]),
        timings=Timings.from_json(json.loads(row["timings"])),
        usage=Usage.from_json(json.loads(row["usage"])),
        langsmith_url=row["langsmith_url"],
        cached_from=row["cached_from"],
        feedback_score=row["feedback_score"],
        feedback_comment=row["feedback_comment"],
        attribution=json.loads(attribution) if attribution else None,
        owner=row["owner"],
    )
