"""Background indexing in Chromium against real `streamlit run`s: asking, reload, cancel, resume."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser_fixtures import Server, start_server, stop_server
from tests.cli_process import run_docqa
from tests.e2e.steps import ask, sidebar, watch_stream
from tests.generated import notes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect.set_options(timeout=60_000)
# A job of several hundred chunks takes minutes on a loaded 2-core machine.
JOB_TIMEOUT_MS = 600_000
EXTRACTIVE = {"DOCQA_LLM_PROVIDER": "extractive"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("background"), EXTRACTIVE)
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One browser (one id cookie) for the module: a reload is the same person."""
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def open_chat(context: BrowserContext, server: Server) -> Page:
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    return page


@pytest.fixture(scope="module")
def page(context: BrowserContext, server: Server) -> Iterator[Page]:
    opened = open_chat(context, server)
    yield opened
    opened.close()


def status(page: Page) -> Locator:
    return sidebar(page).locator(".st-key-indexing_status")


def report(page: Page) -> Locator:
    return sidebar(page).locator(".st-key-indexing_report")


def toast(page: Page, text: str) -> Locator:
    return page.get_by_test_id("stToast").filter(has_text=text)


def record_progress(page: Page) -> None:
    """Keep every text the sidebar's progress bar shows in window.progressTexts."""
    page.evaluate(
        """() => {
            window.progressTexts = [];
            new MutationObserver(() => {
                const bar = document.querySelector(
                    '[data-testid="stSidebar"] [data-testid="stProgress"]');
                const text = bar ? bar.innerText.trim() : '';
                if (text && window.progressTexts.at(-1) !== text) window.progressTexts.push(text);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )


def test_the_chat_answers_while_an_upload_indexes_and_the_progress_survives_a_reload(
    page: Page, context: BrowserContext, server: Server, tmp_path: Path
) -> None:
    pump = tmp_path / "pump.md"
    pump.write_text("# Pump\n\nThe P-40 pump moves 40 litres a minute.\n", encoding="utf-8")
    sidebar(page).locator("input[type=file]").set_input_files([pump])
    expect(sidebar(page)).to_contain_text("1 document(s) indexed")

    record_progress(page)
    sidebar(page).locator("input[type=file]").set_input_files(notes(tmp_path / "big", 5, 60))
    expect(status(page)).to_contain_text("Indexing 5 files")
    answer = ask(page, "How many litres a minute does the P-40 pump move?")
    watch_stream(answer)
    expect(answer).to_contain_text("40 litres")
    # Answered while the job still ran, and the page kept drawing its progress meanwhile.
    expect(status(page)).to_contain_text("files ·")

    reloaded = open_chat(context, server)
    try:
        expect(status(reloaded)).to_contain_text("Indexing 5 files")
        expect(status(reloaded).get_by_role("button", name="Cancel")).to_be_visible()
    finally:
        reloaded.close()

    expect(toast(page, "5 added")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(sidebar(page)).to_contain_text("6 document(s) indexed")
    expect(report(page)).to_contain_text("Last upload: 5 added")
    expect(status(page)).to_have_count(0)
    shown = page.evaluate("window.progressTexts")
    counts = {text.split(" files")[0] for text in shown}
    assert len(counts) >= 3, shown
    assert any("pages ·" in text and "chunks ·" in text for text in shown), shown
    assert any("left" in text for text in shown), shown


def test_cancel_stops_after_the_current_file_and_keeps_what_is_done(
    page: Page, tmp_path: Path
) -> None:
    report(page).get_by_role("button", name="Dismiss").click()
    expect(report(page)).to_have_count(0)
    sidebar(page).locator("input[type=file]").set_input_files(notes(tmp_path / "six", 6, 40))
    expect(status(page).get_by_role("progressbar")).to_be_visible()
    expect(status(page)).to_contain_text(re.compile("[1-5]/6 files"), timeout=JOB_TIMEOUT_MS)
    status(page).get_by_role("button", name="Cancel").click()
    expect(toast(page, "Cancelled after")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    text = report(page).inner_text()
    done = int(text.split("Cancelled after ")[1].split(" of 6")[0])
    assert 1 <= done < 6, text
    assert f"{done} added" in text
    expect(sidebar(page)).to_contain_text(f"{6 + done} document(s) indexed")


def test_docqa_add_beside_the_app_queues_into_it(
    page: Page, server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    notes(folder, 2, 200)  # long enough to be seen running after a reload
    queued = run_docqa("add", str(folder), data_dir=server.data_dir)
    assert queued.returncode == 0, queued.stderr
    assert "Queued 2 files" in queued.stdout and "the app owns the data folder" in queued.stdout
    job = int(queued.stdout.split(" as job ")[1].split(":")[0])
    page.reload()
    expect(status(page)).to_contain_text("Indexing 2 files (docqa add)")
    # Not this browser's job: only the admin or its owner may cancel it.
    expect(status(page).get_by_role("button", name="Cancel")).to_have_count(0)
    expect(status(page)).to_have_count(0, timeout=JOB_TIMEOUT_MS)
    [shown] = json.loads(run_docqa("jobs", str(job), "--json", data_dir=server.data_dir).stdout)
    assert shown["state"] == "done" and [f["state"] for f in shown["files"]] == ["added"] * 2


def test_a_killed_app_resumes_its_job_when_it_is_started_again(
    browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    first = start_server(tmp_path, EXTRACTIVE)
    try:
        page = open_chat(context, first)
        sidebar(page).locator("input[type=file]").set_input_files(notes(tmp_path / "big", 3, 150))
        expect(status(page)).to_contain_text("1/3 files", timeout=JOB_TIMEOUT_MS)
    finally:
        first.process.kill()  # as a crash ends it: no clean shutdown
        first.process.wait()
    again = start_server(tmp_path, EXTRACTIVE)
    try:
        page = open_chat(context, again)
        expect(status(page)).to_contain_text("Indexing 3 files")
        expect(toast(page, "3 added")).to_be_visible(timeout=JOB_TIMEOUT_MS)
        expect(sidebar(page)).to_contain_text("3 document(s) indexed")
        listed = run_docqa("jobs", "1", data_dir=again.data_dir)
        assert listed.stdout.startswith("job 1    done      3/3 files"), listed.stdout
    finally:
        stop_server(again)
        context.close()
