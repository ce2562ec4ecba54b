"""DocumentIndex on a real embedded Chroma: add, duplicates, bad files, atomicity, reindex."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

import ingest.index as index_module
from ingest.catalog import IndexConfig
from ingest.embeddings import MiniLMEmbeddings, calibrated_threshold
from ingest.index import COLLECTION_PREFIX, WRITE_BATCH, DocumentIndex
from ingest.priority import WritesInterrupted, WriteSteps
from ingest.records import doc_id_of

CONFIG = IndexConfig("local", "all-MiniLM-L6-v2", 1000, 150)
EMBEDDER = MiniLMEmbeddings()


def open_index(
    data_dir: Path, embedder: Embeddings = EMBEDDER, write_batch: int = WRITE_BATCH
) -> DocumentIndex:
    return DocumentIndex(
        data_dir,
        lambda config: embedder,
        CONFIG,
        max_file_bytes=5 * 1024 * 1024,
        write_batch=write_batch,
    )


@pytest.fixture
def index(data_dir: Path):
    opened = open_index(data_dir)
    yield opened
    opened.close()


def chunk_doc_ids(index: DocumentIndex) -> list[str]:
    return list(index._vectors.chunk_counts().elements())


def test_add_search_remove(index: DocumentIndex, good_pdfs: Path) -> None:
    results = index.add_paths(
        [good_pdfs / "crazyones-pdfa.pdf", good_pdfs / "pdflatex-4-pages.pdf"]
    )
    assert [r.status for r in results] == ["added", "added"]
    assert results[1].pages == 4 and results[1].chunks > 4
    hits = index.search("the misfits, the rebels, the troublemakers", 3)
    keyword_hits = index.keyword_search("misfits", 3)
    assert [(h.source, h.page) for h in keyword_hits] == [("crazyones-pdfa.pdf", 1)]
    assert (hits[0].source, hits[0].page) == ("crazyones-pdfa.pdf", 1)
    assert hits[0].score > hits[-1].score
    version = index.version
    assert index.remove(results[0].doc_id)
    assert index.version == version + 1
    assert all(hit.source != "crazyones-pdfa.pdf" for hit in index.search("crazy ones", 10))
    assert index.keyword_search("misfits rebels troublemakers", 10) == []
    assert results[0].doc_id not in chunk_doc_ids(index)
    assert [d.source for d in index.documents()] == ["pdflatex-4-pages.pdf"]
    assert len(list(index.files_dir.iterdir())) == 1
    assert not index.remove("no-such-doc")


def test_a_scoped_search_returns_only_the_given_documents(
    index: DocumentIndex, good_pdfs: Path
) -> None:
    crazy, latex = index.add_paths(
        [good_pdfs / "crazyones-pdfa.pdf", good_pdfs / "pdflatex-4-pages.pdf"]
    )
    assert crazy.doc_id == doc_id_of((good_pdfs / "crazyones-pdfa.pdf").read_bytes())
    question = "the misfits, the rebels, the troublemakers"
    assert index.search(question, 1)[0].doc_id == crazy.doc_id
    assert index.keyword_search("misfits", 5)[0].doc_id == crazy.doc_id
    # The best match is out of scope: the scoped search gives the other document's chunks,
    # as many as asked for, and never the out-of-scope one (sentence forms included).
    only = frozenset({latex.doc_id})
    hits = index.search(question, 3, also=["Who are the misfits?"], only=only)
    assert len(hits) == 3 and {h.doc_id for h in hits} == {latex.doc_id}
    assert index.keyword_search("misfits", 5, only=only) == []
    assert {h.doc_id for h in index.keyword_search("misfits information", 5, only=only)} == {
        latex.doc_id
    }
    assert index.search(question, 3, only=frozenset()) == []
    assert index.keyword_search("misfits", 3, only=frozenset({"no-such-doc"})) == []


class Counting(Embeddings):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += texts
        return EMBEDDER.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return EMBEDDER.embed_query(text)


def test_sentence_vectors_are_kept_and_embedded_once(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting()
    index = open_index(data_dir, counting)
    try:
        texts = ["Use read.fwf.", "It reads fixed-width files.", "Use read.fwf."]
        first = index.embed_texts(texts)
        assert counting.embedded == ["Use read.fwf.", "It reads fixed-width files."]
        expected = EMBEDDER.embed_documents(texts)
        assert all(
            np.allclose(got, want, atol=1e-6) for got, want in zip(first, expected, strict=True)
        )
        again = index.embed_texts(["It reads fixed-width files.", "A new one."])
        assert counting.embedded[2:] == ["A new one."]
        assert np.array_equal(again[0], first[1])
        # Bounded: the least recently used go first.
        monkeypatch.setattr(index_module, "TEXT_VECTORS", 2)
        index.embed_texts(["Third."])
        index.embed_texts(["Use read.fwf."])
        assert counting.embedded[-1] == "Use read.fwf."
    finally:
        index.close()


def test_duplicate_bytes_add_nothing(index: DocumentIndex, good_pdfs: Path) -> None:
    data = (good_pdfs / "crazyones-pdfa.pdf").read_bytes()
    first, again = index.add_files([("a.pdf", data), ("renamed.pdf", data)])
    assert (first.status, again.status) == ("added", "duplicate")
    assert again.doc_id == first.doc_id and "a.pdf" in again.error
    assert len(index.documents()) == 1 and len(chunk_doc_ids(index)) == first.chunks


def test_bad_files_are_reported_and_good_ones_still_go_in(
    index: DocumentIndex, good_pdfs: Path, bad_pdfs: Path
) -> None:
    bad = sorted(bad_pdfs.iterdir())
    results = index.add_paths([*bad, good_pdfs / "crazyones-pdfa.pdf"])
    by_name = {r.file: r for r in results}
    assert by_name["crazyones-pdfa.pdf"].status == "added"
    for path in bad:
        assert by_name[path.name].status == "failed", path.name
        assert by_name[path.name].error
    assert "encrypted" in by_name["encrypted-password.pdf"].error
    assert "text layer" in by_name["image-only-fax.pdf"].error
    assert set(chunk_doc_ids(index)) == {by_name["crazyones-pdfa.pdf"].doc_id}


class FailOnText(Embeddings):
    """The real embedder, failing on one marked text: injects a fault mid-upload (no real way to
    make Chroma or the model fail on demand)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if any("EXPLODE" in text for text in texts):
            raise RuntimeError("embedding service failed")
        return EMBEDDER.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return EMBEDDER.embed_query(text)


