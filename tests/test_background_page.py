"""The pages while an upload indexes in the background (AppTest): asking, progress, cancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.queue import IngestQueue, Job
from tests.app_pages import APP, PASSWORD, indexed, indexing_shown, log_in
from tests.generated import notes


@pytest.fixture
def pump_env(monkeypatch: pytest.MonkeyPatch, pump_dir: Path) -> Path:
    """The app on a data dir that already holds the pump document, answering by quoting."""
    monkeypatch.setenv("DOCQA_DATA_DIR", str(pump_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    return pump_dir


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, paths: list[Path]) -> None:
    files = [(path.name, path.read_bytes(), "text/markdown") for path in paths]
    at.sidebar.file_uploader[0].set_value(files).run()
    assert not at.exception, at.exception


def the_job(data_dir: Path) -> Job:
    [job] = IngestQueue(data_dir).jobs()
    return job


def wait_until(check, what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.1)


def sidebar_text(at: AppTest) -> str:
    return "\n".join(e.value for e in (*at.sidebar.markdown, *at.sidebar.caption))


@pytest.mark.slow
def test_a_question_is_answered_while_an_upload_indexes(pump_env: Path, tmp_path: Path) -> None:
    at = start()
    upload(at, notes(tmp_path / "inbox", 4, 60))
    assert indexing_shown(at), "the upload returned before it was indexed"
    assert "0/4 files" in at.sidebar.get("progress")[0].proto.text

    at.chat_input[0].set_value("How many litres a minute does the P-40 pump move?").run()
    assert not at.exception, at.exception
    answer = at.chat_message[1].markdown[0].value
    assert "40 litres" in answer
    assert the_job(pump_env).active, "the answer waited for the whole upload"

    # Another session (a reload, another tab or user) sees the same progress, but no Cancel:
    # that is for the browser that uploaded.
    other = start()
    assert indexing_shown(other) and "Indexing 4 files" in sidebar_text(other)
    assert not [b for b in other.sidebar.button if b.label == "Cancel"]
    assert [b for b in at.sidebar.button if b.label == "Cancel"]

    indexed(at)
    assert "4 added" in at.toast[0].value
    assert "Last upload:** 4 added" in sidebar_text(at)
    assert "5 document(s) indexed" in sidebar_text(at)
    assert not the_job(pump_env).active
    # The report stays (a reload finds it) until dismissed.
    [dismiss] = [b for b in at.sidebar.button if b.label == "Dismiss"]
    dismiss.click().run()
    assert "Last upload" not in sidebar_text(at)


def test_cancel_in_the_sidebar_keeps_the_files_done(pump_env: Path, tmp_path: Path) -> None:
    at = start()
    upload(at, notes(tmp_path / "inbox", 6, 30))
    wait_until(lambda: the_job(pump_env).files_done >= 1, "the first file")
    at.run()
    [cancel] = [b for b in at.sidebar.button if b.label == "Cancel"]
    cancel.click().run()
    assert not at.exception, at.exception
    assert the_job(pump_env).cancel_requested

    indexed(at)
    job = the_job(pump_env)
    added = [file.name for file in job.files if file.state == "added"]
    assert job.state == "cancelled" and 1 <= len(added) < 6
    assert f"Cancelled after {len(added)} of 6 files: {len(added)} added" in at.toast[0].value
    assert f"{len(added) + 1} document(s) indexed" in sidebar_text(at)


def test_an_admin_may_cancel_a_job_queued_by_someone_else(
    pump_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_ADMIN_PASSWORD", PASSWORD)
    job_id = IngestQueue(pump_env).enqueue_paths(notes(tmp_path / "inbox", 6, 40), "cli", "cli")
    at = start()
    assert "Indexing 6 files** (docqa add)" in sidebar_text(at)
    assert not [b for b in at.sidebar.button if b.label == "Cancel"]
    at.switch_page("app/admin.py").run()
    log_in(at, PASSWORD)
    [cancel] = [b for b in at.sidebar.button if b.label == "Cancel"]
    cancel.click().run()
    assert IngestQueue(pump_env).cancel_requested(job_id)
    assert "Cancelling after the current file" in sidebar_text(at)
