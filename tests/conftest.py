"""Shared fixtures: the shared test files beside the repo and a fresh data dir per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.fail(f"the shared test files are missing: expected {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def good_pdfs(shared_dir: Path) -> Path:
    return shared_dir / "pdfs" / "good"


@pytest.fixture(scope="session")
def bad_pdfs(shared_dir: Path) -> Path:
    return shared_dir / "pdfs" / "bad"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
