"""The indexing queue: jobs of files waiting for the index's owner, kept in the data dir."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.loaders import file_name
from ingest.records import AddResult
from ingest.sqlite_file import Migration, SQLiteFile

QUEUE_FILE = "queue.sqlite3"
# Copies of the queued files, so a job survives its source (an upload, a folder) going away: made
# in staging/, moved to pending/ as the job is queued.
STAGING_DIR = Path("uploads") / "staging"
PENDING_DIR = Path("uploads") / "pending"
# A staging folder this old is a copy whose process died: no copy takes a day.
STAGING_MAX_AGE_S = 24 * 3600
WORKER_LOCK = ".worker.lock"

JobState = Literal["queued", "running", "done", "cancelled"]
FileState = Literal["queued", "running", "added", "duplicate", "failed", "cancelled"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")
# What a file's row says once the index has reported on it.
OUTCOMES: tuple[FileState, ...] = ("added", "duplicate", "failed")

MIGRATIONS = (
    Migration(
        1,
        "jobs and their files",
        (
            """CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                folder TEXT NOT NULL UNIQUE,
                origin TEXT NOT NULL,
                owner TEXT NOT NULL,
                state TEXT NOT NULL,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                started_at REAL,
                finished_at REAL,
                notified INTEGER NOT NULL DEFAULT 0,
                dismissed INTEGER NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE job_files (
                job_id INTEGER NOT NULL REFERENCES jobs (id),
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                state TEXT NOT NULL,
                doc_id TEXT,
                pages INTEGER NOT NULL DEFAULT 0,
                chunks INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                flagged INTEGER NOT NULL DEFAULT 0,
                seconds REAL,
                PRIMARY KEY (job_id, position)
            )""",
            "CREATE INDEX jobs_state ON jobs (state)",
        ),
    ),
)


@dataclass(frozen=True)
class QueuedFile:
    """One file of a job: queued, being indexed, or what the index made of it."""

    position: int
    name: str
    size_bytes: int
    state: FileState
    doc_id: str | None = None
    pages: int = 0
    chunks: int = 0
    error: str | None = None
    flagged: int = 0
    seconds: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in OUTCOMES

    def result(self) -> AddResult:
        """The index's report on this file, once it is `finished`."""
        if self.state not in OUTCOMES:
            raise ValueError(f"{self.name} has no outcome yet: it is {self.state}")
        return AddResult(
            self.name, self.state, self.doc_id, self.pages, self.chunks, self.error, self.flagged
        )


