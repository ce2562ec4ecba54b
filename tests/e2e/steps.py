"""Steps a person takes on the chat page, shared by the browser journeys."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Locator, Page, expect

# The local model needs ~20 s for a first answer on 2 cores and ~40 s for a follow-up (it rewrites
# the question first); the margin is for a loaded CI machine.
ANSWER_TIMEOUT_MS = 240_000
CHAT_PLACEHOLDER = "Ask a question about your documents"


def messages(page: Page) -> Locator:
    return page.get_by_test_id("stChatMessage")


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def wait_idle(page: Page) -> None:
    """Until the script run (and the rerun an answer ends with) is over, as a reader would wait."""
    idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    for _ in range(2):  # twice: an answer's run ends with st.rerun, which starts another run
        expect(idle).to_have_count(1)
        expect(page.locator('[data-stale="true"]')).to_have_count(0)
        page.wait_for_timeout(300)


def ask(page: Page, question: str) -> Locator:
    """Send a question once the app is idle; the locator of the assistant message answering it."""
    wait_idle(page)
    before = messages(page).count()
    chat_input = page.get_by_placeholder(CHAT_PLACEHOLDER)
    chat_input.fill(question)
    chat_input.press("Enter")
    return messages(page).nth(before + 1)


def wait_uncovered(page: Page, element: Locator, timeout_s: float = 15) -> None:
    """Until the element is on screen above the chat input (the page scrolls after new content)."""
    chat_input = page.get_by_test_id("stChatInput")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        box, floor = element.bounding_box(), chat_input.bounding_box()
        if box and floor and box["y"] >= 0 and box["y"] + box["height"] <= floor["y"]:
            return
        time.sleep(0.2)
    pytest.fail(f"{element} stayed hidden behind the chat input or off screen")


def watch_stream(answer: Locator, timeout_ms: int = ANSWER_TIMEOUT_MS) -> list[str]:
    """The texts the answer showed while it was written, until its Sources expander appears."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_ms / 1000
    sources = answer.get_by_test_id("stExpander")
    while time.monotonic() < deadline:
        if sources.count():
            return seen
        markdown = answer.get_by_test_id("stMarkdownContainer")
        if markdown.count():
            try:
                text = markdown.first.inner_text(timeout=1_000).strip()
            except Exception:  # the element was replaced by a rerun between count and read
                text = ""
            if text and "Searching" not in text and (not seen or seen[-1] != text):
                seen.append(text)
        time.sleep(0.2)
    pytest.fail(f"no finished answer after {timeout_ms / 1000:.0f} s; saw {seen[-3:]}")
