"""The chat page in Streamlit's real runtime (AppTest): upload, ask, stream, sources, clear."""

from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path

import docx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from streamlit.testing.v1 import AppTest

from app import resources
from ingest.formats.ocr import Ocr
from llm.answering.attribution import CUT_SHORT_NOTE
from tests.app_pages import indexed, indexing_shown, page_text
from tests.made_documents import FACTS, made_files, zip_bomb
from tests.scripted_openai import Listener, scripted_model

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def chat_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    return data_dir


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, *paths: Path) -> None:
    at.sidebar.file_uploader[0].set_value(
        [(path.name, path.read_bytes(), "application/pdf") for path in paths]
    )
    at.run()
    assert not at.exception, at.exception
    indexed(at)


def ask(at: AppTest, question: str) -> None:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception


def assistant_texts(at: AppTest) -> list[str]:
    return [m.markdown[0].value for m in at.chat_message if m.name == "assistant"]


def visible_text(node) -> list[str]:
    """Text of the elements under `node` that show without a click (not inside an expander)."""
    if getattr(node, "type", None) == "expander":
        return []
    children = getattr(node, "children", None)
    if children is None:
        value = getattr(node, "value", None)
        return [value] if isinstance(value, str) else []
    return [text for child in children.values() for text in visible_text(child)]


def test_empty_index_says_what_to_do_and_loads_samples(chat_env: Path) -> None:
    at = start()
    assert "No documents yet" in at.info[0].value
    assert at.chat_input[0].disabled
    [load] = [b for b in at.button if b.label == "Load the sample documents"]
    load.click().run()
    assert not at.exception, at.exception
    assert indexing_shown(at)
    indexed(at)
    assert "4 added" in at.toast[0].value
    assert not at.chat_input[0].disabled


def test_upload_ask_sources_and_clear(chat_env: Path, good_pdfs: Path, bad_pdfs: Path) -> None:
    at = start()
    upload(
        at,
        good_pdfs / "crazyones-pdfa.pdf",
        good_pdfs / "google-doc-document.pdf",
        bad_pdfs / "truncated.pdf",
    )
    errors = [e.value for e in at.error]
    assert any("truncated.pdf" in e and "damaged" in e for e in errors), errors
    assert "2 added" in at.toast[0].value

    ask(at, "Who are the crazy ones, the misfits and the rebels?")
    answer = assistant_texts(at)[0]
    assert "[1]" in answer and "misfits" in answer.lower()
    # The quote and where it stands (file and page) show without opening anything.
    shown = "\n".join(visible_text(at.chat_message[1]))
    assert "misfits" in shown.lower() and "[1] crazyones-pdfa.pdf, page 1" in shown
    assert "similarity" not in shown  # the full source list stays in its closed expander
    sources = at.chat_message[1].expander[0]
    assert sources.label.startswith("Sources")
    assert "crazyones-pdfa.pdf" in sources.markdown[0].value
    assert "page 1" in sources.markdown[0].value

    # Each source opens its page, drawn, with the passage marked on it.
    show = next(b for b in sources.button if b.label == "Show page 1")
    show.click().run()
    assert not at.exception, at.exception
    [drawn] = [h for h in at.get("html") if "docqa-page" in h.proto.body]
    assert drawn.proto.body.count('class="docqa-mark"') >= 3  # the passage runs over 3+ lines
    assert "crazyones-pdfa.pdf** · page 1 of 1" in page_text(at)

    ask(at, "And what is the capital of France in the table?")
    assert len(assistant_texts(at)) == 2

    [clear] = [b for b in at.sidebar.button if b.label == "New chat"]
    clear.click().run()
    assert not at.chat_message


def test_a_text_source_shows_the_passage_marked_in_its_text(
    chat_env: Path, good_pdfs: Path
) -> None:
    at = start()
    upload(at, good_pdfs / "latin1-recipe.txt")
    ask(at, "How long does the crème brûlée cook?")
    sources = at.chat_message[1].expander[0]
    next(b for b in sources.button if b.label == "Show page 1").click().run()
    assert not at.exception, at.exception
    [shown] = [h.proto.body for h in at.get("html") if "docqa-text" in h.proto.body]
    # Read with the file's own encoding (Latin-1), escaped, the passage inside the mark.
    assert '<mark class="docqa-mark">' in shown and "45 minutes à 150 degrés" in shown
    download = at.get("download_button")[0]
    assert download.proto.label == "Download latin1-recipe.txt"