class CountingEmbedder(FailOnText):
    """The real embedder, noting how many texts each call gets."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return super().embed_documents(texts)


def long_text(paragraphs: int) -> str:
    return "\n\n".join(f"Paragraph {n} is about topic {n}. " * 30 for n in range(paragraphs))


def test_a_large_document_is_embedded_and_stored_in_slices(data_dir: Path) -> None:
    """Memory holds one slice of vectors, not a whole document's."""
    embedder = CountingEmbedder()
    index = open_index(data_dir, embedder, write_batch=8)
    try:
        [added] = index.add_files([("long.txt", long_text(30).encode())])
        assert added.status == "added" and added.chunks > 16
        assert max(embedder.calls) <= 8 and sum(embedder.calls) == added.chunks
        assert len(chunk_doc_ids(index)) == added.chunks
        assert index.keyword_search("paragraph 29 topic 29", 1)[0].source == "long.txt"
    finally:
        index.close()


def test_a_failure_in_a_later_slice_removes_the_earlier_ones(data_dir: Path) -> None:
    index = open_index(data_dir, FailOnText(), write_batch=4)
    try:
        [failed] = index.add_files([("long.txt", (long_text(12) + " EXPLODE").encode())])
        assert failed.status == "failed" and "embedding service failed" in failed.error
        assert index.documents() == [] and chunk_doc_ids(index) == []
        assert list(index.files_dir.iterdir()) == []
    finally:
        index.close()


def test_an_unreadable_path_is_reported_and_the_others_go_in(
    index: DocumentIndex, good_pdfs: Path, tmp_path: Path
) -> None:
    results = index.add_paths([tmp_path / "gone.pdf", good_pdfs / "crazyones-pdfa.pdf"])
    assert [r.status for r in results] == ["failed", "added"]
    assert results[0].file == "gone.pdf" and "could not be read" in results[0].error


