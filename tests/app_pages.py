"""Helpers for driving the app's pages in AppTest: log in, wait for indexing, read the page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PASSWORD = "correct horse battery staple"
INDEXING = "Indexing"


def indexing_shown(at: AppTest) -> bool:
    """Whether the sidebar shows a background indexing job in progress."""
    return any(INDEXING in markdown.value for markdown in at.sidebar.markdown)


def indexed(at: AppTest, timeout_s: float = 300) -> AppTest:
    """Rerun the page until the sidebar shows no indexing job, as a reader waiting would."""
    deadline = time.monotonic() + timeout_s
    while True:
        at.run()
        assert not at.exception, at.exception
        if not indexing_shown(at):
            return at
        if time.monotonic() > deadline:
            pytest.fail(f"the page still showed indexing after {timeout_s:.0f} s")
        time.sleep(0.2)


def log_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="admin_password_input").input(password)
    at.button(key="FormSubmitter:admin_login-Unlock").click()
    at.run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    """Every text the page shows, tables and widget values included."""
    parts = [
        element.value
        for elements in (at.markdown, at.caption, at.info, at.warning, at.error, at.success)
        for element in elements
    ]
    parts += [text.value for text in at.text]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [str(widget.value) for widget in (*at.text_input, *at.selectbox)]
    parts += [str(option) for box in at.selectbox for option in box.options]
    return "\n".join(parts)