class CountCalls(BaseCallbackHandler):
    def __init__(self) -> None:
        self.calls = 0

    def on_chat_model_start(self, *args, **kwargs) -> None:
        self.calls += 1


@pytest.mark.slow
def test_local_model_answer_streams_and_repeats_come_from_cache(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "local")
    monkeypatch.setenv("DOCQA_MAX_ANSWER_TOKENS", "48")
    at = start()
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    choice = resources.chat_model(resources.settings())
    counter = CountCalls()
    choice.chat_model.callbacks = [counter]
    try:
        ask(at, "What date is on The Crazy Ones?")
        first = at.chat_message[1]
        assert first.markdown[0].value.strip()
        assert "SmolLM2" in first.caption[-1].value
        assert counter.calls == 1

        at.session_state.messages = []
        ask(at, "what date is on the crazy ones")
        assert counter.calls == 1, "a repeated question must not call the model again"
        assert "cached answer" in at.chat_message[1].caption[-1].value
        assert at.chat_message[1].markdown[0].value == first.markdown[0].value

        index = resources.index(resources.settings())
        index.reindex(index.config)
        at.session_state.messages = []
        ask(at, "What date is on The Crazy Ones?")
        assert counter.calls == 2, "a reindex must make cached answers stale"
        assert "cached answer" not in at.chat_message[1].caption[-1].value
    finally:
        choice.chat_model.callbacks = None


@pytest.mark.slow
def test_the_local_model_loads_in_the_background_once_there_is_something_to_ask(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "local")
    monkeypatch.setenv("DOCQA_MAX_ANSWER_TOKENS", "32")
    loads: list[str] = []
    loaded = threading.Event()
    load_model = resources._loaded_model

    def recorded(current):
        loads.append(threading.current_thread().name)
        choice = load_model(current)
        loaded.set()
        return choice

    monkeypatch.setattr(resources, "_loaded_model", recorded)
    resources._model_load.clear()
    at = start()
    assert loads == [], "with nothing indexed there is nothing to ask yet"

    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    # Loaded with no question asked, off the page's own thread.
    assert loaded.wait(timeout=120)
    assert len(loads) == 1 and loads[0].startswith("docqa-model-load")

    ask(at, "What date is on The Crazy Ones?")
    assert at.chat_message[1].markdown[0].value.strip()
    assert "SmolLM2" in at.chat_message[1].caption[-1].value
    assert len(loads) == 1, "the question used the model loaded in the background"


