"""Ranking metrics for the cold-start benchmark, as pure numpy functions on ranks and slates.

Ranks are 1-based (the best item has rank 1) and count the whole catalog. Per-episode metrics return one value per
episode; :func:`bootstrap_mean` turns them into an estimate with a seeded 95% percentile confidence interval.

Example:
    >>> ranks = np.array([1, 3, 20])
    >>> hit_rate(ranks, 10).tolist(), reciprocal_rank(ranks).round(3).tolist()
    ([1.0, 1.0, 0.0], [1.0, 0.333, 0.05])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A metric's value over the episodes and its bootstrap confidence interval.

    Attributes:
        value: The metric on all episodes (``nan`` when there are none).
        low: Lower bound of the 95% percentile interval.
        high: Upper bound of the 95% percentile interval.
        n: How many episodes it was computed on.

    Example:
        >>> print(Estimate(0.1234, 0.1011, 0.1456, 490))
        0.123 [0.101, 0.146]
    """

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "n/a"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def rank_order(scores: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Item positions from best to worst along the last axis: higher score first, then lower tie-break value.

    NaN scores rank last. ``scores`` and ``tie_break`` have the same shape, ``(n_items,)`` or
    ``(n_episodes, n_items)``.

    Example:
        >>> rank_order(np.array([0.5, 0.9, 0.5]), np.array([0.7, 0.0, 0.2])).tolist()
        [1, 2, 0]
    """
    keys = -np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    return np.lexsort((tie_break, keys), axis=-1)


def ranks_from_order(order: np.ndarray) -> np.ndarray:
    """The 1-based rank of every item (inverse of :func:`rank_order`), same shape as ``order``.

    Example:
        >>> ranks_from_order(np.array([1, 2, 0])).tolist()
        [3, 1, 2]
    """
    ranks = np.empty_like(order)
    positions = np.broadcast_to(np.arange(1, order.shape[-1] + 1), order.shape)
    np.put_along_axis(ranks, order, positions, axis=-1)
    return ranks


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per episode: 1.0 when the target's rank is within ``k``, else 0.0 (HR@k)."""
    return (np.asarray(ranks) <= k).astype(float)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per episode, with one relevant item: ``1 / log2(rank + 1)`` within ``k``, else 0.0 (NDCG@k).

    Example:
        >>> ndcg(np.array([1, 3, 11]), 10).tolist()
        [1.0, 0.5, 0.0]
    """
    ranks = np.asarray(ranks, dtype=float)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """Per episode: ``1 / rank`` over the full ranking (its mean is MRR)."""
    return 1.0 / np.asarray(ranks, dtype=float)


def recall(other_ranks: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Per episode: the share of the user's other items ranked within ``k`` (``nan`` when there are none).

    Example:
        >>> recall([np.array([2, 30]), np.array([], dtype=int), np.array([5])], 10).tolist()
        [0.5, nan, 1.0]
    """
    return np.array([np.mean(np.asarray(ranks) <= k) if len(ranks) else np.nan for ranks in other_ranks])


def new_arrival_share(slates: np.ndarray, is_new: np.ndarray) -> np.ndarray:
    """Per episode: the share of its slate (a row of item positions) that are new arrivals.

    Example:
        >>> new_arrival_share(np.array([[0, 1], [2, 1]]), np.array([True, False, False])).tolist()
        [0.5, 0.0]
    """
    return np.asarray(is_new)[slates].mean(axis=-1)


def intra_list_diversity(slates: np.ndarray, category_codes: np.ndarray) -> np.ndarray:
    """Per episode: the mean dissimilarity of the pairs of items in its slate (intra-list diversity).

    Two items' similarity is the share of category levels they share from the top: the count of leading levels
    with the same value divided by the deeper of their two paths (1 for the same leaf, 0 for different top
    levels or for items without categories). Diversity is 1 minus the mean over the slate's pairs.

    Args:
        slates: Item positions, one row per episode.
        category_codes: ``(n_items, n_levels)`` value codes of the category levels, ``-1`` where a path is
            shorter (``data.facets.Facet.codes`` of each level, stacked).

    Example:
        >>> codes = np.array([[0, 0], [0, 1], [1, 2]])
        >>> intra_list_diversity(np.array([[0, 1], [0, 2], [0, 0]]), codes).tolist()
        [0.5, 1.0, 0.0]
    """
    slates = np.asarray(slates)
    if slates.shape[-1] < 2:
        return np.zeros(len(slates))
    codes = np.asarray(category_codes)[slates]  # episodes x slate x levels
    a, b = np.triu_indices(slates.shape[1], k=1)
    left, right = codes[:, a, :], codes[:, b, :]
    same = (left == right) & (left >= 0)
    shared = np.cumprod(same, axis=-1).sum(axis=-1)
    depth = np.maximum((left >= 0).sum(axis=-1), (right >= 0).sum(axis=-1))
    similarity = np.where(depth > 0, shared / np.maximum(depth, 1), 0.0)
    return 1.0 - similarity.mean(axis=-1)


def coverage(slates: np.ndarray, n_items: int) -> float:
    """The share of the catalog that appears in at least one slate.

    Example:
        >>> coverage(np.array([[0, 1], [1, 2]]), 6)
        0.5
    """
    if not slates.size:
        return 0.0
    return float(np.count_nonzero(np.bincount(slates.ravel(), minlength=n_items)) / n_items)


def _interval(statistics: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(statistics, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_mean(values: np.ndarray, samples: int, seed: int) -> Estimate:
    """The mean of per-episode values with a 95% percentile bootstrap interval over episodes.

    ``nan`` values (episodes a metric does not apply to) are left out first. With the same seed and the same
    number of values, every call resamples the same episodes, so systems are compared on paired resamples.

    Example:
        >>> estimate = bootstrap_mean(np.array([0.0, 1.0, 1.0, 0.0]), 200, seed=1)
        >>> estimate.value, estimate.n, 0.0 <= estimate.low <= 0.5 <= estimate.high <= 1.0
        (0.5, 4, True)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(values.mean())
    if samples <= 0:
        return Estimate(value, value, value, len(values))
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    # Chunks bound the memory of the index matrix on large test sets.
    step = max(1, 2_000_000 // len(values))
    for start in range(0, samples, step):
        stop = min(samples, start + step)
        means[start:stop] = values[rng.integers(0, len(values), (stop - start, len(values)))].mean(axis=1)
    return Estimate(value, *_interval(means), len(values))


def bootstrap_coverage(slates: np.ndarray, n_items: int, samples: int, seed: int) -> Estimate:
    """Catalog coverage of the slates with a 95% bootstrap interval over episodes (slate rows).

    A resample repeats some episodes and drops others, so it shows fewer distinct items than the real slates and
    a plain percentile interval would lie below the observed coverage. The interval is therefore the bootstrap
    spread (its 2.5th and 97.5th percentiles around the bootstrap mean) re-centred on the observed value,
    clipped to [0, 1]; it is conservative, since a resample holds only about 63% distinct episodes.

    Example:
        >>> bootstrap_coverage(np.array([[0, 1], [1, 2]]), 6, 0, seed=1)
        Estimate(value=0.5, low=0.5, high=0.5, n=2)
    """
    value = coverage(slates, n_items)
    if samples <= 0 or not len(slates):
        return Estimate(value, value, value, len(slates))
    rng = np.random.default_rng(seed)
    statistics = np.array(
        [coverage(slates[rng.integers(0, len(slates), len(slates))], n_items) for _ in range(samples)]
    )
    low, high = _interval(statistics)
    centre = float(statistics.mean())
    return Estimate(value, max(0.0, value - (centre - low)), min(1.0, value + (high - centre)), len(slates))
