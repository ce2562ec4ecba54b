"""Page preview: the page a cited passage came from, drawn as a viewer shows it, passage marked."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from functools import partial

import streamlit as st

from app import reading, resources
from app.text import inert_markdown
from ingest.index import DocumentIndex
from ingest.loaders import load_document
from ingest.pages import (
    Box,
    Excerpt,
    PageImage,
    pdf_page_count,
    pdf_passage_boxes,
    render_pdf_page,
    text_excerpt,
)
from ingest.records import DocumentRecord

PAGE_KEY = "preview_page"
MIME_TYPES = {
    "pdf": "application/pdf",
    "text": "text/plain",
    "markdown": "text/markdown",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "html": "text/html",
}
# Scrolls the dialog to the first mark. The script is fixed text: the HTML beside it holds only
# numbers and a base64 picture, never document text, so nothing from a document can run.
_SCROLL_TO_MARK = (
    "<script>document.querySelector('.docqa-page .docqa-mark')"
    "?.scrollIntoView({block: 'center'});</script>"
)


@dataclass(frozen=True)
class Passage:
    """A passage to show where it stands: its document, its page and its text."""

    doc_id: str
    page: int
    text: str


def page_button(label: str, passage: Passage, key: str) -> None:
    """A link-like button that opens the passage's page in a dialog."""
    if st.button(
        label,
        key=key,
        type="tertiary",
        icon=":material/pageview:",
        help="Show this passage on its page",
        on_click=_start_at,
        args=(passage.page,),
    ):
        page_dialog(passage)


def _start_at(page: int) -> None:
    st.session_state[PAGE_KEY] = page


@st.dialog("Where this comes from", width="large", icon=":material/pageview:")
def page_dialog(passage: Passage) -> None:
    settings = resources.settings()
    index = resources.index(settings)
    record = index.document(passage.doc_id)
    if record is None:
        st.warning("This document is no longer in the index.", icon=":material/search_off:")
        return
    # A kept answer may cite a document its reader has since lost access to.
    if not reading.may_read(settings, index, record.doc_id):
        st.warning("This document is not shared with you any more.", icon=":material/lock:")
        return
    if record.kind == "pdf":
        _pdf_page(index, record, passage)
    else:
        _text_page(index, record, passage)
    st.download_button(
        f"Download {record.source}",
        partial(index.original, record),
        file_name=record.source,
        mime=MIME_TYPES.get(record.kind, "application/octet-stream"),
        icon=":material/download:",
        on_click="ignore",
    )


def _pdf_page(index: DocumentIndex, record: DocumentRecord, passage: Passage) -> None:
    pages = _pdf_pages(record.sha256, index, record)
    page = min(max(1, st.session_state.get(PAGE_KEY, passage.page)), pages)
    _page_turner(record, page, pages, passage)
    image = _rendered(record.sha256, page, index, record)
    looked_for = page == passage.page and bool(passage.text)
    boxes = _marks(record.sha256, page, passage.text, index, record) if looked_for else []
    if looked_for and not boxes:
        st.caption("The passage could not be placed on this page; its text is under the page.")
    st.html(page_html(image, boxes), unsafe_allow_javascript=bool(boxes))
    if looked_for and not boxes:
        st.text(passage.text)


def _page_turner(record: DocumentRecord, page: int, pages: int, passage: Passage) -> None:
    if not passage.text:
        marked = ""
    elif page == passage.page:
        marked = " · passage marked"
    else:
        marked = f" · the passage is on page {passage.page}"
    st.markdown(f"**{inert_markdown(record.source)}** · page {page} of {pages}:small[{marked}]")
    with st.container(horizontal=True, horizontal_alignment="distribute"):
        st.button(
            "Previous page",
            icon=":material/chevron_left:",
            disabled=page <= 1,
            on_click=_start_at,
            args=(page - 1,),
            key="preview_back",
        )
        st.button(
            "Next page",
            icon=":material/chevron_right:",
            icon_position="right",
            disabled=page >= pages,
            on_click=_start_at,
            args=(page + 1,),
            key="preview_forward",
        )


def page_html(image: PageImage, boxes: list[Box]) -> str:
    """The page picture with one highlight per box, placed in percent so it scales with it."""
    picture = base64.b64encode(image.image).decode("ascii")
    marks = "".join(
        f'<div class="docqa-mark" style="position:absolute;left:{b.left:.3%};top:{b.top:.3%};'
        f"width:{b.width:.3%};height:{b.height:.3%};background:rgba(255,208,0,.5);"
        'mix-blend-mode:multiply;border-radius:2px;pointer-events:none"></div>'
        for b in boxes
    )
    return (
        '<div class="docqa-page" style="position:relative;width:100%;'
        'box-shadow:0 1px 4px rgba(0,0,0,.25)">'
        f'<img src="data:{image.mime};base64,{picture}" alt="Page {image.page}" '
        f'width="{image.width}" height="{image.height}" '
        'style="display:block;width:100%;height:auto">'
        f"{marks}{_SCROLL_TO_MARK if boxes else ''}</div>"
    )


def _text_page(index: DocumentIndex, record: DocumentRecord, passage: Passage) -> None:
    excerpt = _excerpt(record.sha256, passage.page, passage.text, index, record)
    if excerpt.passage:
        where = " · passage marked"
    elif passage.text:
        where = " · the passage could not be placed in the text"
    else:
        where = ""
    st.markdown(f"**{inert_markdown(record.source)}**:small[{where}]")
    st.html(excerpt_html(excerpt))


def excerpt_html(excerpt: Excerpt) -> str:
    """The text around the passage, the passage marked; document text is escaped, never run."""
    before = ("…" if excerpt.cut_before else "") + html.escape(excerpt.before)
    after = html.escape(excerpt.after) + ("…" if excerpt.cut_after else "")
    marked = (
        f'<mark class="docqa-mark">{html.escape(excerpt.passage)}</mark>' if excerpt.passage else ""
    )
    return (
        '<div class="docqa-text" style="white-space:pre-wrap;font-family:var(--font, serif);'
        "line-height:1.5;max-height:70vh;overflow-y:auto;padding:.5rem 1rem;"
        f'border:1px solid rgba(128,128,128,.3);border-radius:.5rem">{before}{marked}{after}</div>'
    )


# Cached per file content and page: a page turn or a second look is a cache hit.
@st.cache_data(max_entries=64, show_spinner=False)
def _pdf_pages(sha256: str, _index: DocumentIndex, _record: DocumentRecord) -> int:
    return pdf_page_count(_index.original(_record))


@st.cache_data(max_entries=256, show_spinner="Drawing the page…")
def _rendered(sha256: str, page: int, _index: DocumentIndex, _record: DocumentRecord) -> PageImage:
    return render_pdf_page(_index.original(_record), page)


@st.cache_data(max_entries=1024, show_spinner="Finding the passage on the page…")
def _marks(
    sha256: str, page: int, passage: str, _index: DocumentIndex, _record: DocumentRecord
) -> list[Box]:
    return pdf_passage_boxes(_index.original(_record), page, passage, _index.ocr)


@st.cache_data(max_entries=256, show_spinner=False)
def _excerpt(
    sha256: str, page: int, passage: str, _index: DocumentIndex, _record: DocumentRecord
) -> Excerpt:
    data = _index.original(_record)
    pages = load_document(_record.source, data, len(data)).pages
    text = next((p.text for p in pages if p.number == page), pages[0].text if pages else "")
    return text_excerpt(text, passage)
