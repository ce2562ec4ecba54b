"""A data dir written by 0.1.0 (tests/fixtures/data-0.1.0) opens and upgrades in place."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import catalog, keyword
from ingest.sqlite_file import Migration
from llm.access.ledger import LEGACY_FILE, Caps, SpendLedger
from llm.components import build_index
from llm.records import trace_store
from llm.records.database import database_url, open_database
from llm.records.trace_store import TRACES_FILE, TraceStore
from llm.settings import Settings, load_settings

FIRST_TRACES = "traces-first-release.sqlite3"
# Every SQLite file of ours in the fixture, with the migrations of the store that owns it.
STORE_FILES: dict[str, tuple[Migration, ...]] = {
    "docqa.sqlite3": catalog.MIGRATIONS,
    "keyword/docqa_g1/chunks.sqlite3": keyword.MIGRATIONS,
    TRACES_FILE: trace_store.MIGRATIONS,
    FIRST_TRACES: trace_store.MIGRATIONS,
}
DOC_ID = "f17a09190ad8a049"
# The day of the fixture's paid call: the ledger sums the current period only.
FIXTURE_DAY = datetime(2025, 3, 5, 18, 0, tzinfo=UTC)


@pytest.fixture
def old_dir(fixtures_dir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(fixtures_dir / "data-0.1.0", data, ignore=shutil.ignore_patterns("README.md"))
    return data


def read_only(path: Path) -> sqlite3.Connection:
    # So that looking at a file cannot change it.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def contents(data: Path) -> dict[str, tuple[int, list[str]]]:
    """Each file's schema version, and its schema and rows as SQL statements."""
    found = {}
    for name in STORE_FILES:
        with closing(read_only(data / name)) as db:
            found[name] = (db.execute("PRAGMA user_version").fetchone()[0], list(db.iterdump()))
    return found


def user_versions(data: Path) -> dict[str, int]:
    return {name: version for name, (version, _) in contents(data).items()}


def spend_ledger(data: Path, settings: Settings) -> SpendLedger:
    engine = open_database(database_url(settings))
    legacy = data / LEGACY_FILE
    return SpendLedger(engine, Caps(1.0, 5.0, 20.0), lambda: FIXTURE_DAY, legacy_file=legacy)


def open_all(data: Path, tmp_path: Path) -> None:
    """Open every store of the data dir the way the app does, search it, and close it again."""
    settings = load_settings(data_dir=data, secrets_file=tmp_path / "absent.toml")
    index = build_index(settings, owner="test")
    try:
        [document] = index.documents()
        assert (document.doc_id, document.source) == (DOC_ID, "pdflatex-4-pages.pdf")
        assert (document.pages, document.chunks, index.version) == (4, 18, 2)
        keyword_hits = index.keyword_search("Huardest gefburn", 3)
        assert keyword_hits and all(hit.doc_id == DOC_ID for hit in keyword_hits)
        vector_hits = index.search("a blind text that shows what the font looks like", 3)
        assert [hit.doc_id for hit in vector_hits] == [DOC_ID] * 3
        assert "blind text" in vector_hits[0].text and vector_hits[0].score > 0.5
        # 0.1.0 recorded no threshold; its embedder (MiniLM) has one calibrated.
        assert index.relevance_threshold == 0.31
    finally:
        index.close()
    spend_ledger(data, settings)
    TraceStore(data / TRACES_FILE)
    TraceStore(data / FIRST_TRACES)


def test_a_0_1_0_data_dir_keeps_its_documents_spend_and_traces(
    old_dir: Path, tmp_path: Path
) -> None:
    assert set(user_versions(old_dir).values()) == {0}

    open_all(old_dir, tmp_path)

    # The ledger file's calls and caps are now in the database; the file itself is left as is.
    ledger_file = (old_dir / LEGACY_FILE).read_bytes()
    spend = spend_ledger(old_dir, load_settings(data_dir=old_dir))
    assert (spend.spent("day"), spend.spent("month")) == (0.5, 0.5)
    assert (old_dir / LEGACY_FILE).read_bytes() == ledger_file
    assert spend.caps == Caps(daily=2.5, weekly=5.0, monthly=20.0)
    [asked] = TraceStore(old_dir / TRACES_FILE).recent(owner="cli")
    assert asked.question == "Should the text contain all letters of the alphabet?"
    assert (asked.provider, asked.page) == ("extractive", "cli")
    assert {source["source"] for source in asked.sources} == {"pdflatex-4-pages.pdf"}
    first = TraceStore(old_dir / FIRST_TRACES).get("first-release-trace")
    assert first is not None and (first.owner, first.attribution) == (None, None)
    assert (first.feedback_score, first.feedback_comment) == (1, "old but good")
    assert TraceStore(old_dir / FIRST_TRACES).recent(owner=None) == [first]
    latest = {name: migrations[-1].version for name, migrations in STORE_FILES.items()}
    assert user_versions(old_dir) == latest


def test_opening_an_upgraded_data_dir_again_changes_nothing(old_dir: Path, tmp_path: Path) -> None:
    open_all(old_dir, tmp_path)
    upgraded = contents(old_dir)

    open_all(old_dir, tmp_path)

    assert contents(old_dir) == upgraded
