"""Limits that a new tab or a reload cannot reset, admin guessing across tabs, and hostile input:
an oversized question, control characters, a file name with path separators.

Each AppTest below is a new browser session, as a reload or a second tab is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.queue import IngestQueue
from llm.access.ratelimit import Limit, SharedBuckets, TokenBucket
from llm.answering.questions import clean_question, question_problem
from llm.components import build_index
from llm.settings import load_settings
from tests.app_pages import APP, PASSWORD, log_in

pytestmark = pytest.mark.security


@pytest.fixture
def pump_app(app_env: Path, pump_dir: Path) -> Path:
    """The app's data dir (see app_env) with one small document indexed."""
    return pump_dir


def new_tab() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def answered(at: AppTest) -> int:
    """Answers kept in the session's conversation (a refusal is shown, not kept)."""
    return sum(turn.role == "assistant" for turn in at.session_state.messages)


def test_a_new_tab_does_not_reset_the_per_client_limit(
    pump_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_CLIENT_RATE_LIMIT_CAPACITY", "2")
    monkeypatch.setenv("DOCQA_CLIENT_RATE_LIMIT_PER_MINUTE", "1")
    first = new_tab()
    ask(first, "How fast is the P-40 pump?")
    ask(first, "How many litres does the pump move?")
    assert answered(first) == 2
    second = new_tab()  # a reload: a new session with a full chat bucket of its own
    ask(second, "What moves 40 litres a minute?")
    assert answered(second) == 0
    [warning] = second.warning
    assert "your network address" in warning.value and "wait" in warning.value
    assert "What moves 40 litres a minute?" in warning.value  # the question is not lost


def test_the_app_wide_limit_holds_across_sessions(
    pump_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_GLOBAL_RATE_LIMIT_CAPACITY", "1")
    monkeypatch.setenv("DOCQA_GLOBAL_RATE_LIMIT_PER_MINUTE", "0.5")
    assert answered(ask(new_tab(), "How fast is the P-40 pump?")) == 1
    refused = ask(new_tab(), "How fast is the P-40 pump, again?")
    assert answered(refused) == 0
    assert "the whole app" in refused.warning[0].value
    # One question every two minutes: the wait is what is left of them (a slow run uses some).
    [wait] = re.findall(r"wait (\d+) seconds", refused.warning[0].value)
    assert 60 < int(wait) <= 120


def test_limits_take_from_all_buckets_or_none() -> None:
    now = [0.0]
    roomy = TokenBucket(5, 60, clock=lambda: now[0])
    tight = TokenBucket(1, 6, clock=lambda: now[0])
    shared = SharedBuckets()
    limits = [
        Limit("chat", roomy, shared.state("chat", roomy)),
        Limit("app", tight, shared.state("app", tight)),
    ]
    assert shared.take(limits) is None
    refusal = shared.take(limits)
    assert (
        refusal is not None and refusal.limit.name == "app" and refusal.wait_s == pytest.approx(10)
    )
    # The refused question took nothing from the roomy bucket.
    assert roomy.available(limits[0].state) == pytest.approx(4)
    now[0] = 10.0
    assert shared.take(limits) is None


def test_admin_guessing_in_a_new_tab_finds_the_lockout(pump_app: Path) -> None:
    tab = new_tab()
    tab.switch_page("app/admin.py").run()
    for _ in range(5):
        log_in(tab, "guess")
    assert "Too many wrong tries" in tab.error[0].value
    other = new_tab()
    other.switch_page("app/admin.py").run()
    log_in(other, PASSWORD)
    assert "Too many wrong tries" in other.error[0].value
    assert not other.tabs  # still locked: the right password is not even looked at


def test_an_oversized_question_is_refused_with_its_length(
    pump_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCQA_MAX_QUESTION_CHARS", "100")
    at = ask(new_tab(), "How fast is the P-40 pump? " * 20)
    assert answered(at) == 0
    [warning] = at.warning
    assert "539 characters long; the limit is 100" in warning.value
    assert "it began: “How fast is the P-40 pump?" in warning.value


def test_control_characters_are_taken_out_of_a_question(pump_app: Path) -> None:
    at = ask(new_tab(), "How fast\x1b[31m is the\u202e P-40\x00 pump?\x07")
    assert answered(at) == 1
    assert at.session_state.messages[0].content == "How fast[31m is the P-40 pump?"
    blank = ask(new_tab(), "\x1b\x00\u200b  \x07")
    assert answered(blank) == 0 and "no readable text" in blank.warning[0].value


def test_question_cleaning_rules() -> None:
    assert clean_question("  a\tb\n\nc\u200d ") == "a b c"
    assert question_problem("", 10) and question_problem("x" * 11, 10)
    assert question_problem("x" * 10, 10) is None


def test_a_file_name_with_path_separators_stays_inside_the_data_dir(
    data_dir: Path, tmp_path: Path
) -> None:
    index = build_index(
        load_settings(data_dir=data_dir, secrets_file=tmp_path / "absent.toml"), owner="test"
    )
    try:
        results = index.add_files(
            [
                ("../../outside.md", b"# Outside\n\nThe valve is red."),
                ("C:\\Users\\x\\win.md", b"# Win\n\nThe hose is green."),
                ("../", b"no name at all"),
                ("good.md", b"# Good\n\nThe tank holds 80 litres."),
            ]
        )
        assert [r.status for r in results] == ["added", "added", "failed", "added"]
        assert "no file name" in results[2].error
        assert sorted(r.source for r in index.documents()) == ["good.md", "outside.md", "win.md"]
        assert (
            not (tmp_path / "outside.md").exists() and not (data_dir.parent / "outside.md").exists()
        )
        stored = [data_dir / r.stored_path for r in index.documents()]
        assert all(path.resolve().is_relative_to(data_dir.resolve()) for path in stored)
    finally:
        index.close()


def test_a_queued_file_name_with_path_separators_is_copied_inside_the_data_dir(
    data_dir: Path, tmp_path: Path
) -> None:
    queue = IngestQueue(data_dir)
    job_id = queue.enqueue_files(
        [
            ("../../outside.md", b"# Outside\n\nThe valve is red."),
            ("C:\\Users\\x\\win.md", b"# Win\n\nThe hose is green."),
            ("../", b"no name at all"),
            ("..", b"dots only"),
        ],
        "chat",
        "browser:someone",
    )
    job = queue.job(job_id)
    assert job is not None
    assert [file.name for file in job.files] == ["outside.md", "win.md", "unnamed", "unnamed"]
    copies = [queue.pending_path(job, file) for file in job.files]
    assert all(path.is_file() for path in copies)
    assert all(path.resolve().is_relative_to(queue.pending_dir.resolve()) for path in copies)
    assert not (tmp_path / "outside.md").exists() and not (data_dir / "outside.md").exists()