def test_failure_leaves_nothing_half_indexed(data_dir: Path, good_pdfs: Path) -> None:
    index = open_index(data_dir, FailOnText())
    try:
        bomb = ("bomb.txt", ("Normal text. " * 200 + "EXPLODE").encode())
        results = index.add_files(
            [bomb, ("crazy.pdf", (good_pdfs / "crazyones-pdfa.pdf").read_bytes())]
        )
        assert [r.status for r in results] == ["failed", "added"]
        assert "embedding service failed" in results[0].error
        assert [d.source for d in index.documents()] == ["crazy.pdf"]
        assert set(chunk_doc_ids(index)) == {results[1].doc_id}
        assert len(list(index.files_dir.iterdir())) == 1
    finally:
        index.close()


def test_a_search_during_an_add_never_sees_the_half_written_file(data_dir: Path) -> None:
    """Chunks reach Chroma and the keyword table slice by slice before the catalog row: a
    search meanwhile must not return them (the background worker writes while others ask)."""
    index = open_index(data_dir, write_batch=4)
    try:
        index.add_files([("pump.md", b"# Pump\n\nThe P-40 pump moves 40 litres a minute.")])
        data = ("Zorblax valves open slowly. " * 40 + "\n\n").encode() * 12
        doc_id = hashlib.sha256(data).hexdigest()[:16]
        adder = threading.Thread(target=index.add_files, args=([("zorblax.txt", data)],))
        adder.start()
        half_written = leaked = 0
        while adder.is_alive():
            written = index._vectors.chunk_counts()[doc_id] > 0
            hits = index.search("zorblax valves", 10) + index.keyword_search("zorblax", 10)
            catalogued = index.document(doc_id) is not None
            half_written += written and not catalogued
            leaked += not catalogued and any(hit.doc_id == doc_id for hit in hits)
        adder.join()
        assert half_written, "no search ran while the file was half written"
        assert not leaked
        assert index.keyword_search("zorblax", 10)[0].doc_id == doc_id
    finally:
        index.close()


def test_a_write_step_waits_for_reads_and_stops_once_interrupted() -> None:
    gate = WriteSteps(max_wait_s=30)
    waited: list[float] = []

    def write_step() -> None:
        started = time.monotonic()
        gate.before_write_step()
        waited.append(time.monotonic() - started)

    with gate.reading():
        writer = threading.Thread(target=write_step)
        writer.start()
        time.sleep(0.3)  # the read's own work
    writer.join(10)
    assert waited and 0.25 <= waited[0] < 10
    # With no read in progress, nothing waits; a read that never ends holds a step max_wait_s.
    gate.before_write_step()
    impatient = WriteSteps(max_wait_s=0.2)
    with impatient.reading():
        started = time.monotonic()
        impatient.before_write_step()
        assert 0.15 <= time.monotonic() - started < 5
    # Once interrupted (the process ends), every step stops its write.
    gate.interrupt()
    with pytest.raises(WritesInterrupted):
        gate.before_write_step()


def test_the_index_keeps_the_relevance_threshold_of_the_embedder_it_was_built_with(
    data_dir: Path, good_pdfs: Path
) -> None:
    index = open_index(data_dir)
    try:
        assert index.relevance_threshold == calibrated_threshold("local", CONFIG.embedding_model)
        assert index.stats().relevance_threshold == 0.31
        index.add_paths([good_pdfs / "crazyones-pdfa.pdf"])
        # OpenAI's API cannot be reached here: MiniLM stands in for its vectors. What is checked is
        # that the index now carries the (missing) calibration of the embedder it was rebuilt with.
        index.reindex(IndexConfig("openai", "text-embedding-3-small", 1000, 150))
        assert index.relevance_threshold is None
    finally:
        index.close()
    reopened = open_index(data_dir)
    try:
        assert reopened.config.embedding_provider == "openai"
        # The default config it was opened with (MiniLM) does not lend the index its threshold.
        assert reopened.relevance_threshold is None
        reopened.reindex(CONFIG)
        assert reopened.relevance_threshold == 0.31
    finally:
        reopened.close()


