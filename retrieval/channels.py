"""Retrieval channels: each finds its best items for a query among those the hard filters allow.

A :class:`Channel` answers a :class:`Query` with :class:`ChannelHits` (catalog positions, best first, and its own
scores): :class:`LexicalChannel` (BM25, :mod:`retrieval.lexical`), :class:`VectorChannel` (nearest neighbours in
the vector index, :mod:`retrieval.index`) and :class:`PriorChannel` (a score that does not read the query, such as
popularity). :class:`retrieval.candidates.CandidateGenerator` asks them and fuses their answers
(:mod:`retrieval.fusion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from data.schema import Catalog
from retrieval.filters import Filters
from retrieval.index import Hits, where_filter
from retrieval.lexical import LexicalIndex

# Over-fetching for a vector channel: fetch this many times k unfiltered, then filter.
OVERFETCH = 4
_NOTHING = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class ChannelHits:
    """One channel's answer to one query, best first.

    Attributes:
        positions: Catalog positions of the items found.
        scores: The channel's own scores (BM25, cosine similarity), same order.
    """

    positions: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Query:
    """What a channel searches with.

    Attributes:
        text: The query text, already cut to :data:`retrieval.candidates.MAX_QUERY_CHARS`; ``""`` when there is none.
        vector: The embedding (L2-normalised) of the text and its context, or ``None`` when no channel needs one
            or both are empty.
    """

    text: str
    vector: np.ndarray | None = None


class Channel(Protocol):
    """A retrieval channel: the best items for a query among those the filters allow.

    ``allowed`` is the boolean mask of :meth:`retrieval.filters.FilterIndex.mask` (``None``: every item); a
    channel may also use ``filters`` itself (a vector store's own metadata filter), but every position it returns
    must be allowed by the mask. A channel that ``needs_vector`` is asked only when the query has a vector, one that
    ``needs_text`` only when it has text; one that needs neither (:class:`PriorChannel`) is always asked.
    """

    name: str
    needs_vector: bool
    needs_text: bool

    def search(self, query: Query, k: int, filters: Filters, allowed: np.ndarray | None) -> ChannelHits: ...


class VectorStore(Protocol):
    """What a vector channel needs from an index: :meth:`retrieval.index.VectorIndex.query`."""

    def query(
        self, vectors: np.ndarray, k: int, *, collection: str = ..., where: Mapping[str, Any] | None = None
    ) -> list[Hits]: ...


class LexicalChannel:
    """The BM25 channel (:mod:`retrieval.lexical`) as a :class:`Channel`.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "HP 61 Ink"), Item("b", "Stapler")])
        >>> LexicalChannel(LexicalIndex.build(catalog)).search(Query("hp61"), 5, Filters(), None).positions
        array([0])
    """

    name = "lexical"
    needs_vector = False
    needs_text = True

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    def search(self, query: Query, k: int, filters: Filters, allowed: np.ndarray | None) -> ChannelHits:
        hits = self.index.hits(query.text, k, allowed)
        return ChannelHits(hits.positions, hits.scores)


class FilterMode(StrEnum):
    """How a vector channel applies hard filters.

    - ``overfetch`` (the default): an unfiltered search for :data:`OVERFETCH` times as many items, then the
      mask; when that leaves fewer than asked for (and more are allowed), a ``where`` search after all.
    - ``where``: Chroma's metadata filter inside the search.

    Measured end to end (``benchmarks/bench_candidates.py``, hybrid, k = 100, 200 need statements with the
    benchmark's filters, 2 shared cores): Chroma's ``where`` costs a scan of the matching metadata, growing with
    the catalog and with how much the filter lets through: p50 37 ms (10,000 items) and 378 ms (100,000) with
    the first category level (69% of the items allowed), 122 ms at 100,000 with category and brand (1.7%
    allowed). Over-fetching: 7 and 12 ms, and 11 ms. Even selective filters rarely need the fallback, because
    the allowed items are the ones near the query (the shopper's words and the category they chose agree); when
    they do (p95 245 ms at 100,000), the cost is that of ``where``. A rule that chose ``where`` whenever the
    allowed share was too small to expect ``k`` hits in the over-fetched list was slower (p50 141 ms), since
    that expectation assumes the filter is independent of the query.
    """

    OVERFETCH = "overfetch"
    WHERE = "where"


class VectorChannel:
    """Nearest neighbours of the query vector in the vector index, under the hard filters.

    With several collections (item text and generated descriptions), an item's similarity is the best of its
    vectors: a generated description is another view of the same item, and both are cosine similarities of one
    model, so they compare directly. Measured on the benchmark episodes, this keeps what item text finds while
    fusing the descriptions collection as a channel of its own by RRF lost targets: every item of a small
    collection gets a rank there, however far it is from the query.

    Args:
        name: The channel's name in candidates' score breakdowns.
        store: The vector index (:class:`retrieval.index.VectorIndex`).
        catalog: The catalog the index holds, for item positions.
        collections: Collection name -> which catalog items it holds (a boolean mask; ``None``: all of them).
        filtering: How hard filters are applied, see :class:`FilterMode`.
    """

    needs_vector = True
    needs_text = False

    def __init__(
        self,
        name: str,
        store: VectorStore,
        catalog: Catalog,
        collections: Mapping[str, np.ndarray | None],
        filtering: FilterMode = FilterMode.OVERFETCH,
    ) -> None:
        self.name = name
        self.store = store
        self.filtering = FilterMode(filtering)
        self._positions = catalog.positions
        everything = np.ones(len(catalog), dtype=bool)
        self.collections = {
            collection: everything if members is None else np.asarray(members, dtype=bool)
            for collection, members in collections.items()
        }

    def _query(
        self, collection: str, vector: np.ndarray, k: int, filters: Filters | None
    ) -> tuple[np.ndarray, np.ndarray]:
        where = where_filter(filters) if filters is not None else None
        hits = self.store.query(vector, k, collection=collection, where=where)[0]
        positions = np.fromiter((self._positions[i] for i in hits.ids), dtype=np.int64, count=len(hits.ids))
        return positions, np.asarray(hits.scores, dtype=np.float32)

    def _search_collection(
        self,
        collection: str,
        members: np.ndarray,
        vector: np.ndarray,
        k: int,
        filters: Filters,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        size = int(np.count_nonzero(members))
        if allowed is None:
            return self._query(collection, vector, min(k, size), None) if size else _NOTHING
        available = int(np.count_nonzero(allowed & members))
        if not available:
            return _NOTHING
        if self.filtering is FilterMode.OVERFETCH:
            positions, scores = self._query(collection, vector, min(size, k * OVERFETCH), None)
            keep = allowed[positions]
            if np.count_nonzero(keep) >= min(k, available):
                return positions[keep][:k], scores[keep][:k]
        # A ``where`` may allow more than the mask (it leaves some exclusions to it; see where_filter): mask it
        # too, and ask for more while the mask leaves fewer than it allows.
        wanted, fetch = min(k, available), k
        while True:
            positions, scores = self._query(collection, vector, fetch, filters)
            keep = allowed[positions]
            if np.count_nonzero(keep) >= wanted or len(positions) < fetch or fetch >= size:
                return positions[keep][:k], scores[keep][:k]
            fetch = min(size, fetch * OVERFETCH)

    def search(self, query: Query, k: int, filters: Filters, allowed: np.ndarray | None) -> ChannelHits:
        if query.vector is None or k <= 0:
            return ChannelHits(*_NOTHING)
        found = [
            self._search_collection(collection, members, query.vector, k, filters, allowed)
            for collection, members in self.collections.items()
        ]
        positions = np.concatenate([p for p, _ in found])
        scores = np.concatenate([s for _, s in found])
        # Best score first, so the first occurrence of each item is its best; then keep the k best items.
        order = np.lexsort((positions, -scores))
        positions, scores = positions[order], scores[order]
        _, first = np.unique(positions, return_index=True)
        best = np.sort(first)[:k]
        return ChannelHits(positions[best], scores[best])


class PriorChannel:
    """Items by a prior score that does not read the query (popularity: how many shoppers bought each item),
    best first among those the filters allow; items with a score of 0 are never returned.

    It answers every request, so a shopper who has only picked a category gets that category's best sellers as
    candidates rather than the items nearest the category's name, and fused with the text channels it lifts,
    among items that match the words, the ones most shoppers want. Its ranking is sorted once; a request costs
    one pass over the allowed mask.

    Args:
        name: The channel's name in candidates' score breakdowns.
        scores: One score per catalog item, in catalog order (non-negative; ties keep catalog order).

    Raises:
        ValueError: A negative or NaN score.

    Example:
        >>> channel = PriorChannel("popularity", np.array([3.0, 0.0, 5.0, 1.0]))
        >>> channel.search(Query(""), 10, Filters(), None).positions.tolist()
        [2, 0, 3]
        >>> channel.search(Query(""), 10, Filters(), np.array([True, True, False, True])).positions.tolist()
        [0, 3]
    """

    needs_vector = False
    needs_text = False

    def __init__(self, name: str, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1 or np.isnan(scores).any() or (scores < 0).any():
            raise ValueError("PriorChannel scores must be one non-negative number per catalog item")
        self.name = name
        self.scores = scores
        order = np.lexsort((np.arange(len(scores)), -scores))
        self._order = order[scores[order] > 0]

    def search(self, query: Query, k: int, filters: Filters, allowed: np.ndarray | None) -> ChannelHits:
        order = self._order if allowed is None else self._order[allowed[self._order]]
        top = order[:k]
        return ChannelHits(top.astype(np.int64), self.scores[top].astype(np.float32))
