"""The index's search as a LangChain retriever, so each lookup is traced as a `retriever` run."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from ingest.records import SearchHit

SearchFn = Callable[[str, int], list[SearchHit]]


def hit_to_document(hit: SearchHit) -> Document:
    return Document(
        page_content=hit.text,
        metadata={
            "doc_id": hit.doc_id,
            "source": hit.source,
            "page": hit.page,
            "chunk_index": hit.chunk_index,
            "score": hit.score,
            "location": hit.location,
            "ocr": hit.ocr,
        },
    )


def document_to_hit(document: Document) -> SearchHit:
    meta = document.metadata
    return SearchHit(
        doc_id=meta["doc_id"],
        source=meta["source"],
        page=meta["page"],
        chunk_index=meta["chunk_index"],
        score=meta["score"],
        text=document.page_content,
        location=meta.get("location"),
        ocr=meta.get("ocr", False),
    )


class IndexRetriever(BaseRetriever):
    """Top-k chunks from `search(query, k)`, best first, with the hit fields in the metadata."""

    search: SearchFn
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in self.search(query, self.k)]
