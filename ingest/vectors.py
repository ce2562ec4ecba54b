"""The chunk vectors in one Chroma collection, through public APIs only, batched in one place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

import chromadb
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

SPACE = {"hnsw:space": "cosine"}


class ChunkVectors:
    """One Chroma collection of chunks: written with vectors computed here (the embedded text
    carries the document title, the stored text does not), searched by vector.

    chromadb's collection API does the writing and reading; langchain-chroma the search of one
    vector, chromadb's the search of several at once.
    """

    def __init__(self, client: chromadb.ClientAPI, name: str, embeddings: Embeddings) -> None:
        self.name = name
        self.embeddings = embeddings
        self._client = client
        self._collection = client.get_or_create_collection(name, metadata=SPACE)
        self._search = Chroma(
            collection_name=name,
            embedding_function=embeddings,
            client=client,
            collection_metadata=SPACE,
        )

    def count(self) -> int:
        return self._collection.count()

    def add(self, ids: list[str], chunks: list[Document], vectors: list[list[float]]) -> None:
        """Write chunks with their vectors, in batches the server accepts."""
        batch = self._client.get_max_batch_size()
        for start in range(0, len(ids), batch):
            part = slice(start, start + batch)
            self._collection.upsert(
                ids=ids[part],
                embeddings=vectors[part],
                documents=[chunk.page_content for chunk in chunks[part]],
                metadatas=[chunk.metadata for chunk in chunks[part]],
            )

    def remove_document(self, doc_id: str) -> None:
        self._collection.delete(where={"doc_id": doc_id})

    def nearest(
        self, vector: list[float], k: int, only: Collection[str] | None = None
    ) -> list[tuple[Document, float]]:
        """The k chunks nearest the vector, with their cosine distances; with `only`, among the
        chunks of those documents."""
        return self._search.similarity_search_by_vector_with_relevance_scores(
            vector, k=k, filter=_of_documents(only)
        )

    def nearest_each(
        self, vectors: list[list[float]], k: int, only: Collection[str] | None = None
    ) -> list[list[tuple[Document, float]]]:
        """`nearest` for each vector, in one query: langchain-chroma takes one vector a call, and
        each call walks the index and reads the metadata again."""
        if len(vectors) == 1:
            return [self.nearest(vectors[0], k, only)]
        found = self._collection.query(
            query_embeddings=vectors,
            n_results=k,
            where=_of_documents(only),
            include=["documents", "metadatas", "distances"],
        )
        return [
            [
                (Document(page_content=text, metadata=meta), distance)
                for text, meta, distance in zip(texts, metas, distances, strict=True)
            ]
            for texts, metas, distances in zip(
                found["documents"], found["metadatas"], found["distances"], strict=True
            )
        ]

    def vectors(self, ids: list[str] | None = None) -> dict[str, list[float]]:
        """The stored vectors of these chunk ids (None: of every chunk)."""
        stored = self._collection.get(ids=ids, include=["embeddings"])
        return dict(zip(stored["ids"], stored["embeddings"], strict=True))

    def chunks(self, doc_id: str) -> list[Document]:
        stored = self._collection.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        return [
            Document(page_content=text, metadata=meta)
            for text, meta in zip(stored["documents"], stored["metadatas"], strict=True)
        ]

    def chunk_counts(self) -> Counter[str]:
        """How many chunks each document id has in the collection."""
        stored = self._collection.get(include=["metadatas"])
        return Counter(str(meta.get("doc_id")) for meta in stored["metadatas"] or [])

    def doc_ids(self) -> set[str]:
        return set(self.chunk_counts())


def _of_documents(only: Collection[str] | None) -> dict[str, Any] | None:
    return None if only is None else {"doc_id": {"$in": sorted(only)}}
