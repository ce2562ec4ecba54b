"""The browser fixtures (Chromium, real `streamlit run` servers), the failure report hook, and a
data dir for the app in AppTest."""

from pathlib import Path

import pytest

from tests.app_pages import PASSWORD
from tests.browser_fixtures import (  # noqa: F401  (fixtures and a hook, found by pytest by name)
    browser,
    chat_server,
    client_limited_server,
    limited_server,
    pytest_runtest_makereport,
)


@pytest.fixture
def app_env(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir, extractive answers, an admin password, and no developer secrets.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    monkeypatch.setenv("DOCQA_ADMIN_PASSWORD", PASSWORD)
    return data_dir