def test_an_answer_cut_at_its_length_limit_says_so_under_the_text(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    """The provider is a scripted OpenAI-compatible server (no real model stops on cue)."""
    written = "The crazy ones are the misfits and the rebels [1]. Because they change"
    server = Listener(reply=scripted_model(written, finish_reason="length"))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    try:
        at = start()
        upload(at, good_pdfs / "crazyones-pdfa.pdf")
        ask(at, "Who are the crazy ones?")
    finally:
        server.close()
    answer = at.chat_message[1]
    assert "misfits and the rebels" in answer.markdown[0].value
    assert "Because they change" not in answer.markdown[0].value
    assert any(CUT_SHORT_NOTE in caption.value for caption in answer.caption)


def test_spending_cap_reached_answers_without_the_model(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    """Over the daily cap, no OpenAI call is made (none could be: there is no network here)."""
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("DOCQA_CAP_DAILY_USD", "0.01")
    resources.ledger(resources.settings()).record(
        "openai", "gpt-4o-mini", 100_000, 10_000, (0.15, 0.60), False
    )
    at = start()
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who are the crazy ones, the misfits and the rebels?")
    [notice] = [i for i in at.info if "spending cap" in i.value]
    assert "day spending cap ($0.01) is reached" in notice.value and "UTC" in notice.value
    assert "Extractive" in at.chat_message[1].caption[-1].value
    assert "misfits" in assistant_texts(at)[0].lower()


def test_rate_limit_warns_and_does_not_answer(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_RATE_LIMIT_CAPACITY", "2")
    monkeypatch.setenv("DOCQA_RATE_LIMIT_PER_MINUTE", "1")
    at = start()
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "first question about rebels")
    ask(at, "second question about misfits")
    ask(at, "third question about troublemakers")
    kept = [m.content for m in at.session_state.messages if m.role == "assistant"]
    assert len(kept) == 2, "the third question must not be answered"
    [warning] = [w for w in at.warning if "Too many questions" in w.value]
    assert "wait" in warning.value and "seconds" in warning.value
    assert "third question about troublemakers" in warning.value


@pytest.mark.slow
def test_missing_api_key_says_so_and_uses_the_local_model(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "openai")
    monkeypatch.setenv("DOCQA_MAX_ANSWER_TOKENS", "24")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = start()
    [warning] = at.sidebar.warning
    assert "no OPENAI_API_KEY is set" in warning.value and "Local model" in warning.value
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who are the misfits?")
    assert assistant_texts(at)[0].strip()
    assert "SmolLM2" in at.chat_message[1].caption[-1].value


def test_unreachable_model_server_is_reported_not_crashed(
    chat_env: Path, monkeypatch: pytest.MonkeyPatch, good_pdfs: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}/v1")
    at = start()
    upload(at, good_pdfs / "crazyones-pdfa.pdf")
    ask(at, "Who are the misfits?")
    assert any("could not answer" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.session_state.messages
    assert all("sk-test-not-a-real-key" not in e.value for e in at.error)


def test_a_data_dir_from_a_newer_release_is_refused_on_the_page(chat_env: Path) -> None:
    """Opening it with older code could corrupt it: the page says so instead of a traceback."""
    with sqlite3.connect(chat_env / "docqa.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    at = start()
    [error] = at.error
    assert "a newer release wrote it" in error.value and "docqa.sqlite3" in error.value
    assert not at.chat_input


@pytest.mark.slow
def test_every_format_uploads_and_sources_name_its_slide_sheet_heading_or_ocr_page(
    chat_env: Path, tesseract: Ocr, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_RATE_LIMIT_CAPACITY", str(len(FACTS)))
    at = start()
    files = [*made_files().items(), ("bomb.pptx", zip_bomb())]
    at.sidebar.file_uploader[0].set_value(
        [(name, data, "application/octet-stream") for name, data in files]
    )
    at.run()
    assert not at.exception, at.exception
    indexed(at)
    assert f"{len(FACTS)} added, 1 could not be read" in at.toast[0].value
    [error] = [e.value for e in at.error]
    assert "**bomb.pptx** was not added" in error and "zip bomb" in error

    for fact in FACTS:
        if at.chat_message:
            # A new conversation: a follow-up would be searched with the question before it.
            [clear] = [b for b in at.sidebar.button if b.label == "New chat"]
            clear.click().run()
        ask(at, fact.question)
        sources = at.chat_message[1].expander[0]
        assert sources.label.startswith("Sources")
        top = sources.markdown[0].value
        assert f"{fact.name}**, {fact.where} · similarity" in top, top

    # The trace of the last answer lists its passages with the same place.
    [link] = [
        link for link in at.chat_message[-1].get("page_link") if link.proto.label == "View trace"
    ]
    at.query_params["trace"] = link.proto.query_string.removeprefix("trace=")
    at.switch_page("app/traces.py").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["where"].iloc[0] == FACTS[-1].where


def test_a_heading_that_holds_markdown_is_shown_inert_as_the_location(chat_env: Path) -> None:
    document = docx.Document()
    document.add_heading("Leak ![pixel](http://127.0.0.1:9/p.png) [link](http://127.0.0.1:9)", 1)
    document.add_paragraph("The Osprey drone flies for forty minutes on one battery.")
    buffer = io.BytesIO()
    document.save(buffer)
    at = start()
    at.sidebar.file_uploader[0].set_value([("osprey.docx", buffer.getvalue(), "")])
    at.run()
    indexed(at)

    ask(at, "How long does the Osprey drone fly?")

    top = at.chat_message[1].expander[0].markdown[0].value
    assert "osprey.docx**, Leak !\\[pixel](http://127.0.0.1:9/p.png) \\[link]" in top, top
