"""The indexing queue and its worker on a real data dir: background jobs, cancel, crash, resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.index import DocumentIndex
from ingest.queue import IngestQueue, Job, worker_running
from ingest.worker import IndexWorker
from llm.components import build_index, build_worker
from llm.settings import Settings, load_settings
from tests.generated import notes

REPO_ROOT = Path(__file__).resolve().parents[1]


def settings_for(data_dir: Path) -> Settings:
    return load_settings(data_dir=data_dir, secrets_file=data_dir.parent / "absent.toml")


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.05)


def job_of(queue: IngestQueue, job_id: int) -> Job:
    job = queue.job(job_id)
    assert job is not None
    return job


def ended(queue: IngestQueue, job_id: int) -> Job:
    wait_until(lambda: not job_of(queue, job_id).active, f"the end of job {job_id}")
    return job_of(queue, job_id)


def chunks_per_document(index: DocumentIndex) -> dict[str, int]:
    return dict(index._vectors.chunk_counts())


def consistent(index: DocumentIndex) -> None:
    """Every catalogued document has exactly its chunks in Chroma and in the keyword table."""
    catalog = {record.doc_id: record.chunks for record in index.documents()}
    assert chunks_per_document(index) == catalog
    assert index._keyword.chunk_count() == sum(catalog.values())


@pytest.fixture
def app(data_dir: Path) -> Iterator[IndexWorker]:
    """The index and its worker, as the app holds them (not started: each test starts it)."""
    index = build_index(settings_for(data_dir), owner="test")
    worker = build_worker(index)
    yield worker
    worker.stop()
    index.close()


def test_a_queued_folder_is_indexed_file_by_file_from_copies(
    app: IndexWorker, tmp_path: Path, good_pdfs: Path, bad_pdfs: Path
) -> None:
    inbox = tmp_path / "inbox"
    [first, second] = notes(inbox, 2, 3)
    for name, folder in (("crazyones-pdfa.pdf", good_pdfs), ("truncated.pdf", bad_pdfs)):
        shutil.copy(folder / name, inbox / name)
    shutil.copy(good_pdfs / "crazyones-pdfa.pdf", inbox / "again.pdf")
    paths = [first, inbox / "crazyones-pdfa.pdf", inbox / "truncated.pdf", second]
    job_id = app.queue.enqueue_paths([*paths, inbox / "again.pdf"], "cli", "cli")
    # The job reads its own copies: the folder it came from may go away before its turn.
    shutil.rmtree(inbox)
    queued = job_of(app.queue, job_id)
    assert (queued.state, queued.files_done, queued.eta_s) == ("queued", 0, None)

    assert app.start()
    job = ended(app.queue, job_id)

    assert job.state == "done"
    statuses = [(result.file, result.status) for result in job.results()]
    assert statuses == [
        ("notes-0.md", "added"),
        ("crazyones-pdfa.pdf", "added"),
        ("truncated.pdf", "failed"),
        ("notes-1.md", "added"),
        ("again.pdf", "duplicate"),
    ]
    results = job.results()
    assert "damaged" in (results[2].error or "")
    assert "same content as crazyones-pdfa.pdf" in (results[4].error or "")
    index = app.index
    assert {record.source for record in index.documents()} == {
        "notes-0.md",
        "notes-1.md",
        "crazyones-pdfa.pdf",
    }
    assert job.chunks == sum(record.chunks for record in index.documents())
    assert job.pages == 3 and job.eta_s == 0
    assert index.keyword_search("valve 1 opens", 1)[0].source == "notes-1.md"
    assert list(app.queue.pending_dir.iterdir()) == []
    consistent(index)


@pytest.mark.slow
def test_searches_are_answered_while_a_job_indexes(app: IndexWorker, tmp_path: Path) -> None:
    app.index.add_files([("pump.md", b"# Pump\n\nThe P-40 pump moves 40 litres a minute.")])
    job_id = app.queue.enqueue_paths(notes(tmp_path / "inbox", 4, 40), "chat", "someone")
    assert app.start()
    # Each search: how many files were done when it started and when it ended.
    spans: list[tuple[int, int]] = []
    while (job := job_of(app.queue, job_id)).active:
        before = job.files_done
        hits = app.index.search("How much does the P-40 pump move?", 3)
        assert hits[0].source == "pump.md"
        spans.append((before, job_of(app.queue, job_id).files_done))
    during = [span for span in spans if span[1] < 4]
    # Searches went on all through the job, not after it: none waited for the whole job.
    assert len(during) >= 3 and len({span[0] for span in during}) >= 2, spans
    assert job.state == "done" and len(app.index.documents()) == 5


def test_cancel_stops_after_the_current_file_and_keeps_what_is_done(
    app: IndexWorker, tmp_path: Path
) -> None:
    job_id = app.queue.enqueue_paths(notes(tmp_path / "inbox", 6, 30), "chat", "someone")
    assert app.start()
    wait_until(lambda: job_of(app.queue, job_id).files_done >= 1, "the first file")
    assert app.queue.request_cancel(job_id)
    at_cancel = job_of(app.queue, job_id)

    job = ended(app.queue, job_id)

    assert job.state == "cancelled" and job.cancel_requested
    states = [file.state for file in job.files]
    added = states.count("added")
    # A prefix went in, the rest was cancelled: the file in progress was finished, whole.
    assert states == ["added"] * added + ["cancelled"] * (6 - added)
    assert 1 <= added < 6
    started = [file.position for file in at_cancel.files if file.state != "queued"]
    assert all(states[position] == "added" for position in started)
    assert {record.source for record in app.index.documents()} == {
        file.name for file in job.files if file.state == "added"
    }
    assert job.files_cancelled == 6 - added and len(job.results()) == added
    consistent(app.index)
    assert list(app.queue.pending_dir.iterdir()) == []
    assert not app.queue.request_cancel(job_id), "an ended job cannot be cancelled again"


# A worker in its own process, killed in the middle of a file as a crash would end it.
WORKER_PROCESS = """
import sys, time
from pathlib import Path
from llm.components import build_index, build_worker
from tests.test_queue import settings_for
worker = build_worker(build_index(settings_for(Path(sys.argv[1])), owner="the app"))
worker.start()
print("started", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_job_left_running_by_a_killed_worker_resumes_and_redoes_its_file_whole(
    data_dir: Path, tmp_path: Path
) -> None:
    queue = IngestQueue(data_dir)
    # About 150 chunks each: several write slices, so the kill lands with a file half written.
    job_id = queue.enqueue_paths(notes(tmp_path / "inbox", 3, 150), "cli", "cli")
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER_PROCESS, str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        assert worker_running(data_dir)
        wait_until(lambda: job_of(queue, job_id).files[1].state == "running", "the second file")
        time.sleep(3)  # into the second file's writing, not an assertion
        running = job_of(queue, job_id)
        assert [file.state for file in running.files] == ["added", "running", "queued"]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not worker_running(data_dir), "the kernel frees a dead worker's lock"

    index = build_index(settings_for(data_dir), owner="the app, restarted")
    worker = build_worker(index)
    try:
        assert worker.start()
        job = ended(worker.queue, job_id)
        assert job.state == "done"
        assert [file.state for file in job.files] == ["added"] * 3
        assert job.files[0].chunks == job.files[1].chunks == job.files[2].chunks > 140
        assert len(index.documents()) == 3
        consistent(index)
    finally:
        worker.stop()
        index.close()


def test_one_worker_per_data_dir_and_orphaned_copies_are_dropped(
    app: IndexWorker, data_dir: Path, tmp_path: Path
) -> None:
    orphan = app.queue.pending_dir / "copy-of-a-job-never-queued"
    orphan.mkdir(parents=True)
    kept = app.queue.enqueue_paths(notes(tmp_path / "inbox", 1, 1), "cli", "cli")
    assert not worker_running(data_dir)
    assert app.start() and app.start(), "starting twice is one worker"
    assert worker_running(data_dir)
    second = IndexWorker(app.index, IngestQueue(data_dir))
    assert not second.start(), "a second worker on the same data dir must not start"
    assert ended(app.queue, kept).state == "done"
    assert not orphan.exists()
    app.stop()
    assert not worker_running(data_dir)


@pytest.mark.slow
def test_shutting_down_stops_in_the_middle_of_a_file_which_the_next_start_redoes(
    data_dir: Path, tmp_path: Path
) -> None:
    index = build_index(settings_for(data_dir), owner="test")
    worker = build_worker(index)
    job_id = worker.queue.enqueue_paths(notes(tmp_path / "inbox", 2, 200), "chat", "someone")
    assert worker.start()
    wait_until(lambda: job_of(worker.queue, job_id).files[0].state == "running", "the file")
    started = time.monotonic()
    worker.shut_down()
    # Within a write step or two, not after the file's ~200 chunks.
    assert not worker.running and time.monotonic() - started < 20
    assert [file.state for file in job_of(worker.queue, job_id).files] == ["running", "queued"]
    assert index.documents() == []
    index.close()

    index = build_index(settings_for(data_dir), owner="test, started again")
    worker = build_worker(index)
    try:
        assert worker.start()
        job = ended(worker.queue, job_id)
        assert [file.state for file in job.files] == ["added", "added"]
        consistent(index)
        assert len(list(index.files_dir.iterdir())) == 2
    finally:
        worker.stop()
        index.close()


def test_a_job_is_seen_ended_only_once_its_copies_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen once under load: the job read as done while its copies were still being removed.
    data_dir = tmp_path / "data"
    queue, reader = IngestQueue(data_dir), IngestQueue(data_dir)
    source = tmp_path / "pump.md"
    source.write_text("# Pump\n\nThe P-40 pump moves 40 litres a minute.")
    job_id = queue.enqueue_paths([source], "cli", "cli")
    seen_while_removing: list[str] = []
    remove = shutil.rmtree

    def watched_remove(path: Path, *args: object, **kwargs: object) -> None:
        seen_while_removing.append(job_of(reader, job_id).state)
        remove(path, *args, **kwargs)

    monkeypatch.setattr("ingest.queue.shutil.rmtree", watched_remove)
    queue.finish_job(job_id)
    assert seen_while_removing == ["queued"]
    assert job_of(reader, job_id).state == "cancelled"
    assert list(queue.pending_dir.iterdir()) == []
    queue.close()
    reader.close()
