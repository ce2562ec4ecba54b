"""Private between users: the Traces page lists a visitor's own answers only, an admin sees all,
a trace link opens its one answer, and feedback goes only on answers one can see.

AppTest sessions have no browser cookies, so each session gets its own id (the browser suite
checks the cookie that tabs and reloads share).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llm.answering.pipeline import AnswerPipeline, AnswerResult
from llm.models.choice import extractive_choice
from llm.records.trace_store import TRACES_FILE, TraceStore
from tests.app_pages import APP, PASSWORD, log_in, page_text

pytestmark = pytest.mark.security
TRACES_PAGE = "app/traces.py"


def answer(question: str) -> AnswerResult:
    def search(query: str, k: int):
        from ingest.records import SearchHit

        return [SearchHit("pump", "pump.md", 1, 0, 0.9, "The P-40 pump moves 40 litres a minute.")]

    return AnswerPipeline(search, extractive_choice(), 1, 64).answer(question)


def visitor() -> tuple[AppTest, str]:
    """A new session on the Traces page, and the owner key its answers are kept under."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    token = at.session_state["client_token"]
    owner = "browser:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    at.switch_page(TRACES_PAGE).run()
    assert not at.exception, at.exception
    return at, owner


def listed_questions(at: AppTest) -> list[str]:
    frames = [df.value for df in at.dataframe if "question" in df.value.columns]
    return list(frames[0]["question"]) if frames else []


def test_each_visitor_lists_only_their_own_answers_and_an_admin_lists_all(
    app_env: Path,
) -> None:
    store = TraceStore(app_env / TRACES_FILE)
    alice, alice_key = visitor()
    bob, bob_key = visitor()
    assert alice_key != bob_key
    mine = store.record(
        answer("Alice asks how fast the P-40 pump is"), page="chat", owner=alice_key
    )
    store.record(answer("Bob asks about the P-40 filter"), page="chat", owner=bob_key)
    store.record(answer("Asked on the command line about the pump"), page="cli", owner="cli")

    alice.run()
    assert listed_questions(alice) == ["Alice asks how fast the P-40 pump is"]
    assert "Bob" not in page_text(alice) and "command line" not in page_text(alice)
    # Searching does not reach past one's own answers either.
    alice.text_input(key="trace_search").set_value("P-40").run()
    assert listed_questions(alice) == ["Alice asks how fast the P-40 pump is"]
    [option] = [o for box in alice.selectbox for o in box.options]
    assert option.endswith("Alice asks how fast the P-40 pump is")
    assert mine.id

    bob.run()
    assert listed_questions(bob) == ["Bob asks about the P-40 filter"]
    assert mine.id not in page_text(bob)

    admin, _ = visitor()
    admin.switch_page("app/admin.py").run()
    log_in(admin, PASSWORD)
    admin.switch_page(TRACES_PAGE).run()
    assert sorted(listed_questions(admin)) == [
        "Alice asks how fast the P-40 pump is",
        "Asked on the command line about the pump",
        "Bob asks about the P-40 filter",
    ]


def test_a_trace_link_opens_that_one_answer_and_names_no_other(app_env: Path) -> None:
    store = TraceStore(app_env / TRACES_FILE)
    _, alice_key = visitor()
    original = store.record(answer("How fast is the P-40 pump?"), page="chat", owner=alice_key)
    copy = store.record_cache_hit(original.id, "How fast is the P-40 pump?", "chat", owner="x")
    assert copy is not None and len(original.id) >= 32

    bob, _ = visitor()
    bob.query_params["trace"] = copy.id
    bob.run()
    assert not bob.exception, bob.exception
    assert "How fast is the P-40 pump?" in [text.value for text in bob.text]
    # The copy came from Alice's answer: its id is not shown to Bob, nor is his list filled.
    assert original.id not in page_text(bob) and not listed_questions(bob)
    assert not [link for link in bob.get("page_link") if "original" in link.proto.label]


def test_feedback_is_kept_only_on_ones_own_answers(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / TRACES_FILE)
    record = store.record(answer("How fast is the P-40 pump?"), page="chat", owner="browser:a")
    assert not store.set_feedback(record.id, 0, "spam", owner="browser:b")
    assert store.get(record.id).feedback_score is None
    assert store.set_feedback(record.id, 1, "right", owner="browser:a")
    assert store.get(record.id).feedback_score == 1
