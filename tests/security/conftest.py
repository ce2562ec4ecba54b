"""A data dir for the app in AppTest, set up for the attacks."""

from pathlib import Path

import pytest

from tests.app_pages import PASSWORD


@pytest.fixture
def app_env(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir, extractive answers, an admin password, and no developer secrets.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOCQA_LLM_PROVIDER", "extractive")
    monkeypatch.setenv("DOCQA_ADMIN_PASSWORD", PASSWORD)
    return data_dir
