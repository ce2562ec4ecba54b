"""Shared fixtures: the test files bundled in tests/fixtures and a fresh data dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
# The suite answers with the smallest local model, for speed on two cores; the default model has
# its own test (test_default_model.py). Processes the tests start (the CLI, streamlit) inherit it.
SUITE_LOCAL_MODEL = "smollm2-135m"
os.environ["DOCQA_LOCAL_MODEL"] = SUITE_LOCAL_MODEL


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES_DIR.is_dir():
        pytest.fail(f"the bundled test files are missing: expected {FIXTURES_DIR}")
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def good_pdfs(fixtures_dir: Path) -> Path:
    return fixtures_dir / "pdfs" / "good"


@pytest.fixture(scope="session")
def bad_pdfs(fixtures_dir: Path) -> Path:
    return fixtures_dir / "pdfs" / "bad"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