def test_reindex_switches_collection_and_counts(index: DocumentIndex, good_pdfs: Path) -> None:
    index.add_paths([good_pdfs / "pdflatex-4-pages.pdf", good_pdfs / "crazyones-pdfa.pdf"])
    before = index.stats()
    result = index.reindex(IndexConfig("local", "all-MiniLM-L6-v2", 400, 40))
    after = index.stats()
    assert result.version == after.version > before.version
    assert after.collection != before.collection and after.chunks == result.chunks > before.chunks
    assert after.config.chunk_size == 400
    keyword_hits = index.keyword_search("misfits rebels", 5)
    assert keyword_hits and keyword_hits[0].source == "crazyones-pdfa.pdf"
    assert index._keyword.chunk_count() == after.chunks
    assert [p.name for p in (index.data_dir / "keyword").iterdir()] == [after.collection]
    names = [c.name for c in index._client.list_collections()]
    assert names == [after.collection]
    assert sorted(chunk_doc_ids(index)) == sorted(
        d.doc_id for d in index.documents() for _ in range(d.chunks)
    )


def test_leftovers_of_a_crash_are_removed_at_start(data_dir: Path, good_pdfs: Path) -> None:
    index = open_index(data_dir)
    index.add_paths([good_pdfs / "crazyones-pdfa.pdf"])
    index._client.get_or_create_collection(f"{COLLECTION_PREFIX}99").add(
        ids=["x"], embeddings=[[0.1] * 384], documents=["half-built"]
    )
    orphan = Document(
        page_content="chunk of a document whose catalog row was never written",
        metadata={"doc_id": "orphan", "source": "o.pdf", "page": 1, "chunk_index": 0},
    )
    index._vectors.add(["orphan:0"], [orphan], [EMBEDDER.embed_query("orphan")])
    (index.files_dir / "deadbeef.pdf.part").write_bytes(b"partial")
    index.close()

    reopened = open_index(data_dir)
    try:
        assert [c.name for c in reopened._client.list_collections()] == [f"{COLLECTION_PREFIX}1"]
        assert "orphan" not in chunk_doc_ids(reopened)
        assert [p.suffix for p in reopened.files_dir.iterdir()] == [".pdf"]
    finally:
        reopened.close()


def test_second_process_is_refused_with_the_owner_named(
    index: DocumentIndex, data_dir: Path
) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from ingest.ownership import DataDirLock, DataDirBusy
        try:
            DataDirLock.acquire(Path({str(data_dir)!r}), "second")
        except DataDirBusy as busy:
            print(busy)
            raise SystemExit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 3, done.stderr
    assert "in use by docqa" in done.stdout and "DOCQA_CHROMA_URL" in done.stdout


def test_same_process_shares_the_lock(index: DocumentIndex, data_dir: Path) -> None:
    """Streamlit sessions (threads) of one process open the same data dir: that must not block."""
    again = open_index(data_dir)
    assert again._lock is index._lock


def test_another_instance_follows_a_reindex(index: DocumentIndex, data_dir: Path, good_pdfs: Path):
    """A second instance on the same data dir (another cache entry, or a server-mode process)
    keeps answering after the first one switched collections."""
    index.add_paths([good_pdfs / "crazyones-pdfa.pdf"])
    other = open_index(data_dir)
    assert other.search("misfits", 1)
    index.reindex(IndexConfig("local", "all-MiniLM-L6-v2", 300, 30))
    [hit] = other.search("misfits and rebels", 1)
    assert hit.source == "crazyones-pdfa.pdf"
    assert other.keyword_search("misfits", 1)[0].source == "crazyones-pdfa.pdf"
    assert other.config.chunk_size == 300


def test_folder_size_skips_what_is_removed_while_it_walks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker swaps keyword-index folders while the Admin page sums the data dir: here the
    # folder goes as soon as the walk reads its first size, before the walk reaches it.
    (tmp_path / "kept.bin").write_bytes(b"x" * 10)
    swapped = tmp_path / "keyword" / "bm25-1"
    swapped.mkdir(parents=True)
    (swapped / "index.bin").write_bytes(b"y" * 5)
    real_stat = os.stat

    def stat_while_swapping(path, *args, **kwargs):
        shutil.rmtree(swapped, ignore_errors=True)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(index_module.os, "stat", stat_while_swapping)
    assert index_module._folder_size(tmp_path) == 10
