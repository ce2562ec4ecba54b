"""Reciprocal rank fusion on hand-made rankings whose order is worked out by hand."""

from __future__ import annotations

from ingest.records import SearchHit
from llm.retrieval.fusion import reciprocal_rank_fusion


def hit(name: str, score: float, chunk_index: int = 0) -> SearchHit:
    return SearchHit(name, f"{name}.pdf", 1, chunk_index, score, f"text of {name}")


def names(fused) -> list[str]:
    return [f.hit.doc_id for f in fused]


def test_rankings_that_disagree_fuse_into_the_hand_computed_order() -> None:
    # Vector search prefers A, keyword search prefers E; C is high in both, B and D only in the
    # vector ranking, E and F only in the keyword one.
    vector = [hit("A", 0.81), hit("B", 0.74), hit("C", 0.70), hit("D", 0.52)]
    keyword = [hit("E", 9.1), hit("C", 7.5), hit("F", 3.2), hit("A", 1.0)]

    fused = reciprocal_rank_fusion([vector, keyword])

    # By hand, k = 60: A = 1/61 + 1/64 = 0.032018, C = 1/63 + 1/62 = 0.032002, E = 1/61 = 0.016393,
    # B = 1/62 = 0.016129, F = 1/63 = 0.015873, D = 1/64 = 0.015625.
    assert names(fused) == ["A", "C", "E", "B", "F", "D"]
    assert [f.rrf for f in fused] == [
        1 / 61 + 1 / 64,
        1 / 63 + 1 / 62,
        1 / 61,
        1 / 62,
        1 / 63,
        1 / 64,
    ]
    assert [f.hit.score for f in fused] == [f.rrf for f in fused]
    assert [f.ranks for f in fused] == [(1, 4), (3, 2), (None, 1), (2, None), (None, 3), (4, None)]
    # The original scores stay available: the low-relevance warning reads the cosine similarity.
    assert [f.vector_score for f in fused] == [0.81, 0.70, None, 0.74, None, 0.52]
    assert [f.keyword_score for f in fused] == [1.0, 7.5, 9.1, None, 3.2, None]
    assert fused[0].hit.text == "text of A"


def test_the_constant_k_changes_the_order() -> None:
    # Y is third in one ranking and fourth in the other. k = 1: X = 1/2 = 0.5 beats
    # Y = 1/4 + 1/5 = 0.45. k = 60: Y = 1/63 + 1/64 = 0.0315 beats X = 1/61 = 0.0164.
    vector = [hit("X", 0.9), hit("V", 0.8), hit("Y", 0.7)]
    keyword = [hit("W", 5.0), hit("U", 4.0), hit("T", 3.0), hit("Y", 2.0)]

    assert names(reciprocal_rank_fusion([vector, keyword], k=1))[0] == "X"
    assert names(reciprocal_rank_fusion([vector, keyword], k=60))[0] == "Y"


def test_a_ranking_at_half_weight_counts_half() -> None:
    # G is second in the full-weight ranking; H first and I second in the half-weight one.
    # By hand: G = 1/62 = 0.01613 beats H = 0.5/61 = 0.00820; with equal weights H = 1/61 wins.
    own = [hit("J", 0.9), hit("G", 0.8)]
    beside = [hit("H", 0.7), hit("I", 0.6)]

    fused = reciprocal_rank_fusion([own, beside], weights=[1.0, 0.5])

    assert names(fused) == ["J", "G", "H", "I"]
    assert [f.rrf for f in fused] == [1 / 61, 1 / 62, 0.5 / 61, 0.5 / 62]
    assert names(reciprocal_rank_fusion([own, beside]))[:2] == ["J", "H"]


def test_ties_go_to_the_better_best_rank_then_to_the_earlier_ranking() -> None:
    vector = [hit("P", 0.9), hit("Q", 0.8)]
    keyword = [hit("R", 3.0), hit("S", 2.0)]

    # P and R both score 1/61 and are both first somewhere: the earlier ranking decides.
    assert names(reciprocal_rank_fusion([vector, keyword])) == ["P", "R", "Q", "S"]
    assert names(reciprocal_rank_fusion([keyword, vector])) == ["R", "P", "S", "Q"]


def test_chunks_are_told_apart_by_document_and_chunk_index() -> None:
    vector = [hit("A", 0.9, chunk_index=0), hit("A", 0.8, chunk_index=1)]
    keyword = [hit("B", 4.0, chunk_index=0), hit("A", 3.0, chunk_index=1)]

    fused = reciprocal_rank_fusion([vector, keyword])

    assert [(f.hit.doc_id, f.hit.chunk_index) for f in fused] == [("A", 1), ("A", 0), ("B", 0)]
    assert fused[0].rrf == 1 / 62 + 1 / 62


def test_a_repeat_within_one_ranking_counts_once_and_limit_cuts() -> None:
    vector = [hit("A", 0.9), hit("A", 0.9), hit("B", 0.5)]

    fused = reciprocal_rank_fusion([vector], limit=1)

    assert names(fused) == ["A"]
    assert fused[0].rrf == 1 / 61
    assert names(reciprocal_rank_fusion([vector])) == ["A", "B"]
    assert reciprocal_rank_fusion([vector])[1].ranks == (3,)
    assert reciprocal_rank_fusion([[], []]) == []
