"""Background indexing on the pages: queue an upload; the sidebar's progress, cancel, report."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app import identity, reading, resources, ui
from app.text import counted, duration, inert_markdown
from ingest.ownership import DataDirBusy
from ingest.queue import IngestQueue, Job
from ingest.sqlite_file import SchemaTooNew
from ingest.worker import IndexWorker
from llm.settings import Settings

# How often an open page redraws the progress while a job runs (not at all when none does).
REFRESH_S = 1.0
MESSAGES_HEIGHT = 360
ORIGINS = {"chat": "upload", "admin": "Admin upload", "cli": "docqa add"}
_SEEN = "indexing_seen"


def queue_upload(settings: Settings, files: Sequence[tuple[str, bytes]], key: str) -> None:
    """Hand the files to the worker, empty the uploader, and rerun so the progress shows."""
    origin = "admin" if key.startswith("admin") else "chat"
    if origin == "chat":
        reading.file_into_collection(settings, files)
    queue = resources.worker(settings).queue
    queue.enqueue_files(files, origin, identity.owner())
    st.session_state[f"{key}_round"] = st.session_state.get(f"{key}_round", 0) + 1
    st.rerun()


def status(settings: Settings) -> None:
    """The indexing status every page shows in its sidebar: the running job's progress (redrawn
    while it runs), cancel, and this browser's last report. Read from the queue, so a reload or
    another tab shows the same."""
    try:
        worker = resources.worker(settings)
    except (DataDirBusy, SchemaTooNew):
        return  # the page itself says why the data dir cannot be opened
    active = bool(worker.queue.active_jobs())
    st.fragment(_draw, run_every=REFRESH_S if active else None)(worker, settings)


def _draw(worker: IndexWorker, settings: Settings) -> None:
    owner = identity.owner()
    queue = worker.queue
    jobs = queue.active_jobs()
    # First, so that a toast below is drawn by the run that stays, not one a rerun replaces.
    _rerun_on_change({job.id for job in jobs}, worker.index.is_empty)
    if jobs:
        # With accounts, another user's file names are theirs: their job shows as a count.
        named = jobs[0].owner == owner or reading.reader() is None or identity.is_admin(settings)
        _progress(queue, jobs[0], _may_cancel(jobs[0], owner, settings), named)
        waiting = jobs[1:]
        if waiting:
            files = sum(len(job.files) for job in waiting)
            st.caption(f"{counted(len(waiting), 'more job')} waiting ({counted(files, 'file')}).")
    if (report := queue.last_report(owner)) is not None:
        _report(queue, report)


def _progress(queue: IngestQueue, job: Job, may_cancel: bool, named: bool = True) -> None:
    total = len(job.files)
    with st.container(border=True, key="indexing_status"):
        origin = ORIGINS.get(job.origin, job.origin) if named else "another user's upload"
        st.markdown(f"**:material/hourglass_top: Indexing {counted(total, 'file')}** ({origin})")
        st.progress(job.files_done / total if total else 0.0, text=_progress_text(job))
        if job.current and named:
            st.caption(f"Now: {inert_markdown(job.current)}")
        if job.cancel_requested:
            st.caption("Cancelling after the current file…")
        elif may_cancel:
            st.button(
                "Cancel",
                key=f"indexing_cancel_{job.id}",
                on_click=queue.request_cancel,
                args=(job.id,),
                icon=":material/cancel:",
                help="Stop after the file being indexed now; the files done so far stay.",
            )


def _progress_text(job: Job) -> str:
    """Files, pages and chunks so far and the time left, in one line."""
    eta = job.eta_s
    if job.state != "running":
        left = "waiting for the worker…"
    elif eta is None:
        left = "estimating time left…"
    else:
        left = f"about {duration(eta)} left"
    return (
        f"{job.files_done}/{len(job.files)} files · {job.pages:,} pages · "
        f"{job.chunks:,} chunks · {left}"
    )


def _report(queue: IngestQueue, job: Job) -> None:
    """The per-file outcome of this browser's last job, with a toast the first time it shows."""
    results = job.results()
    summary = ui.summary(results)
    if job.files_cancelled:
        summary = f"Cancelled after {job.files_done} of {len(job.files)} files: {summary}"
    if queue.mark_notified(job.id):
        st.toast(summary, icon=":material/description:")
    with st.container(border=True, key="indexing_report"):
        st.markdown(f"**:material/description: Last upload:** {summary}")
        said = [r for r in results if r.status != "added" or r.flagged]
        # A big folder may refuse many files: they scroll rather than push the sidebar away.
        with st.container(height=MESSAGES_HEIGHT if len(said) > 3 else "content"):
            ui.upload_report(said, private=reading.reader() is not None)
        st.button(
            "Dismiss",
            key=f"indexing_dismiss_{job.id}",
            on_click=queue.dismiss,
            args=(job.id,),
            icon=":material/close:",
        )


def _rerun_on_change(active: set[int], empty: bool) -> None:
    """Redraw the whole page when a job it saw running has ended (lists and counts show the new
    documents, the progress stops refreshing) or when the first document is in (the chat box
    opens); not for every file, which would redraw under the reader's hands."""
    seen: tuple[set[int], bool] | None = st.session_state.get(_SEEN)
    st.session_state[_SEEN] = (active, empty)
    if seen is not None and (seen[0] - active or seen[1] != empty):
        st.rerun()


def _may_cancel(job: Job, owner: str, settings: Settings) -> bool:
    """The browser that queued the job may cancel it, and so may a logged-in admin."""
    return job.owner == owner or identity.is_admin(settings)
