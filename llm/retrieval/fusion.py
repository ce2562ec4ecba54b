"""Reciprocal rank fusion: several rankings of chunks merged into one by their ranks alone."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.records import SearchHit

# The constant from Cormack et al. (2009): it damps the weight of the very first ranks.
RRF_K = 60


@dataclass(frozen=True)
class FusedHit:
    """A chunk after fusion.

    `hit.score` is the RRF score; `ranks[i]` (1-based) and `scores[i]` are the chunk's rank and
    original score in ranking i, or None where that ranking did not return it. With the rankings
    passed as (vector, keyword), `vector_score` is the cosine similarity the low-relevance
    warning needs.
    """

    hit: SearchHit
    ranks: tuple[int | None, ...]
    scores: tuple[float | None, ...]

    @property
    def rrf(self) -> float:
        return self.hit.score

    @property
    def vector_score(self) -> float | None:
        return self.scores[0]

    @property
    def keyword_score(self) -> float | None:
        return self.scores[1] if len(self.scores) > 1 else None


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[SearchHit]],
    k: int = RRF_K,
    limit: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[FusedHit]:
    """Chunks of all rankings by the sum of weight / (k + rank) over the rankings that returned
    them (every weight 1 unless `weights` gives one per ranking).

    A chunk is identified by (doc_id, chunk_index); a repeat within one ranking is ignored. Ties go
    to the chunk with the better best rank, then to the one an earlier ranking returned first.
    """
    weights = weights or [1.0] * len(rankings)
    found: dict[tuple[str, int], tuple[SearchHit, list[int | None], list[float | None]]] = {}
    for which, ranking in enumerate(rankings):
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.doc_id, hit.chunk_index)
            if key not in found:
                found[key] = (hit, [None] * len(rankings), [None] * len(rankings))
            _, ranks, scores = found[key]
            if ranks[which] is None:
                ranks[which] = rank
                scores[which] = hit.score
    fused = [
        # fsum is exact, so equal sets of ranks give equal scores in any order.
        FusedHit(
            dataclasses.replace(
                first,
                score=math.fsum(w / (k + r) for w, r in zip(weights, ranks, strict=True) if r),
            ),
            tuple(ranks),
            tuple(scores),
        )
        for first, ranks, scores in found.values()
    ]
    # `found` keeps first-seen order and sorted() is stable, which settles the last ties.
    fused.sort(key=lambda f: (-f.rrf, min(r for r in f.ranks if r)))
    return fused[:limit] if limit is not None else fused
