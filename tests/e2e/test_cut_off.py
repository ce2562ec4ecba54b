"""A reader who asks again while an answer is still streaming, in a real Chromium: the answer
cut off is billed for what it cost, so no spending cap misses it, and kept in the conversation.

The model is the scripted OpenAI-compatible server (tests/scripted_openai.py), streaming slowly
enough to be interrupted: no real paid provider can be reached here, and the local model is
free, so its cut-off answers are not billed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from llm.records.database import DATABASE_FILE, open_database
from llm.records.tables import ledger_calls
from tests.browser_fixtures import Server, start_server, stop_server
from tests.e2e.steps import ask, messages, sidebar, wait_idle
from tests.scripted_openai import Listener, scripted_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect.set_options(timeout=60_000)
# ~70 words at 0.15 s each: ~10 s of streaming, time enough to ask again midway. Each sentence
# differs: an answer that writes a sentence again is stopped there.
ANSWER = " ".join(
    f"Reason {n}: the crazy ones are the misfits, the rebels and the troublemakers [1]."
    for n in range(1, 7)
)
WORD_DELAY_S = 0.15


@pytest.fixture(scope="module")
def slow_model() -> Iterator[Listener]:
    model = Listener(reply=scripted_model(ANSWER, word_delay_s=WORD_DELAY_S))
    yield model
    model.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, slow_model: Listener) -> Iterator[Server]:
    started = start_server(
        tmp_path_factory.mktemp("cut_off"),
        {
            "DOCQA_LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-scripted-test-key",
            "OPENAI_BASE_URL": f"{slow_model.url}/v1",
        },
    )
    yield started
    stop_server(started)


def billed(server: Server) -> list[tuple[int, int, bool]]:
    engine = open_database(f"sqlite:///{server.data_dir / DATABASE_FILE}")
    columns = (ledger_calls.c.input_tokens, ledger_calls.c.output_tokens, ledger_calls.c.estimated)
    with engine.connect() as db:
        rows = db.execute(sa.select(*columns).order_by(ledger_calls.c.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_an_answer_cut_off_by_a_new_question_is_billed(
    browser: Browser, server: Server, slow_model: Listener, good_pdfs: Path
) -> None:
    page: Page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url)
    sidebar(page).locator("input[type=file]").set_input_files([good_pdfs / "crazyones-pdfa.pdf"])
    expect(sidebar(page)).to_contain_text("1 document(s) indexed", timeout=180_000)

    first = ask(page, "Who are the crazy ones?")
    expect(first).to_contain_text("misfits")  # streaming has begun
    chat_input = page.get_by_placeholder("Ask a question about your documents")
    chat_input.fill("Why do they push the human race forward?")
    chat_input.press("Enter")
    expect(page.get_by_role("link", name="View trace")).to_have_count(1, timeout=120_000)
    time.sleep(1)

    calls = sum(path.endswith("/chat/completions") for path in slow_model.paths)
    rows = billed(server)
    # The first answer, cut off; then the second question, now a follow-up of the first: the
    # model condenses it, then answers (two calls on one ledger row).
    assert calls == 3 and len(rows) == 2, (calls, rows)
    (cut_in, cut_out, cut_estimated), kept = rows
    # The cut-off answer: its prompt and what had streamed, counted locally.
    assert cut_estimated and cut_in > 0 and cut_out > 0
    # The answer kept: the usage the provider reported (tests/scripted_openai.py's USAGE, twice).
    assert kept == (2 * 50, 2 * 40, False)
    # The question cut off stays, with what was written of its answer, marked as stopped.
    shown = [message.inner_text() for message in messages(page).all()]
    assert len(shown) == 4, shown
    assert "Who are the crazy ones?" in shown[0]
    assert "misfits" in shown[1] and "stopped before it was finished" in shown[1]
    assert "misfits" in shown[3] and "stopped before" not in shown[3]

    # Kept as it was shown: reopened from the sidebar, the conversation holds both questions.
    wait_idle(page)
    sidebar(page).get_by_role("button", name="New chat").click()
    expect(messages(page)).to_have_count(0)
    sidebar(page).get_by_role("button", name="Who are the crazy ones?").click()
    expect(messages(page)).to_have_count(4)
    reopened = [message.inner_text() for message in messages(page).all()]
    assert reopened[1].startswith(shown[1][:60]), (reopened[1], shown[1])
    assert "stopped before it was finished" in reopened[1]
    assert "Why do they push" in reopened[2] and "stopped before" not in reopened[3]
