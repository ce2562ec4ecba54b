"""Helpers for driving the app's pages in AppTest: log in as admin, read all the page shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PASSWORD = "correct horse battery staple"


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
