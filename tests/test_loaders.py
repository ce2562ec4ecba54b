"""Loading the shared good and bad files, and the plain reasons for refusing a file."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import pypdf
import pytest

from ingest.chunking import document_title
from ingest.loaders import SUPPORTED_SUFFIXES, RejectedFile, load_document

MB = 1024 * 1024
LIMIT = 50 * MB

# file -> (kind, pages with text, a phrase from the text)
GOOD = {
    "crazyones-pdfa.pdf": ("pdf", 1, "the crazy ones"),
    "google-doc-document.pdf": ("pdf", 1, "Beautiful is better than ugly."),
    "pdflatex-4-pages.pdf": ("pdf", 4, "Hello, here is some text without a meaning."),
    "multicolumn.pdf": ("pdf", 3, "Two-Column Document with Lorem Ipsum"),
    "pdflatex-outline.pdf": ("pdf", 4, "Contents"),
    "GeoTopo-komprimiert.pdf": ("pdf", 117, "Geometrie und Topologie"),
    "libreoffice-form.pdf": ("pdf", 1, "Example for a Form"),
    "habibi.pdf": ("pdf", 1, "حَبيبي habibi"),
    "habibi-rotated.pdf": ("pdf", 4, "habibi"),
    "with-attachment.pdf": ("pdf", 1, "Lorem ipsum dolor sit amet"),
    "latin1-recipe.txt": ("text", 1, "Café crème brûlée: la recette traditionnelle."),
    "utf16-notes.txt": ("text", 1, "Budget approved: 12,500 EUR."),
}

# file -> words the reason must contain
BAD = {
    "encrypted-password.pdf": "encrypted",
    "corrupt-invalid-pages.pdf": "damaged",
    "empty.pdf": "empty",
    "truncated.pdf": "damaged",
    "not-a-pdf.pdf": "not really a PDF",
    "image-only-cmyk.pdf": "no text layer",
    "image-only-grayscale.pdf": "no text layer",
    "image-only-fax.pdf": "no text layer",
    "binary-garbage.txt": "binary data",
}


def test_tables_cover_every_shared_file(good_pdfs: Path, bad_pdfs: Path) -> None:
    assert {p.name for p in good_pdfs.iterdir()} == set(GOOD)
    assert {p.name for p in bad_pdfs.iterdir()} == set(BAD)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_file_loads_with_text_on_every_page(good_pdfs: Path, name: str) -> None:
    kind, page_count, phrase = GOOD[name]
    data = (good_pdfs / name).read_bytes()

    doc = load_document(name, data, LIMIT)

    assert (doc.source, doc.kind) == (name, kind)
    assert [page.number for page in doc.pages] == list(range(1, page_count + 1))
    assert all(page.text.strip() for page in doc.pages)
    assert phrase.lower() in " ".join(page.text for page in doc.pages).lower()
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.doc_id == doc.sha256[:16]
    assert doc.size_bytes == len(data)


def test_pdf_text_is_lightly_normalised(good_pdfs: Path) -> None:
    doc = load_document("c.pdf", (good_pdfs / "crazyones-pdfa.pdf").read_bytes(), LIMIT)
    text = doc.pages[0].text

    assert "The misfits. The rebels." in text  # the "ﬁ" ligature is spelled out
    assert "  " not in text
    assert "\x00" not in text


def test_running_heads_and_page_numbers_are_left_out(fixtures_dir: Path) -> None:
    manual = fixtures_dir / "eval" / "docs" / "R-data.pdf"
    spec = fixtures_dir / "eval" / "docs" / "shared-mime-info-spec.pdf"

    data_pages = {
        p.number: p.text for p in load_document(manual.name, manual.read_bytes(), LIMIT).pages
    }
    spec_doc = load_document(spec.name, spec.read_bytes(), LIMIT)
    spec_pages = {p.number: p.text for p in spec_doc.pages}

    # R-data.pdf page 15 opened with "Chapter 2: Spreadsheet-like data 11".
    assert data_pages[15].startswith("of rows to be read")
    assert "Spreadsheet-like data" not in data_pages[15]
    # A sentence that runs across pages 14 and 15 of the spec is no longer broken by the page
    # number at the foot of 14 and the running title at the head of 15.
    assert spec_pages[14].endswith("the RECOMMENDED order to perform the checks")
    assert spec_pages[15].startswith("is:")
    # The title page keeps the running title: it is the document's title.
    assert spec_pages[1].startswith("Shared MIME-info Database")
    assert document_title(spec_doc) == "Shared MIME-info Database"


def test_lines_that_recur_at_page_edges_without_a_page_number_stay(fixtures_dir: Path) -> None:
    listings = fixtures_dir / "hard" / "docs" / "listings.pdf"

    pages = load_document(listings.name, listings.read_bytes(), LIMIT).pages

    # Code examples end several pages with the same line; that is content, not a running foot.
    ends = [p.number for p in pages if p.text.rstrip().endswith("\\end{lstlisting}")]
    assert len(ends) >= 3


def test_legacy_and_utf16_text_files_decode_correctly(good_pdfs: Path) -> None:
    recipe = load_document("r.txt", (good_pdfs / "latin1-recipe.txt").read_bytes(), LIMIT)
    notes = load_document("n.txt", (good_pdfs / "utf16-notes.txt").read_bytes(), LIMIT)

    assert recipe.pages[0].text == (
        "Café crème brûlée: la recette traditionnelle.\n"
        "Temps de cuisson: 45 minutes à 150 degrés.\n"
    )
    assert notes.pages[0].text.startswith("Meeting notes\nThe launch date moved to 14 March.")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("\ufeff# Title\r\n\r\nBody ✓".encode(), "# Title\n\nBody ✓"),
        ("\ufeff# Titel\nGrüße".encode("utf-16-be"), "# Titel\nGrüße"),
        ("\u201cquoted\u201d \u20ac5".encode("cp1252"), "\u201cquoted\u201d \u20ac5"),
    ],
    ids=["utf8-bom-crlf", "utf16-be-bom", "cp1252"],
)
def test_markdown_encodings(data: bytes, expected: str) -> None:
    doc = load_document("notes.md", data, LIMIT)

    assert doc.kind == "markdown"
    assert doc.pages[0].text == expected


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_refused_by_name_with_a_plain_reason(bad_pdfs: Path, name: str) -> None:
    with pytest.raises(RejectedFile) as caught:
        load_document(name, (bad_pdfs / name).read_bytes(), LIMIT)

    assert caught.value.source == name
    assert BAD[name] in caught.value.reason
    assert str(caught.value) == f"{name} {caught.value.reason}"


def test_pdf_with_only_an_owner_password_is_readable(good_pdfs: Path) -> None:
    writer = pypdf.PdfWriter(clone_from=good_pdfs / "crazyones-pdfa.pdf")
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)

    doc = load_document("locked-printing.pdf", buffer.getvalue(), LIMIT)

    assert "crazy ones" in doc.pages[0].text


def test_too_large_file_names_its_size_and_the_limit(good_pdfs: Path) -> None:
    data = (good_pdfs / "GeoTopo-komprimiert.pdf").read_bytes()

    with pytest.raises(RejectedFile, match=r"too large \(1\.7 MB; the limit is 1 MB\)"):
        load_document("GeoTopo-komprimiert.pdf", data, 1 * MB)


@pytest.mark.parametrize(
    ("name", "words"), [("report.odt", "is a .odt file"), ("README", "has no file extension")]
)
def test_unknown_type_lists_the_supported_ones(name: str, words: str) -> None:
    with pytest.raises(RejectedFile) as caught:
        load_document(name, b"some bytes", LIMIT)

    assert words in caught.value.reason
    assert all(suffix in caught.value.reason for suffix in SUPPORTED_SUFFIXES)


def test_suffix_is_case_insensitive(good_pdfs: Path) -> None:
    doc = load_document("CRAZY.PDF", (good_pdfs / "crazyones-pdfa.pdf").read_bytes(), LIMIT)

    assert doc.kind == "pdf"


def test_blank_text_file_is_refused() -> None:
    with pytest.raises(RejectedFile, match="no text"):
        load_document("blank.txt", b" \r\n\t\n", LIMIT)


def test_malformed_pdf_does_not_flood_the_log(
    bad_pdfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RejectedFile):
        load_document("truncated.pdf", (bad_pdfs / "truncated.pdf").read_bytes(), LIMIT)

    assert not [record for record in caplog.records if record.name.startswith("pypdf")]
