"""Search modes over the index: vector, keyword (BM25), and hybrid (both fused by rank)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from ingest.records import SearchHit
from llm.answering.extractive import terms
from llm.retrieval.fusion import reciprocal_rank_fusion

SearchMode = Literal["vector", "keyword", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("vector", "keyword", "hybrid")
SearchFn = Callable[[str, int], list[SearchHit]]

# How deep each half looks before fusion: deeper than k, so a chunk ranked well by one half
# and modestly by the other can still rise (20 each measured better than 10 on the dev set).
FUSION_DEPTH = 20


class SearchableIndex(Protocol):
    def search(self, query: str, k: int) -> list[SearchHit]: ...
    def keyword_search(self, query: str, k: int) -> list[SearchHit]: ...
    def similarities(self, query: str, hits: list[SearchHit]) -> list[float]: ...


def make_search(index: SearchableIndex, mode: SearchMode = "hybrid") -> SearchFn:
    """A `search(query, k)` function for the mode; every hit's score is its cosine similarity."""
    if mode == "vector":
        return index.search
    if mode == "keyword":
        return lambda query, k: _with_similarity(index, query, index.keyword_search(query, k))
    return lambda query, k: hybrid_search(index, query, k)


def hybrid_search(index: SearchableIndex, query: str, k: int) -> list[SearchHit]:
    """Vector and keyword rankings fused by RRF; scores are cosine similarities for display."""
    depth = max(k, FUSION_DEPTH)
    vector_hits = index.search(query, depth)
    keyword_hits = index.keyword_search(query, depth)
    fused = reciprocal_rank_fusion([vector_hits, keyword_hits], limit=k)
    hits = [item.hit for item in fused]
    known = {(h.doc_id, h.chunk_index): h.score for h in vector_hits}
    missing = [h for h in hits if (h.doc_id, h.chunk_index) not in known]
    for hit, score in zip(missing, index.similarities(query, missing), strict=True):
        known[(hit.doc_id, hit.chunk_index)] = score
    return [dataclasses.replace(h, score=known[(h.doc_id, h.chunk_index)]) for h in hits]


def _with_similarity(index: SearchableIndex, query: str, hits: list[SearchHit]) -> list[SearchHit]:
    scores = index.similarities(query, hits)
    return [dataclasses.replace(h, score=s) for h, s in zip(hits, scores, strict=True)]


# A passage holding more than half of the question's content words is a match whatever its
# cosine: a short page scores low against a short question ("Who are the misfits?": 0.28).


def is_low_relevance(hits: Sequence[SearchHit], threshold: float, question: str = "") -> bool:
    """Whether no hit was found, or even the best one's cosine similarity is below `threshold`
    and no hit holds more than half of the question's content words."""
    if not hits:
        return True
    if max(hit.score for hit in hits) >= threshold:
        return False
    wanted = set(terms(question))
    return not wanted or all(2 * len(wanted & set(terms(hit.text))) <= len(wanted) for hit in hits)
