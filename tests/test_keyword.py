"""The BM25 keyword index: exact terms, staying in step on add and remove, persistence, rebuilds."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from langchain_core.documents import Document

from ingest.chunking import split_document
from ingest.keyword import KeywordIndex, tokenize
from ingest.loaders import load_document

R_MANUAL = [
    (1, "read.table reads a file in table format and creates a data frame from it."),
    (1, "The sep argument gives the field separator character, for example a semicolon."),
    (2, "Fixed-width files are read with read.fwf, giving the widths of the fields."),
]
TASN1_MANUAL = [
    (3, "asn1_der_coding encodes an element in DER; it returns ASN1_MEM_ERROR if len is short."),
    (4, "asn1_create_element creates a structure from a definitions tree."),
]


def chunks(source: str, pages_and_texts: list[tuple[int, str]]) -> list[Document]:
    return [
        Document(page_content=text, metadata={"source": source, "page": page, "chunk_index": n})
        for n, (page, text) in enumerate(pages_and_texts)
    ]


@pytest.fixture
def index(tmp_path: Path):
    opened = KeywordIndex(tmp_path / "keyword")
    yield opened
    opened.close()


def filled(index: KeywordIndex) -> KeywordIndex:
    index.add("r", chunks("R-data.pdf", R_MANUAL), version=2)
    index.add("tasn1", chunks("libtasn1.pdf", TASN1_MANUAL), version=3)
    return index


def test_tokens_keep_identifiers_whole_and_as_parts() -> None:
    assert tokenize("Use read.table, not asn1_der_coding!") == [
        "read.table",
        "asn1_der_coding",
        "use",
        "read",
        "tabl",
        "asn1",
        "der",
        "code",
    ]
    # Stopwords go, English suffixes are stemmed, accented and German words survive.
    assert tokenize("The Dokumente über l'été") == ["dokument", "über", "l", "été"]
    assert tokenize("of the and") == []


def test_exact_terms_find_their_chunk_with_its_citation(index: KeywordIndex) -> None:
    filled(index)

    hits = index.search("What does asn1_der_coding return?", 5)

    assert hits[0].doc_id == "tasn1"
    assert (hits[0].source, hits[0].page, hits[0].chunk_index) == ("libtasn1.pdf", 3, 0)
    assert hits[0].text == TASN1_MANUAL[0][1]
    assert hits[0].score > 0
    fwf = index.search("read.fwf widths", 5)[0]
    assert (fwf.doc_id, fwf.page, fwf.chunk_index) == ("r", 2, 2)
    # Only chunks sharing a term are returned, best first.
    sep = index.search("separator", 5)
    assert [(h.doc_id, h.chunk_index) for h in sep] == [("r", 1)]
    assert index.search("quantum chromodynamics", 5) == []
    assert index.search("the of", 5) == []
    assert index.version == 3
    assert index.doc_ids() == {"r", "tasn1"}
    assert index.chunk_count() == 5


def test_a_removed_document_is_never_returned(index: KeywordIndex) -> None:
    filled(index)
    assert index.search("asn1_der_coding", 5)

    assert index.remove("tasn1", version=4) is True

    for query in ("asn1_der_coding", "asn1_create_element definitions tree", "ASN1_MEM_ERROR len"):
        assert all(hit.doc_id != "tasn1" for hit in index.search(query, 10))
    assert index.search("asn1_der_coding", 5) == []
    assert index.search("read.table", 5)[0].doc_id == "r"
    assert index.version == 4
    assert index.doc_ids() == {"r"}
    assert index.remove("tasn1", version=5) is False
    assert index.version == 5


def test_adding_a_document_again_replaces_its_chunks(index: KeywordIndex) -> None:
    filled(index)

    index.add("r", chunks("R-data.pdf", R_MANUAL[:1]), version=4)

    assert index.chunk_count() == 3
    assert index.search("separator", 5) == []
    assert len(index.search("read.table", 5)) == 1


def test_the_matrix_is_rebuilt_once_per_change_not_per_question(index: KeywordIndex) -> None:
    filled(index)
    assert index.rebuilds == 0

    for _ in range(5):
        index.search("read.table", 3)
    assert index.rebuilds == 1

    index.remove("r", version=4)
    assert index.rebuilds == 1
    assert index.refresh() is True
    assert index.refresh() is False
    for _ in range(5):
        index.search("asn1_der_coding", 3)
    assert index.rebuilds == 2


def test_while_lagging_searches_keep_the_matrix_and_refreshes_wait_for_the_lag(
    index: KeywordIndex,
) -> None:
    filled(index)
    index.refresh()
    with index.lagging(3600):
        index.add("new", chunks("new.md", [(1, "The zorblax valve opens slowly.")]), version=5)
        assert index.refresh() is False, "rebuilt again within the lag"
        assert index.search("zorblax", 3) == [] and index.search("read.table", 3)
        assert index.rebuilds == 1
    # Up to date as soon as the run of changes ends.
    assert index.rebuilds == 2 and index.search("zorblax", 3)[0].source == "new.md"
    with index.lagging(0):
        index.remove("new", version=6)
        assert index.refresh() is True, "a lag of 0 rebuilds at every refresh"
    assert index.search("zorblax", 3) == []


def test_reopening_loads_the_saved_index_with_its_version(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    first = filled(KeywordIndex(folder))
    expected = first.search("asn1_der_coding separator", 5)
    first.close()

    reopened = KeywordIndex(folder)

    assert reopened.version == 3
    assert reopened.search("asn1_der_coding separator", 5) == expected
    assert reopened.rebuilds == 0
    reopened.close()


def test_a_change_not_yet_built_is_picked_up_after_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    first = filled(KeywordIndex(folder))
    first.refresh()
    first.remove("r", version=4)
    first.close()  # stopped before any search rebuilt the matrix

    reopened = KeywordIndex(folder)

    assert reopened.search("read.table", 5) == []
    assert reopened.rebuilds == 1
    assert reopened.version == 4
    reopened.close()


def test_chunks_stored_by_an_older_tokenizer_are_tokenized_again(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    filled(KeywordIndex(folder)).close()
    with sqlite3.connect(folder / "chunks.sqlite3") as db:
        db.execute("UPDATE chunks SET tokens = 'stale'")
        db.execute("UPDATE meta SET value = 'old' WHERE key = 'tokenizer'")
    db.close()

    reopened = KeywordIndex(folder)

    assert reopened.search("asn1_der_coding", 5)[0].doc_id == "tasn1"
    assert reopened.search("stale", 5) == []
    reopened.close()


def test_searches_in_other_threads_never_see_a_removed_document(index: KeywordIndex) -> None:
    filled(index)
    removed = threading.Event()
    seen_after_removal: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for _ in range(200):
                was_removed = removed.is_set()
                hits = index.search("asn1_der_coding read.table", 5)
                if was_removed:
                    seen_after_removal.extend(h.doc_id for h in hits if h.doc_id == "tasn1")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version in range(4, 14):
        index.add(
            f"extra{version}", chunks("extra.txt", [(1, f"read.table note {version}")]), version
        )
    index.remove("tasn1", version=14)
    removed.set()
    for thread in threads:
        thread.join()

    assert errors == []
    assert seen_after_removal == []
    assert index.search("asn1_der_coding", 5) == []


def test_a_real_manual_is_searchable_by_its_function_names(fixtures_dir: Path, tmp_path: Path):
    path = fixtures_dir / "eval" / "docs" / "libtasn1.pdf"
    doc = load_document(path.name, path.read_bytes(), 50 * 1024 * 1024)
    index = KeywordIndex(tmp_path / "keyword")
    index.add(doc.doc_id, split_document(doc, 1000, 150), version=2)

    hits = index.search("asn1_der_coding", 5)

    # Chunks naming the function come before those sharing only some of its parts.
    naming = ["asn1_der_coding" in hit.text for hit in hits]
    assert naming[0] and naming == sorted(naming, reverse=True)
    assert {hit.source for hit in hits} == {"libtasn1.pdf"}
    # The parts of an identifier find it too.
    assert "asn1_der_coding" in index.search("der coding", 1)[0].text
    index.close()
