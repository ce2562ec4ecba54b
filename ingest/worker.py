"""The queue worker: a thread of the process owning the index, indexing queued jobs file by file."""

from __future__ import annotations

import atexit
import logging
import threading
import time

from ingest.index import DocumentIndex
from ingest.priority import WritesInterrupted
from ingest.queue import IngestQueue, Job, QueuedFile, WorkerLock
from ingest.records import AddResult

logger = logging.getLogger(__name__)
# Keyword search may miss a job's newest files this long; the matrix is rebuilt this often, not
# after every file (a rebuild costs ~0.3 s of CPU at 3,000 chunks, and questions wait for it).
KEYWORD_LAG_S = 10.0


class IndexWorker:
    """Takes jobs from the queue oldest first and adds their files one at a time through the
    index, each whole or not at all; between files it checks whether the job was cancelled.

    It runs only while it holds the data dir's worker lock, so one worker serves a data dir
    however many processes share it; on start it resumes what a dead worker left running.
    """

    def __init__(self, index: DocumentIndex, queue: IngestQueue, *, poll_s: float = 1.0):
        self.index = index
        self.queue = queue
        # How often to look for jobs queued by other processes (this one's wake it at once).
        self.poll_s = poll_s
        self._stopping = threading.Event()
        # Every page view asks the worker to start: only the first may.
        self._starting = threading.Lock()
        self._lock: WorkerLock | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the thread unless it runs; False when another process's worker serves the data
        dir (this one can take over on a later call, once that one has gone)."""
        with self._starting:
            if self.running:
                return True
            if self._lock is None:
                self._lock = WorkerLock.try_acquire(self.queue.data_dir)
                if self._lock is None:
                    return False
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="docqa-index-worker", daemon=True
            )
            self._thread.start()
            atexit.register(self.shut_down)
            return True

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop after the current file; the job waits for the next start."""
        atexit.unregister(self.shut_down)
        self._stopping.set()
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def shut_down(self, timeout_s: float = 60.0) -> None:
        """Stop now, as the process ends: the file in progress stops at its next write step and
        is redone whole at the next start. Run at exit, since a thread still inside the
        embedder's or Chroma's native code when Python finalizes aborts the process."""
        self._stopping.set()  # first, so that the interrupted file is not taken as done
        self.index.interrupt_writes()
        self.stop(timeout_s)

    def _run(self) -> None:
        self.queue.resume_interrupted()
        self.queue.remove_orphans()
        while not self._stopping.is_set():
            try:
                job = self.queue.claim_next()
                if job is None:
                    self.queue.wait_for_work(self.poll_s)
                else:
                    self._work_on(job)
            except Exception:
                # A broken queue file or data dir must not end indexing for the app's lifetime.
                logger.exception("the indexing worker failed; retrying in %.0f s", self.poll_s)
                self._stopping.wait(self.poll_s)

    def _work_on(self, job: Job) -> None:
        with self.index.keywords_lagging(KEYWORD_LAG_S):
            self._index_files(job)
        if not self._stopping.is_set():  # a stopped job stays running, for the next start
            self.queue.finish_job(job.id)

    def _index_files(self, job: Job) -> None:
        for file in job.files:
            if file.finished:  # done before a restart
                continue
            if self._stopping.is_set():
                return
            if self.queue.cancel_requested(job.id):
                return
            self._index_file(job, file)

    def _index_file(self, job: Job, file: QueuedFile) -> None:
        path = self.queue.pending_path(job, file)
        self.queue.start_file(job.id, file.position)
        started = time.monotonic()
        try:
            [result] = self.index.add_paths([path])
        except WritesInterrupted:
            return  # left running: the next start redoes it
        except Exception as error:  # the index reports bad files itself; this is anything else
            logger.exception("indexing %s failed", file.name)
            result = AddResult(file.name, "failed", error=f"could not be indexed: {error}")
        self.queue.finish_file(job.id, file.position, result, time.monotonic() - started)
        path.unlink(missing_ok=True)