@dataclass(frozen=True)
class Job:
    """A queued upload or folder and where it stands."""

    id: int
    folder: str
    origin: str
    owner: str
    state: JobState
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    files: tuple[QueuedFile, ...]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def files_done(self) -> int:
        return sum(file.finished for file in self.files)

    @property
    def pages(self) -> int:
        return sum(file.pages for file in self.files if file.state == "added")

    @property
    def chunks(self) -> int:
        return sum(file.chunks for file in self.files if file.state == "added")

    @property
    def current(self) -> str | None:
        """The file being indexed now, if any."""
        return next((file.name for file in self.files if file.state == "running"), None)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace of the files done so far, by size; None before the first."""
        done = [file for file in self.files if file.finished and file.seconds is not None]
        done_bytes = sum(file.size_bytes for file in done)
        if not done or not done_bytes:
            return None
        left = sum(file.size_bytes for file in self.files if file.state in ACTIVE)
        return sum(file.seconds or 0.0 for file in done) / done_bytes * left

    @property
    def files_cancelled(self) -> int:
        return sum(file.state == "cancelled" for file in self.files)

    def results(self) -> list[AddResult]:
        """What happened to each file indexed so far: added, duplicate, or failed and why."""
        return [file.result() for file in self.files if file.finished]


class IngestQueue:
    """Jobs in DATA_DIR/queue.sqlite3 and their files under DATA_DIR/uploads/pending.

    Any process may enqueue, read and cancel; only the one worker of the data dir (the holder of
    its worker lock, see `WorkerLock`) claims jobs and records what the index did.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pending_dir = data_dir / PENDING_DIR
        self.staging_dir = data_dir / STAGING_DIR
        self._db = SQLiteFile(data_dir / QUEUE_FILE, MIGRATIONS, rows_as_dicts=True)
        # Set by an enqueue in this process, so the worker here starts without waiting to poll.
        self._added = threading.Event()

    # -- enqueueing ----------------------------------------------------------------------

    def enqueue_files(self, files: Sequence[tuple[str, bytes]], origin: str, owner: str) -> int:
        """Queue uploaded files (name, bytes) as one job; returns its id."""
        with self._staging() as (folder, stage):
            sizes = [_write(stage(number, name), data) for number, (name, data) in enumerate(files)]
            names = [_stored_name(name) for name, _ in files]
            return self._insert(folder, names, sizes, origin, owner)

    def enqueue_paths(self, paths: Sequence[Path], origin: str, owner: str) -> int:
        """Queue copies of files on disk as one job (the originals may go away); returns its id."""
        with self._staging() as (folder, stage):
            sizes = []
            for position, path in enumerate(paths):
                target = stage(position, path.name)
                shutil.copyfile(path, target)
                sizes.append(target.stat().st_size)
            names = [_stored_name(path.name) for path in paths]
            return self._insert(folder, names, sizes, origin, owner)

    def wait_for_work(self, timeout_s: float) -> None:
        """Return when a job is queued in this process, or after `timeout_s` (for other ones)."""
        self._added.wait(timeout_s)
        self._added.clear()

    def wake(self) -> None:
        """End a `wait_for_work` of this process now."""
        self._added.set()

    # -- reading -------------------------------------------------------------------------

    def job(self, job_id: int) -> Job | None:
        row = self._db.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def active_jobs(self) -> list[Job]:
        """Queued and running jobs, in the order the worker takes them."""
        rows = self._db.connection().execute(
            "SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"
        )
        return [self._job(row) for row in rows.fetchall()]

    def jobs(self, limit: int = 20) -> list[Job]:
        """The latest jobs, newest first."""
        rows = self._db.connection().execute(
            "SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [self._job(row) for row in rows.fetchall()]

    def last_report(self, owner: str) -> Job | None:
        """`owner`'s latest finished job, unless they have dismissed its report."""
        row = (
            self._db.connection()
            .execute(
                "SELECT * FROM jobs WHERE owner = ? AND state IN ('done', 'cancelled')"
                " ORDER BY id DESC LIMIT 1",
                (owner,),
            )
            .fetchone()
        )
        return self._job(row) if row and not row["dismissed"] else None

    def pending_path(self, job: Job, file: QueuedFile) -> Path:
        return self.pending_dir / job.folder / str(file.position) / file.name

    # -- changing ------------------------------------------------------------------------

    def request_cancel(self, job_id: int) -> bool:
        """Ask the worker to stop the job after its current file; False if it already ended."""
        with self._db.transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET cancel_requested = 1"
                " WHERE id = ? AND state IN ('queued', 'running')",
                (job_id,),
            ).rowcount
        self.wake()
        return changed > 0

    def cancel_requested(self, job_id: int) -> bool:
        row = (
            self._db.connection()
            .execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
            .fetchone()
        )
        return bool(row and row["cancel_requested"])

    def mark_notified(self, job_id: int) -> bool:
        """Record that the owner was told the job ended; True only for the first to ask."""
        with self._db.transaction() as db:
            return (
                db.execute(
                    "UPDATE jobs SET notified = 1 WHERE id = ? AND notified = 0", (job_id,)
                ).rowcount
                > 0
            )

    def dismiss(self, job_id: int) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE jobs SET dismissed = 1 WHERE id = ?", (job_id,))

    # -- the worker's side ---------------------------------------------------------------

    def resume_interrupted(self) -> int:
        """Put jobs a dead worker left running back in the queue; returns how many.

        Their file in progress is redone whole: the index drops at start whatever a file it never
        catalogued had written. Call only while holding the worker lock.
        """
        with self._db.transaction() as db:
            db.execute("UPDATE job_files SET state = 'queued' WHERE state = 'running'")
            return db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'running'").rowcount

    def claim_next(self) -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, ?)"
                " WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.job(row["id"])

    def start_file(self, job_id: int, position: int) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE job_files SET state = 'running' WHERE job_id = ? AND position = ?",
                (job_id, position),
            )

    def finish_file(self, job_id: int, position: int, result: AddResult, seconds: float) -> None:
        """Record the index's report on one file."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE job_files SET state = ?, doc_id = ?, pages = ?, chunks = ?, error = ?,"
                " flagged = ?, seconds = ? WHERE job_id = ? AND position = ?",
                (
                    result.status,
                    result.doc_id,
                    result.pages,
                    result.chunks,
                    result.error,
                    result.flagged,
                    seconds,
                    job_id,
                    position,
                ),
            )

    def finish_job(self, job_id: int) -> Job | None:
        """End the job: done, or cancelled when asked (its files not yet indexed say so)."""
        with self._db.transaction() as db:
            cancelled = db.execute(
                "UPDATE job_files SET state = 'cancelled' WHERE job_id = ? AND state = 'queued'",
                (job_id,),
            ).rowcount
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ? WHERE id = ?",
                ("cancelled" if cancelled else "done", time.time(), job_id),
            )
            # Before the commit: whoever sees the job ended never sees its copies still there.
            row = db.execute("SELECT folder FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None:
                shutil.rmtree(self.pending_dir / row["folder"], ignore_errors=True)
        return self.job(job_id)

    def remove_orphans(self) -> None:
        """Drop copies no job will read: of jobs that ended or never got queued (their process
        died between copying and queueing, or while copying)."""
        # Under the write lock, so that no job is being queued (its folder moved) meanwhile.
        with self._db.transaction() as db:
            rows = db.execute("SELECT folder FROM jobs WHERE state IN ('queued', 'running')")
            active = {row["folder"] for row in rows}
            for folder in _folders(self.pending_dir):
                if folder.name not in active:
                    shutil.rmtree(folder, ignore_errors=True)
        for folder in _folders(self.staging_dir):
            if time.time() - folder.stat().st_mtime > STAGING_MAX_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        self._db.close()

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _staging(self) -> Iterator[tuple[str, Callable[[int, str], Path]]]:
        """A new staging folder for one job's copies, removed again if the job is not queued."""
        folder = uuid.uuid4().hex
        root = self.staging_dir / folder

        def stage(position: int, name: str) -> Path:
            target = root / str(position) / _stored_name(name)
            target.parent.mkdir(parents=True)
            return target

        try:
            yield folder, stage
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _insert(
        self, folder: str, names: Sequence[str], sizes: Sequence[int], origin: str, owner: str
    ) -> int:
        """Queue the staged copies: the job's rows and its folder appear in one step, so the
        worker never sees a job whose copies are missing."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (folder, origin, owner, state, created_at)"
                " VALUES (?, ?, ?, 'queued', ?)",
                (folder, origin, owner, time.time()),
            )
            job_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO job_files (job_id, position, name, size_bytes, state)"
                " VALUES (?, ?, ?, ?, 'queued')",
                [
                    (job_id, position, name, size)
                    for position, (name, size) in enumerate(zip(names, sizes, strict=True))
                ],
            )
            self.pending_dir.mkdir(parents=True, exist_ok=True)
            staged = self.staging_dir / folder
            # An empty job has no folder to move.
            if staged.is_dir():
                staged.rename(self.pending_dir / folder)
        self.wake()
        return job_id

    def _job(self, row: sqlite3.Row) -> Job:
        files = self._db.connection().execute(
            "SELECT position, name, size_bytes, state, doc_id, pages, chunks, error, flagged,"
            " seconds FROM job_files WHERE job_id = ? ORDER BY position",
            (row["id"],),
        )
        return Job(
            id=row["id"],
            folder=row["folder"],
            origin=row["origin"],
            owner=row["owner"],
            state=row["state"],
            cancel_requested=bool(row["cancel_requested"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            files=tuple(QueuedFile(**dict(file)) for file in files.fetchall()),
        )


class WorkerLock:
    """An exclusive flock on DATA_DIR/.worker.lock: one queue worker per data dir, freed by the
    kernel when its process dies, so a crash never leaves a job claimed by nobody."""

    def __init__(self, handle: int):
        self._handle = handle

    @classmethod
    def try_acquire(cls, data_dir: Path) -> WorkerLock | None:
        handle = os.open(data_dir / WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return None
        return cls(handle)

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        os.close(self._handle)


def worker_running(data_dir: Path) -> bool:
    """Whether some process (this one included) runs the queue worker of `data_dir`."""
    if not (data_dir / WORKER_LOCK).exists():
        return False
    probe = WorkerLock.try_acquire(data_dir)
    if probe is None:
        return True
    probe.release()
    return False


def _stored_name(name: str) -> str:
    """The name the index will know the file by (its last part, printable); the copy has it."""
    name = file_name(name)
    return name if name not in {"", ".", ".."} else "unnamed"


def _folders(parent: Path) -> list[Path]:
    return [path for path in parent.iterdir() if path.is_dir()] if parent.is_dir() else []


def _write(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return len(data)
