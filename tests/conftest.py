"""Shared fixtures: the test files bundled in tests/fixtures and a fresh data dir per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.formats.ocr import Ocr

# Once for the whole run: the e2e and security suites share one Playwright and one Chromium.
from tests.browser_fixtures import (  # noqa: F401  (fixtures and a hook, found by pytest by name)
    browser,
    chat_server,
    client_limited_server,
    limited_server,
    pytest_runtest_makereport,
)
from tests.debian_packages import ensure_debian_packages
from tests.servers import fresh_database, start_postgres

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
# The suite answers with the smallest local model, for speed on two cores; the default model has
# its own test (test_default_model.py). Processes the tests start (the CLI, streamlit) inherit it.
SUITE_LOCAL_MODEL = "smollm2-135m"
os.environ["DOCQA_LOCAL_MODEL"] = SUITE_LOCAL_MODEL


@pytest.fixture(autouse=True)
def main_module_put_back() -> Iterator[None]:
    """Streamlit's script runner (AppTest) installs the app script as __main__ and leaves it there,
    so a process spawned by a later test would run streamlit_app.py again before its target."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


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


# Debian's Tesseract reads scanned PDF pages; installed like Chromium, when missing.
OCR_PACKAGES = ("tesseract-ocr", "tesseract-ocr-eng")


@pytest.fixture(scope="session")
def tesseract() -> Ocr:
    """The real Tesseract, as the app finds it (on PATH, English data)."""
    ocr = Ocr()
    ensure_debian_packages(OCR_PACKAGES, lambda: ocr.problem() is None, "the OCR tests")
    return ocr


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


PUMP_DOCUMENT = ("pump.md", b"# Pump\n\nThe P-40 pump moves 40 litres a minute.")


@pytest.fixture
def pump_dir(data_dir: Path, tmp_path: Path) -> Path:
    """The data dir with one small document indexed (and the index closed again)."""
    from llm.components import build_index
    from llm.settings import load_settings

    settings = load_settings(data_dir=data_dir, secrets_file=tmp_path / "absent.toml")
    index = build_index(settings, owner="test")
    index.add_files([PUMP_DOCUMENT])
    index.close()
    return data_dir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL server for the run (see tests/postgres_server.py)."""
    yield from start_postgres()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'docqa.db'}"
    server = request.getfixturevalue("postgres_server")
    return fresh_database(server, f"t_{uuid.uuid4().hex[:12]}")
