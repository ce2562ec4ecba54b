"""Accounts in a real Chromium against a real `streamlit run`: sign in, ask, reload and still be
signed in with the conversation listed, find it from another device, sign out for good; and two
app replicas on one PostgreSQL database sharing accounts, conversations and lockouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from llm.access.accounts import Accounts
from llm.records.database import database_url, open_database
from llm.settings import load_settings
from tests.browser_fixtures import start_server, stop_server
from tests.e2e.steps import ask, messages, sidebar, wait_idle
from tests.servers import fresh_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect.set_options(timeout=60_000)

NAME, PASSWORD = "ada", "ada's long password"
QUESTION = "Who are the crazy ones?"


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("accounts_server")
    # The account exists before the app starts, as `docqa users add` would leave it.
    settings = load_settings(data_dir=root / "data")
    Accounts(open_database(database_url(settings))).create(NAME, PASSWORD)
    server = start_server(root, {"DOCQA_LLM_PROVIDER": "extractive"})
    yield server
    stop_server(server)


def sign_in(page: Page) -> None:
    expect(page.get_by_role("heading", name="Sign in to DocQA")).to_be_visible()
    page.get_by_role("textbox", name="Name").fill(NAME)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    expect(sidebar(page)).to_contain_text(f"Signed in as {NAME}")


def test_a_sign_in_and_its_conversation_outlive_a_reload(
    browser: Browser, accounts_server: Any, good_pdfs: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(accounts_server.url)
    expect(page.get_by_placeholder("Ask a question about your documents")).to_have_count(0)
    sign_in(page)

    sidebar(page).locator("input[type=file]").set_input_files([good_pdfs / "crazyones-pdfa.pdf"])
    expect(sidebar(page)).to_contain_text("1 document(s) indexed")
    answer = ask(page, QUESTION)
    expect(answer.get_by_test_id("stExpander")).to_be_visible()
    answered = answer.get_by_test_id("stMarkdownContainer").first.inner_text()
    wait_idle(page)

    # A reload is a new Streamlit session: the cookie signs it in again.
    page.reload()
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    expect(sidebar(page)).to_contain_text(f"Signed in as {NAME}")
    kept = sidebar(page).get_by_role("button", name=QUESTION)
    kept.click()
    expect(messages(page)).to_have_count(2)
    expect(messages(page).nth(1)).to_contain_text(answered[:40])

    # Another device: signs in itself, then finds the same conversation.
    other = browser.new_context().new_page()
    other.goto(accounts_server.url)
    sign_in(other)
    expect(sidebar(other).get_by_role("button", name=QUESTION)).to_be_visible()
    other.context.close()

    # Signing out holds across a reload: the sign-in page, and nothing of the conversation.
    sidebar(page).get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to DocQA")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to DocQA")).to_be_visible()
    expect(page.get_by_text(QUESTION)).to_have_count(0)
    context.close()


@pytest.mark.postgres
def test_two_replicas_on_one_postgresql_share_accounts_conversations_and_lockouts(
    browser: Browser,
    postgres_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    good_pdfs: Path,
) -> None:
    url = fresh_database(postgres_server, "replicas")
    Accounts(open_database(url)).create(NAME, PASSWORD)
    env = {"DOCQA_LLM_PROVIDER": "extractive", "DOCQA_DATABASE_URL": url}
    first = start_server(tmp_path_factory.mktemp("replica_a"), env)
    second = start_server(tmp_path_factory.mktemp("replica_b"), env)
    try:
        on_a = browser.new_context().new_page()
        on_a.goto(first.url)
        sign_in(on_a)
        sidebar(on_a).locator("input[type=file]").set_input_files(
            [good_pdfs / "crazyones-pdfa.pdf"]
        )
        expect(sidebar(on_a)).to_contain_text("1 document(s) indexed")
        answer = ask(on_a, QUESTION)
        expect(answer.get_by_test_id("stExpander")).to_be_visible()
        answered = answer.get_by_test_id("stMarkdownContainer").first.inner_text()
        wait_idle(on_a)

        # Replica B (another data folder, the same database): the conversation is there.
        on_b = browser.new_context().new_page()
        on_b.goto(second.url)
        sign_in(on_b)
        sidebar(on_b).get_by_role("button", name=QUESTION).click()
        expect(messages(on_b)).to_have_count(2)
        expect(messages(on_b).nth(1)).to_contain_text(answered[:40])

        # Wrong passwords on A lock the name on B.
        intruder = browser.new_context().new_page()
        intruder.goto(first.url)
        for said in ("4 more tries", "3 more tries", "2 more tries", "1 more try", "Wait 30 s"):
            intruder.get_by_role("textbox", name="Name").fill(NAME)
            intruder.get_by_role("textbox", name="Password").fill("not the password")
            intruder.get_by_role("button", name="Sign in").click()
            expect(intruder.get_by_test_id("stAlert")).to_contain_text(said)
        other = browser.new_context().new_page()
        other.goto(second.url)
        other.get_by_role("textbox", name="Name").fill(NAME)
        other.get_by_role("textbox", name="Password").fill(PASSWORD)
        other.get_by_role("button", name="Sign in").click()
        expect(other.get_by_text("Too many wrong tries for this name")).to_be_visible()
    finally:
        stop_server(first)
        stop_server(second)
