"""Reciprocal-rank fusion: one ranking of candidates out of the rankings of several channels.

    fused(item) = sum over channels that found it of 1 / (rrf_k + rank in that channel)

with ranks from 1 and ``rrf_k`` from :class:`data.settings.RetrievalSettings` (60, the value of Cormack et al.,
2009). RRF needs no score calibration between BM25 and cosine similarity, and an item found by two channels
outranks one found by a single channel at the same rank. Ties in the fused score are broken by the best
single-channel rank, then by catalog position, so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from retrieval.channels import ChannelHits


@dataclass(frozen=True)
class ChannelScore:
    """Where one channel put a candidate: rank from 1, and the channel's own score."""

    rank: int
    score: float


def reciprocal_rank_fusion(
    rankings: Mapping[str, ChannelHits], rrf_k: int, weights: Mapping[str, float] | None = None
) -> list[tuple[int, float, dict[str, ChannelScore]]]:
    """Fuse per-channel rankings: ``(position, fused score, per-channel scores)``, best first.

    A channel's term is multiplied by its weight (1 for a channel ``weights`` does not name). Ties are broken by
    the best single-channel rank, then by catalog position.

    Example:
        >>> import numpy as np
        >>> a = ChannelHits(np.array([5, 7]), np.array([2.0, 1.0]))
        >>> b = ChannelHits(np.array([7, 9]), np.array([0.9, 0.8]))
        >>> [(p, round(s * 61 * 62, 3)) for p, s, _ in reciprocal_rank_fusion({"a": a, "b": b}, rrf_k=60)]
        [(7, 123.0), (5, 62.0), (9, 61.0)]
    """
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    parts: dict[int, dict[str, ChannelScore]] = {}
    for name, hits in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, (position, score) in enumerate(
            zip(hits.positions.tolist(), hits.scores.tolist(), strict=True), 1
        ):
            fused[position] = fused.get(position, 0.0) + weight / (rrf_k + rank)
            best_rank[position] = min(best_rank.get(position, rank), rank)
            parts.setdefault(position, {})[name] = ChannelScore(rank, float(score))
    order = sorted(fused, key=lambda p: (-fused[p], best_rank[p], p))
    return [(position, fused[position], parts[position]) for position in order]
