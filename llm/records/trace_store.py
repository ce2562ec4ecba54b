"""The app's own record of every answer (SQLite under the data dir), for the Traces page."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ingest.sqlite_file import Migration, SQLiteFile
from llm.answering.pipeline import AnswerResult, Timings, Usage

TRACES_FILE = "traces.sqlite3"
TRACES_PAGE = "traces"
# Fixed width with a trailing Z, so comparing the text compares the times.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_COLUMNS = (
    "id, created_at, page, question, standalone_question, answer, provider, model, sources, "
    "prompt, timings, usage, langsmith_url, cached_from, feedback_score, feedback_comment, "
    "attribution, owner"
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
    """Answers in SQLite; any thread or process may use it (a connection per thread)."""

    def __init__(self, db_path: Path, busy_timeout_s: float = 10.0) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = SQLiteFile(self.db_path, MIGRATIONS, busy_timeout_s=busy_timeout_s, wal=False)

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
        sources = [asdict(source) for source in result.sources]
        row = (
            trace_id,
            _now(),
            page,
            result.question,
            result.standalone_question,
            result.answer,
            result.provider,
            result.model,
            json.dumps(sources, ensure_ascii=False),
            json.dumps(result.prompt_messages, ensure_ascii=False),
            json.dumps(asdict(result.timings)),
            json.dumps(result.usage.to_json()),
            langsmith_url,
            None,
            None,
            None,
            json.dumps(result.attribution.to_json()) if result.attribution else None,
            owner,
        )
        self._db.connection().execute(
            f"INSERT INTO traces ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
        )
        return self._get_required(trace_id)

    def record_cache_hit(
        self, origin_id: str, question: str, page: str, owner: str
    ) -> TraceRecord | None:
        """A new entry for an answer served from the cache, copying the original's content
        (not its asker: the entry is the new asker's own)."""
        trace_id = str(uuid.uuid4())
        inserted = (
            self._db.connection()
            .execute(
                f"""INSERT INTO traces ({_COLUMNS})
                SELECT ?, ?, ?, ?, standalone_question, answer, provider, model, sources, prompt,
                    timings, usage, langsmith_url, id, NULL, NULL, attribution, ?
                FROM traces WHERE id = ?""",
                (trace_id, _now(), page, question, owner, origin_id),
            )
            .rowcount
        )
        return self.get(trace_id) if inserted else None

    def get(self, trace_id: str) -> TraceRecord | None:
        row = (
            self._db.connection()
            .execute(f"SELECT {_COLUMNS} FROM traces WHERE id = ?", (trace_id,))
            .fetchone()
        )
        return _to_record(row) if row else None

    def recent(
        self, limit: int = 50, search: str | None = None, *, owner: str | None
    ) -> list[TraceRecord]:
        """Newest first, only `owner`'s (None: everyone's, for an admin); `search` keeps answers
        whose question or answer contains it (any case)."""
        conditions, params = [], []
        if owner is not None:
            conditions.append("owner = ?")
            params.append(owner)
        if search and search.strip():
            pattern = "%" + _escape_like(search.strip()) + "%"
            conditions.append(
                "(question LIKE ? ESCAPE '\\' OR standalone_question LIKE ? ESCAPE '\\' "
                "OR answer LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.connection().execute(
            f"SELECT {_COLUMNS} FROM traces {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (*params, limit),
        )
        return [_to_record(row) for row in rows]

    def set_feedback(
        self, trace_id: str, score: int | None, comment: str | None, *, owner: str
    ) -> bool:
        """Keep thumbs (1 up, 0 down, None cleared) and comment (blank: none) on one of `owner`'s
        answers; False if there is no such answer of theirs."""
        changed = (
            self._db.connection()
            .execute(
                "UPDATE traces SET feedback_score = ?, feedback_comment = ? "
                "WHERE id = ? AND owner = ?",
                (score, (comment or "").strip() or None, trace_id, owner),
            )
            .rowcount
        )
        return bool(changed)

    def set_langsmith_url(self, trace_id: str, url: str) -> None:
        """The LangSmith link, once known (it can take a lookup that finishes after the answer)."""
        self._db.connection().execute(
            "UPDATE traces SET langsmith_url = ? WHERE id = ? OR cached_from = ?",
            (url, trace_id, trace_id),
        )

    def _get_required(self, trace_id: str) -> TraceRecord:
        record = self.get(trace_id)
        if record is None:
            raise RuntimeError(f"trace {trace_id} vanished right after it was written")
        return record


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _to_record(row: tuple[Any, ...]) -> TraceRecord:
    (
        trace_id,
        created_at,
        page,
        question,
        standalone,
        answer,
        provider,
        model,
        sources,
        prompt,
        timings,
        usage,
        langsmith_url,
        cached_from,
        score,
        comment,
        attribution,
        owner,
    ) = row
    return TraceRecord(
        id=trace_id,
        created_at=datetime.strptime(created_at, _TIME_FORMAT).replace(tzinfo=UTC),
        page=page,
        question=question,
        standalone_question=standalone,
        answer=answer,
        provider=provider,
        model=model,
        sources=json.loads(sources),
        prompt=json.loads(prompt),
        timings=Timings.from_json(json.loads(timings)),
        usage=Usage.from_json(json.loads(usage)),
        langsmith_url=langsmith_url,
        cached_from=cached_from,
        feedback_score=score,
        feedback_comment=comment,
        attribution=json.loads(attribution) if attribution else None,
        owner=owner,
    )
