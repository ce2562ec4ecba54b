"""State on servers: two indexes with separate data folders (two machines, as far as the index can
tell) over one `chroma run` server and one database serve a single corpus."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest

from ingest.database_catalog import DatabaseCatalog
from ingest.index import _MACHINE, CLAIM_STALE_S, DocumentIndex
from ingest.records import doc_id_of
from llm.components import build_index, build_trace_store
from llm.settings import load_settings
from tests.servers import start_chroma
from tests.test_traces_page import answer

pytestmark = pytest.mark.server

CRAZY = "crazyones-pdfa.pdf"


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_chroma(tmp_path_factory.mktemp("chroma"))


def open_replica(folder: Path, chroma_url: str, database_url: str) -> DocumentIndex:
    settings = load_settings(data_dir=folder, chroma_url=chroma_url, database_url=database_url)
    return build_index(settings, owner=f"replica in {folder.name}")


def empty(chroma_url: str) -> None:
    """Each test has a new database, whose index starts at the first collection name again."""
    server = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_url.rsplit(":", 1)[1]))
    for collection in server.list_collections():
        server.delete_collection(getattr(collection, "name", collection))


@pytest.fixture
def replicas(
    tmp_path: Path, chroma_url: str, database_url: str
) -> Iterator[tuple[DocumentIndex, DocumentIndex]]:
    empty(chroma_url)
    a = open_replica(tmp_path / "a", chroma_url, database_url)
    b = open_replica(tmp_path / "b", chroma_url, database_url)
    yield a, b
    a.close()
    b.close()


def test_a_document_added_through_one_replica_is_found_read_and_removed_through_the_other(
    replicas: tuple[DocumentIndex, DocumentIndex], good_pdfs: Path, tmp_path: Path
) -> None:
    a, b = replicas
    [added] = a.add_paths([good_pdfs / CRAZY])
    assert added.status == "added"

    assert [record.doc_id for record in b.documents()] == [added.doc_id]
    assert b.search("misfits and rebels", 1)[0].source == CRAZY
    assert b.keyword_search("misfits rebels troublemakers", 1)[0].source == CRAZY
    assert b.original(b.documents()[0]) == (good_pdfs / CRAZY).read_bytes()
    # Nothing a replica serves lives in its own folder.
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert not list((folder / "files").iterdir())
        assert not (folder / "keyword").exists()
        assert not (folder / "docqa.sqlite3").exists()

    [again] = b.add_paths([good_pdfs / CRAZY])
    assert again.status == "duplicate"

    [record] = b.documents()
    assert b.remove(added.doc_id)
    assert a.documents() == []
    assert a.search("misfits and rebels", 3) == []
    assert a.keyword_search("misfits rebels troublemakers", 3) == []
    with pytest.raises(FileNotFoundError):
        a.original(record)


def test_a_reindex_on_one_replica_is_followed_by_the_other(
    replicas: tuple[DocumentIndex, DocumentIndex], good_pdfs: Path
) -> None:
    a, b = replicas
    a.add_paths([good_pdfs / CRAZY])
    before = b.stats().collection
    done = a.reindex(a.config)
    assert done.documents == 1
    assert b.keyword_search("misfits rebels troublemakers", 1)[0].source == CRAZY
    assert b.search("misfits and rebels", 1)[0].source == CRAZY
    assert b.stats().collection != before
    # The old collection's keyword chunks went with it: only the new one's are left.
    assert b._keyword.chunk_count() == b.documents()[0].chunks


def test_the_same_file_added_through_both_replicas_at_once_is_indexed_once_and_whole(
    replicas: tuple[DocumentIndex, DocumentIndex], good_pdfs: Path
) -> None:
    a, b = replicas
    data = (good_pdfs / CRAZY).read_bytes()
    outcomes: dict[str, str] = {}

    def add(name: str, index: DocumentIndex) -> None:
        [result] = index.add_files([(CRAZY, data)])
        outcomes[name] = result.status

    threads = [threading.Thread(target=add, args=item) for item in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["added", "duplicate"]
    [record] = a.documents()
    assert a._vectors.chunk_counts()[record.doc_id] == record.chunks
    assert b._keyword.chunk_count() == record.chunks
    assert b.search("misfits and rebels", 1)[0].doc_id == record.doc_id


def test_answers_traced_through_one_replica_open_on_the_other(
    tmp_path: Path, chroma_url: str, database_url: str
) -> None:
    stores = [
        build_trace_store(
            load_settings(
                data_dir=tmp_path / name, chroma_url=chroma_url, database_url=database_url
            )
        )
        for name in ("a", "b")
    ]
    kept = stores[0].record(
        answer("How long is the Zephyr frame warranty?"), page="chat", owner="browser:x"
    )
    assert stores[1].get(kept.id) == kept
    assert stores[1].set_feedback(kept.id, 1, "right", owner="browser:x")
    assert stores[0].get(kept.id).feedback_score == 1
    assert not (tmp_path / "a" / "traces.sqlite3").exists()


def test_a_server_mode_folder_from_before_is_taken_into_an_empty_database_once(
    tmp_path: Path, chroma_url: str, database_url: str, good_pdfs: Path
) -> None:
    empty(chroma_url)
    folder = tmp_path / "a"
    before = build_index(load_settings(data_dir=folder, chroma_url=chroma_url), owner="before")
    [added] = before.add_paths([good_pdfs / CRAZY])
    before.close()
    kept = sorted(path.name for path in folder.rglob("*"))

    adopted = open_replica(folder, chroma_url, database_url)
    other = open_replica(tmp_path / "b", chroma_url, database_url)
    try:
        assert [record.doc_id for record in other.documents()] == [added.doc_id]
        assert other.search("misfits and rebels", 1)[0].source == CRAZY
        assert other.keyword_search("misfits rebels troublemakers", 1)[0].source == CRAZY
        assert other.original(other.documents()[0]) == (good_pdfs / CRAZY).read_bytes()
        assert other.version == adopted.version
    finally:
        adopted.close()
        other.close()
    # The folder is left as it was, and a second opening adopts nothing more.
    assert sorted(path.name for path in folder.rglob("*")) == kept
    again = open_replica(folder, chroma_url, database_url)
    try:
        assert len(again.documents()) == 1
        assert again._keyword.chunk_count() == added.chunks
    finally:
        again.close()


def test_a_replica_waits_for_another_writing_the_same_file_but_not_for_a_dead_one(
    replicas: tuple[DocumentIndex, DocumentIndex], good_pdfs: Path
) -> None:
    a, b = replicas
    data = (good_pdfs / CRAZY).read_bytes()
    doc_id = doc_id_of(data)
    catalog = a._catalog
    assert isinstance(catalog, DatabaseCatalog)

    # Another replica is writing this file (its claim is fresh): B waits for it to finish.
    assert catalog.claim(doc_id, "another", time.time(), CLAIM_STALE_S)
    outcome: list[str] = []
    waiting = threading.Thread(target=lambda: outcome.extend(add(b, data)))
    waiting.start()
    waiting.join(timeout=3)
    assert waiting.is_alive() and b.documents() == []
    catalog.release_claim(doc_id, "another")
    waiting.join(timeout=60)
    assert outcome == ["added"]
    assert b.remove(doc_id)

    # A claim nobody renewed for longer than CLAIM_STALE_S is a dead replica's: taken over.
    assert catalog.claim(doc_id, "dead", time.time() - CLAIM_STALE_S - 1, CLAIM_STALE_S)
    assert add(b, data) == ["added"]
    assert b._keyword.chunk_count() == b.documents()[0].chunks
    assert b.remove(doc_id)

    # A fresh claim of a process of this machine that has ended (a replica killed, then started
    # again): taken over at once, not after CLAIM_STALE_S.
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert catalog.claim(doc_id, f"{_MACHINE}:{ended.pid}:x", time.time(), CLAIM_STALE_S)
    started = time.monotonic()
    assert add(b, data) == ["added"]
    assert time.monotonic() - started < CLAIM_STALE_S / 2


def add(index: DocumentIndex, data: bytes) -> list[str]:
    return [result.status for result in index.add_files([(CRAZY, data)])]


def test_what_a_dead_replica_left_half_written_is_removed_when_a_replica_opens(
    tmp_path: Path, chroma_url: str, database_url: str, good_pdfs: Path
) -> None:
    empty(chroma_url)
    a = open_replica(tmp_path / "a", chroma_url, database_url)
    data = (good_pdfs / CRAZY).read_bytes()
    [added] = a.add_files([(CRAZY, data)])
    # As a replica killed before the catalog row leaves it: chunks and file, a claim it no
    # longer renews, no catalog row.
    catalog = a._catalog
    assert isinstance(catalog, DatabaseCatalog)
    catalog.remove(added.doc_id)
    catalog.claim(added.doc_id, "dead", time.time() - CLAIM_STALE_S - 1, CLAIM_STALE_S)
    assert a._vectors.chunk_counts()[added.doc_id] == added.chunks
    a.close()

    b = open_replica(tmp_path / "b", chroma_url, database_url)
    try:
        assert b._vectors.chunk_counts()[added.doc_id] == 0
        assert b._keyword.chunk_count() == 0
        assert catalog.claimed() == []
        assert b.stats().disk_bytes < len(data)
        # And the file goes in whole when it comes again.
        assert add(b, data) == ["added"]
    finally:
        b.close()


def test_a_writer_too_slow_to_renew_its_claim_stops_and_leaves_the_document_to_the_new_holder(
    replicas: tuple[DocumentIndex, DocumentIndex], good_pdfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = replicas
    catalog = a._catalog
    assert isinstance(catalog, DatabaseCatalog)
    data = (good_pdfs / "pdflatex-4-pages.pdf").read_bytes()
    doc_id = doc_id_of(data)
    a._write_batch = 1  # a renewal after every chunk
    store = a._vectors.add

    def add_then_lose_the_claim(*args: object) -> None:
        store(*args)
        # Seen from another replica, a's claim has gone stale: it takes the document over.
        catalog.claim(doc_id, "another", time.time() + CLAIM_STALE_S + 1, CLAIM_STALE_S)

    monkeypatch.setattr(a._vectors, "add", add_then_lose_the_claim)
    [result] = a.add_files([("pdflatex-4-pages.pdf", data)])
    assert result.status == "failed" and "taken over by another replica" in (result.error or "")
    assert a.documents() == []
    # What it wrote is left for the new holder, who writes (or removes) it now.
    assert a._vectors.chunk_counts()[doc_id] == 1
