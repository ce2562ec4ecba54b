"""A newcomer's journeys through the real app in a real Chromium, one screenshot per step.

The tests of this module run in order on one browser page (one Streamlit session), as a person
would: upload, ask, follow up, clear, then administer. Set DOCQA_UPDATE_SCREENSHOTS=1 to also
refresh the README's screenshots in app/static/screenshots/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from llm.models.packaged import model_label
from llm.settings import DEFAULT_LOCAL_MODEL
from tests.e2e.steps import (
    CHAT_PLACEHOLDER,
    ask,
    messages,
    sidebar,
    wait_idle,
    wait_uncovered,
    watch_stream,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# The first upload loads the embedding model and every rerun redraws the page: be patient.
expect.set_options(timeout=60_000)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_DIR = REPO_ROOT / "artifacts" / "screenshots"
README_SCREENSHOTS_DIR = REPO_ROOT / "app" / "static" / "screenshots"
README_SCREENSHOT_MAX_BYTES = 300_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def snap(page: Page, name: str, readme: str | None = None) -> None:
    """A screenshot of this step; with DOCQA_UPDATE_SCREENSHOTS=1, also the README's copy."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS_DIR / f"{name}.png"), full_page=False)
    if readme and os.environ.get("DOCQA_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = README_SCREENSHOTS_DIR / readme
        page.screenshot(path=str(path), full_page=False)
        size = path.stat().st_size
        assert size < README_SCREENSHOT_MAX_BYTES, f"{path} is {size} bytes"


def open_page(browser: Browser, server: Any, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    yield page
    context.close()


@pytest.fixture(scope="module")
def page(browser: Browser, chat_server: Any) -> Iterator[Page]:
    yield from open_page(browser, chat_server, DESKTOP)


def alert(page: Page, text: str) -> Locator:
    return page.get_by_test_id("stAlert").filter(has_text=text)


def open_tab(page: Page, name: str) -> None:
    # The Admin page falls back to its first tab whenever a notice appears or goes above the tabs.
    # Choosing a tab also reruns the page: a field typed into before that rerun lands is redrawn
    # with its old value, so wait for it.
    tab = page.get_by_role("tab", name=name)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    wait_idle(page)


def tick_row(page: Page, table: Locator, row: int) -> None:
    """Tick a data row's checkbox (1 = first row under the header) in an st.dataframe."""
    # The grid is drawn on a canvas under an overlay: click where the checkbox is painted.
    canvas = table.get_by_test_id("data-grid-canvas")
    rows = int(canvas.locator("table").get_attribute("aria-rowcount"))
    box = canvas.bounding_box()
    row_height = box["height"] / rows
    page.mouse.click(box["x"] + 16, box["y"] + row_height * (row + 0.5))


def record_progress(page: Page) -> None:
    """Keep every text the page's progress bars show, however briefly, in window.progressTexts."""
    page.evaluate(
        """() => {
            window.progressTexts = [];
            new MutationObserver(() => {
                for (const bar of document.querySelectorAll('[data-testid="stProgress"]')) {
                    const text = bar.innerText.trim();
                    if (text && window.progressTexts.at(-1) !== text) {
                        window.progressTexts.push(text);
                    }
                }
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )


def expand_json(viewer: Locator) -> None:
    """Open every collapsed node of an st.json viewer."""
    ellipsis = viewer.locator(".node-ellipsis")
    for _ in range(50):
        if not ellipsis.count():
            return
        ellipsis.first.click()
    pytest.fail("the JSON viewer kept collapsed nodes after 50 clicks")


# -- chat page ----------------------------------------------------------------------------------


def test_empty_index_says_what_to_do(page: Page) -> None:
    expect(page.get_by_text("No documents yet")).to_be_visible()
    expect(page.get_by_role("button", name="Load the sample documents")).to_be_visible()
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_disabled()
    snap(page, "01-empty-index")


def test_upload_two_pdfs_and_a_corrupt_file(page: Page, good_pdfs: Path, bad_pdfs: Path) -> None:
    uploader = sidebar(page).locator("input[type=file]")
    uploader.set_input_files(
        [
            good_pdfs / "crazyones-pdfa.pdf",
            good_pdfs / "google-doc-document.pdf",
            bad_pdfs / "truncated.pdf",
        ]
    )
    error = page.get_by_test_id("stAlert").filter(has_text="truncated.pdf")
    expect(error).to_contain_text("was not added")
    expect(error).to_contain_text("damaged")
    expect(page.get_by_test_id("stToast")).to_contain_text("2 added, 1 could not be read")
    expect(sidebar(page)).to_contain_text("2 document(s) indexed")
    expect(page.get_by_text("No documents yet")).to_have_count(0)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled()
    snap(page, "02-uploaded-with-error")


def test_answer_streams_in_with_sources(page: Page) -> None:
    answer = ask(page, "Who are the crazy ones?")
    # While the model reads its passages, the page says which: file and page.
    expect(answer.get_by_text("Reading crazyones-pdfa.pdf (page 1)")).to_be_visible()
    partial = [text for text in watch_stream(answer) if "writing the answer" not in text]
    assert len(partial) >= 2, f"the answer did not stream in: {partial}"
    expect(answer.get_by_test_id("stCaptionContainer").last).to_contain_text(
        model_label(DEFAULT_LOCAL_MODEL)
    )
    # The evidence shows without a click: a quote of the passage, with its file and page.
    expect(answer.get_by_text("From your documents")).to_be_visible()
    expect(answer.get_by_test_id("stMarkdownContainer").filter(has_text="“").first).to_be_visible()
    expect(answer.get_by_role("button", name="crazyones-pdfa.pdf, page 1").first).to_be_visible()
    sources = answer.get_by_test_id("stExpander")
    sources.get_by_text("Sources (").click()
    expect(sources).to_contain_text("crazyones-pdfa.pdf")
    expect(sources).to_contain_text("page 1")
    expect(sidebar(page).get_by_role("button", name="New chat")).to_be_enabled()
    # Question, answer and the opened sources in one view: from the top of the page.
    wait_idle(page)
    # Streamlit keeps a chat pinned to its end; scroll the question itself into view.
    messages(page).first.scroll_into_view_if_needed()
    expect(messages(page).first).to_be_in_viewport()
    snap(page, "03-answer-with-sources", readme="chat.png")


def test_first_citation_opens_its_page_with_the_quote_marked(page: Page, good_pdfs: Path) -> None:
    answer = messages(page).nth(1)
    evidence = answer.get_by_test_id("stVerticalBlock").filter(has_text="From your documents").last
    quote = evidence.get_by_test_id("stMarkdownContainer").filter(has_text="“").first
    quoted = quote.inner_text().split("“", 1)[1].rsplit("”", 1)[0]
    evidence.get_by_role("button", name="crazyones-pdfa.pdf, page 1").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("crazyones-pdfa.pdf · page 1 of 1 · passage marked")
    picture = dialog.locator(".docqa-page img")
    expect(picture).to_be_visible()
    expect(dialog.locator(".docqa-mark").first).to_be_attached()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.docqa-page img')].every(i => i.complete)"
    )
    # Where the quote's longest word stands on the page, asked of PDFium independently of how
    # the app placed its marks: one mark on screen must cover it.
    word = word_box(good_pdfs / "crazyones-pdfa.pdf", max(re.findall(r"\w+", quoted), key=len))
    shown = picture.bounding_box()
    target = {
        "x": shown["x"] + word[0] * shown["width"],
        "y": shown["y"] + word[1] * shown["height"],
        "width": (word[2] - word[0]) * shown["width"],
        "height": (word[3] - word[1]) * shown["height"],
    }
    marks = [box for mark in dialog.locator(".docqa-mark").all() if (box := mark.bounding_box())]
    assert any(overlap(mark, target) > 0.5 for mark in marks), (quoted, target, marks)
    wait_idle(page)
    snap(page, "03b-citation-page-preview", readme="preview.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def word_box(pdf: Path, word: str) -> tuple[float, float, float, float]:
    """The first place `word` stands on page 1, as fractions of the page from its top left."""
    with pypdfium2.PdfDocument(pdf.read_bytes()) as document:
        pdf_page = document[0]
        width, height = pdf_page.get_size()
        text_page = pdf_page.get_textpage()
        start, count = text_page.search(word, match_case=False).get_next()
        text_page.count_rects(start, count)
        left, bottom, right, top = text_page.get_rect(0)
        return left / width, 1 - top / height, right / width, 1 - bottom / height


def overlap(mark: dict[str, float], target: dict[str, float]) -> float:
    """Share of `target`'s area that `mark` covers."""
    across = min(mark["x"] + mark["width"], target["x"] + target["width"]) - max(
        mark["x"], target["x"]
    )
    down = min(mark["y"] + mark["height"], target["y"] + target["height"]) - max(
        mark["y"], target["y"]
    )
    return max(0, across) * max(0, down) / (target["width"] * target["height"])


def test_follow_up_question_is_searched_with_the_conversation(page: Page) -> None:
    answer = ask(page, "When was it written?")
    watch_stream(answer)
    expect(answer.get_by_test_id("stMarkdownContainer").first).not_to_be_empty()
    expect(answer).to_contain_text("crazyones-pdfa.pdf")
    expect(messages(page)).to_have_count(4)
    # "It" is the poem of the first question: the follow-up is searched beside that question, so
    # the model reads the poem's lines, the earlier question and the follow-up as asked, and
    # not the earlier answer (no assistant turn in the prompt).
    prompt = sidebar(page).get_by_test_id("stExpander").filter(has_text="Prompt sent")
    prompt.get_by_text("Prompt sent (last answer)").click()
    viewer = prompt.get_by_test_id("stJson")
    expand_json(viewer)
    expect(viewer).to_contain_text("crazy ones", ignore_case=True)
    expect(viewer).to_contain_text(
        "Earlier question: Who are the crazy ones?\\n\\nQuestion: When was it written?"
    )
    expect(viewer).to_contain_text('"role":"user"')
    expect(viewer).not_to_contain_text('"role":"assistant"')
    snap(page, "04-follow-up")


def test_thumbs_up_on_the_first_answer(page: Page) -> None:
    first = messages(page).nth(1)
    thumbs_up = first.get_by_role("radio", name="Thumbs up")
    thumbs_up.click()
    expect(thumbs_up).to_have_attribute("aria-checked", "true")
    expect(first.get_by_label("Comment (optional)")).to_be_visible()
    snap(page, "05-thumbs-up")


def test_trace_link_opens_the_trace_in_a_new_tab(page: Page) -> None:
    link = messages(page).nth(1).get_by_role("link", name="View trace")
    trace_id = link.get_attribute("href").split("trace=", 1)[1]
    # A middle click, as a person opens a link in a new tab (Streamlit handles plain clicks).
    with page.context.expect_page() as opened:
        link.click(button="middle")
    tab = opened.value
    try:
        expect(tab.get_by_role("heading", name="Traces", exact=True)).to_be_visible()
        expect(tab.get_by_text(f"trace {trace_id}")).to_be_visible()
        expect(tab.get_by_text("Who are the crazy ones?").first).to_be_visible()
        expect(tab.get_by_role("heading", name="Retrieved chunks (3)")).to_be_visible()
        chunks = tab.get_by_test_id("stDataFrame").first.locator("table")
        expect(chunks).to_contain_text("crazyones-pdfa.pdf")
        expect(tab.get_by_role("heading", name="Prompt sent to the model")).to_be_visible()
        expect(tab.get_by_text("Feedback: 👍")).to_be_visible()
        expect(tab.get_by_test_id("stSkeleton")).to_have_count(0)
        snap(tab, "06-trace", readme="traces.png")
    finally:
        tab.close()


def test_new_chat(page: Page) -> None:
    clear = sidebar(page).get_by_role("button", name="New chat")
    clear.click()
    expect(messages(page)).to_have_count(0)
    expect(clear).to_be_disabled()
    snap(page, "07-chat-cleared")


# -- admin page ---------------------------------------------------------------------------------


def test_admin_wrong_then_right_password(page: Page, chat_server: Any) -> None:
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin")).to_be_visible()
    password = page.get_by_label("Admin password")
    password.fill("not the password")
    page.get_by_role("button", name="Unlock").click()
    expect(alert(page, "Wrong password")).to_be_visible()
    snap(page, "08-admin-wrong-password")
    password.fill(chat_server.admin_password)
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("Index health")).to_be_visible()
    documents = page.get_by_test_id("stMetric").filter(has_text="Documents")
    expect(documents).to_contain_text("2")
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)
    snap(page, "09-admin-overview", readme="admin.png")


def test_admin_delete_a_document(page: Page) -> None:
    open_tab(page, "Documents")
    page.get_by_label("Search by name or id").fill("crazyones")
    page.get_by_label("Search by name or id").press("Enter")
    table = page.get_by_test_id("stDataFrame")
    expect(table.locator("tr[role=row]")).to_have_count(2)  # the header and the one match
    expect(table.locator("tr[role=row]").nth(1)).to_contain_text("crazyones-pdfa.pdf")
    tick_row(page, table, 1)
    page.get_by_role("button", name="Delete 1 selected…").click()
    expect(alert(page, "Delete 1 document(s) for good?")).to_be_visible()
    snap(page, "10-admin-confirm-delete")
    page.get_by_role("button", name="Yes, delete").click()
    expect(alert(page, "Deleted 1 document(s): crazyones-pdfa.pdf")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Documents")).to_contain_text("1")
    open_tab(page, "Documents")
    expect(page.get_by_text("0 of 1 document(s) shown")).to_be_visible()


def test_admin_reindex_with_a_new_chunk_size(page: Page) -> None:
    open_tab(page, "Reindex")
    record_progress(page)
    chunk_size = page.get_by_label("Chunk size (characters)")
    chunk_size.fill("500")
    expect(chunk_size).to_have_value("500")
    # Enter commits the typed value and submits the form in one step.
    chunk_size.press("Enter")
    expect(alert(page, "Reindexed 1 document(s)")).to_be_visible(timeout=120_000)
    shown = page.evaluate("window.progressTexts")
    assert shown[0].startswith("Starting"), shown
    assert shown[-1].startswith("1/1 files"), shown
    snap(page, "11-admin-reindexed")
    open_tab(page, "Overview")
    expect(page.get_by_text("500 characters, 150 overlap")).to_be_visible()


# -- limits and small screens (instant extractive answers, a bucket of two questions) ------------


@pytest.fixture(scope="module")
def limited_page(browser: Browser, limited_server: Any) -> Iterator[Page]:
    yield from open_page(browser, limited_server, DESKTOP)


def test_samples_in_one_click_then_rate_limit_warns(limited_page: Page) -> None:
    page = limited_page
    page.get_by_role("button", name="Load the sample documents").click()
    expect(page.get_by_test_id("stToast")).to_contain_text("4 added")
    expect(sidebar(page)).to_contain_text("4 document(s) indexed")
    for question in ("Who are the misfits?", "What is the capital of France?"):
        watch_stream(ask(page, question))
    blocked = ask(page, "Who are the troublemakers?")
    expect(blocked.get_by_test_id("stAlert")).to_contain_text("Please wait")
    wait_uncovered(page, blocked.get_by_test_id("stAlert"))
    expect(blocked.get_by_test_id("stExpander")).to_have_count(0)
    snap(page, "12-rate-limited")


@pytest.fixture
def phone_page(browser: Browser, limited_server: Any) -> Iterator[Page]:
    yield from open_page(browser, limited_server, PHONE)


def test_phone_width_chat_is_usable(phone_page: Page) -> None:
    page = phone_page
    watch_stream(ask(page, "Who are the rebels?"))
    expect(page.get_by_placeholder(CHAT_PLACEHOLDER)).to_be_in_viewport()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"horizontal scroll: {scroll_width} px wide"
    snap(page, "13-phone-width", readme="mobile.png")
