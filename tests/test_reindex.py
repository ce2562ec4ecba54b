"""Reindex without downtime: searches go on during a rebuild, and a killed one loses nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_process import run_docqa

from ingest.catalog import IndexConfig
from ingest.index import COLLECTION_PREFIX, DocumentIndex
from llm.components import build_index
from llm.retrieval.modes import make_search
from llm.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
QUERY = "EU countries: population, area, capital and official language"
SMALL_PDFS = [
    "crazyones-pdfa.pdf",
    "google-doc-document.pdf",
    "multicolumn.pdf",
    "pdflatex-4-pages.pdf",
    "pdflatex-outline.pdf",
]


def collection_names(data_dir: Path) -> list[str]:
    """Chroma's collections, read from its SQLite file without opening (or locking) the index."""
    db = sqlite3.connect(f"file:{data_dir / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True)
    try:
        return sorted(row[0] for row in db.execute("SELECT name FROM collections"))
    finally:
        db.close()


@pytest.fixture
def index(data_dir: Path, good_pdfs: Path):
    opened = build_index(load_settings(data_dir=data_dir), owner="test_reindex")
    added = opened.add_paths([good_pdfs / name for name in SMALL_PDFS])
    assert all(result.status == "added" for result in added)
    yield opened
    opened.close()


@pytest.mark.slow
def test_searches_keep_answering_during_a_rebuild(index: DocumentIndex) -> None:
    before = index.stats()
    log: list[tuple[float, float, int | BaseException]] = []
    stop = threading.Event()
    # The app's own search: vector and keyword halves, both switched by the rebuild.
    search = make_search(index, "hybrid")

    def keep_searching() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                outcome: int | BaseException = len(search(QUERY, 3))
            except Exception as error:
                outcome = error
            log.append((started, time.monotonic(), outcome))

    searcher = threading.Thread(target=keep_searching, daemon=True)
    searcher.start()
    while not log:  # the first search has loaded the embedder
        time.sleep(0.05)
    rebuild_started = time.monotonic()
    result = index.reindex(IndexConfig("local", "all-MiniLM-L6-v2", 300, 50))
    rebuild_ended = time.monotonic()
    time.sleep(0.5)  # a few more searches after the switch
    stop.set()
    searcher.join(timeout=30)

    during = [entry for entry in log if rebuild_started <= entry[0] and entry[1] <= rebuild_ended]
    failed = [entry for entry in log if not isinstance(entry[2], int) or entry[2] == 0]
    assert len(during) >= 10, f"only {len(during)} searches in a {result.elapsed_s:.1f} s rebuild"
    assert not failed, failed[:3]
    assert log[-1][0] > rebuild_ended  # searches ran on the new collection too

    after = index.stats()
    assert after.version > before.version and after.chunks == result.chunks > before.chunks
    assert collection_names(index.data_dir) == [after.collection] != [before.collection]
    # The catalog's chunk counts are exactly what the active collection holds, per document.
    in_collection = index._vectors.chunk_counts()
    assert in_collection == {record.doc_id: record.chunks for record in index.documents()}
    # One stored original per document, and nothing else.
    files = sorted(path.name for path in index.files_dir.iterdir())
    assert files == sorted(Path(record.stored_path).name for record in index.documents())
    assert len(files) == len(SMALL_PDFS)
    hits = search(QUERY, 3)
    assert hits[0].source == "multicolumn.pdf" and all(len(hit.text) <= 300 for hit in hits)
    assert sorted(p.name for p in (index.data_dir / "keyword").iterdir()) == [after.collection]


def docqa(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = run_docqa(*args, data_dir=data_dir, timeout=300, **env)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_killed_reindex_leaves_the_index_as_it_was(
    data_dir: Path, good_pdfs: Path, tmp_path: Path
) -> None:
    # The long document goes third (documents are rebuilt in the order they were added), so the
    # kill lands while it is being re-read, with files done before and after it.
    long_copy = tmp_path / "lecture-notes-geotopo.pdf"
    shutil.copyfile(good_pdfs / "GeoTopo-komprimiert.pdf", long_copy)
    paths = [good_pdfs / "crazyones-pdfa.pdf", good_pdfs / "google-doc-document.pdf", long_copy]
    paths += [good_pdfs / "multicolumn.pdf", good_pdfs / "pdflatex-4-pages.pdf"]
    # Big chunks make the first indexing quick; the reindex to 300 characters is the long part.
    big_chunks = {"DOCQA_CHUNK_SIZE": "4000", "DOCQA_CHUNK_OVERLAP": "200"}
    docqa("add", *map(str, paths), data_dir=data_dir, **big_chunks)
    listed_before = json.loads(docqa("list", "--json", data_dir=data_dir).stdout)
    found_before = json.loads(docqa("search", QUERY, "--json", data_dir=data_dir).stdout)
    assert [doc["source"] for doc in listed_before][2] == long_copy.name
    assert found_before[0]["source"] == "multicolumn.pdf"
    assert collection_names(data_dir) == [f"{COLLECTION_PREFIX}1"]

    reindex = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "reindex", "--chunk-size", "300"],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCQA_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(600, reindex.kill)
    watchdog.start()
    try:
        # Progress lines look like "reindexing 2/5: google-doc-document.pdf (...)".
        for line in reindex.stderr:
            progress = re.match(r"reindexing (\d+)/(\d+)", line)
            if progress and int(progress.group(1)) == 2:
                break
        else:
            pytest.fail(f"the reindex ended before the long file (exit {reindex.wait()})")
        half_built = collection_names(data_dir)
        keyword_folders = sorted(p.name for p in (data_dir / "keyword").iterdir())
        reindex.send_signal(signal.SIGKILL)
        assert reindex.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        reindex.stderr.close()
    assert half_built == keyword_folders == [f"{COLLECTION_PREFIX}1", f"{COLLECTION_PREFIX}2"]

    # Listing reads the catalog only: same documents and chunk counts, leftover still there.
    assert json.loads(docqa("list", "--json", data_dir=data_dir).stdout) == listed_before
    assert collection_names(data_dir) == half_built
    # Searching opens the index: same results as before, and the leftover is gone.
    assert json.loads(docqa("search", QUERY, "--json", data_dir=data_dir).stdout) == found_before
    assert collection_names(data_dir) == [f"{COLLECTION_PREFIX}1"]
    assert [p.name for p in (data_dir / "keyword").iterdir()] == [f"{COLLECTION_PREFIX}1"]
