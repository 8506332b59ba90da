"""Hybrid candidate generation: the ``k`` (100) likeliest items of the whole catalog, under hard filters.

One request (a query text, an optional context text, :class:`Filters`, ``k``) goes to each enabled channel: the
lexical channel (:mod:`retrieval.lexical`) and vector search (:class:`VectorChannel`, over item text and, when
enabled, generated descriptions). Each channel returns its best items among those the filters allow;
reciprocal-rank fusion merges them:

    fused(item) = sum over channels that found it of 1 / (rrf_k + rank in that channel)

with ranks from 1 and ``rrf_k`` from :class:`data.settings.RetrievalSettings` (60, the value of Cormack et al.,
2009). RRF needs no score calibration between BM25 and cosine similarity, and an item found by two channels
outranks one found by a single channel at the same rank. Every :class:`Candidate` keeps its per-channel rank and
score, so a later layer can show why it is there. Ties in the fused score are broken by the best single-channel
rank, then by catalog position, so results are reproducible.

The context text (for a shopper's answers: the labels of the facets they chose, "Ink & Toner", "HP") reaches the
vector channels only. Those facets are hard filters already, so every allowed item carries their words and
matching them word for word only adds noise to BM25, while their meaning still steers an embedding. Measured on
the benchmark episodes (``benchmarks/bench_candidates.py``), leaving them out of the lexical query raised hybrid
recall after 1 to 3 answers to that of vector search alone, and lost nothing once a need statement was given.

Bad input:
- An empty query and context (or ones without a letter or digit: only emoji or punctuation) leave the channels
  silent; the candidates are then the items the filters allow, in catalog order (retrieval knows no
  popularity; a ranking layer that does reorders them; catalog order may itself carry a signal: the bundled
  sample's item ids follow first interactions and correlate with popularity, Spearman -0.46). The same fill
  completes any list the channels leave shorter than ``k``, so a selective filter still gives every allowed item
  when fewer than ``k`` are allowed. Filled candidates have no channel entries and a fused score of 0.
- A query longer than :data:`MAX_QUERY_CHARS` is cut there (at a space when one is near): the embedding model
  reads 128 word pieces at most (about 500 characters of English; :data:`retrieval.embeddings.MAX_TOKENS`), and
  BM25's cost grows with every distinct token.
- Any script is accepted; see :func:`retrieval.lexical.tokenize` for what the lexical channel makes of it.

Example:
    >>> from data.schema import Catalog, Item
    >>> catalog = Catalog([
    ...     Item("1", "HP 61 Black Ink", brand="HP", categories=("Ink",)),
    ...     Item("2", "Canon PG-245 Black Ink", brand="Canon", categories=("Ink",)),
    ...     Item("3", "Swingline Stapler", brand="Swingline", categories=("Desk",)),
    ... ])
    >>> generator = CandidateGenerator.lexical_only(catalog)
    >>> [c.item_id for c in generator.generate("black ink", k=2)]
    ['1', '2']
    >>> [c.item_id for c in generator.generate("black ink", Filters(exclude_brands=frozenset({"hp"})), k=5)]
    ['2', '3']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from data.facets import PATH_SEPARATOR
from data.normalize import brand_key
from data.schema import Catalog
from data.settings import RetrievalSettings
from retrieval.embeddings import TextEmbedder
from retrieval.index import Hits, where_filter
from retrieval.lexical import LexicalIndex

MAX_QUERY_CHARS = 1_000
# Over-fetching for a vector channel: fetch this many times k unfiltered, then filter.
OVERFETCH = 4
_NOTHING = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class Filters:
    """Hard filters: an item that fails one is never a candidate.

    Attributes:
        category: A category facet value key, the " > "-joined path prefix at one level
            (``"Office Products > Ink & Toner"``); only items in that subtree pass. ``None``: any category.
        brands: Brand keys (:func:`data.normalize.brand_key`; display forms are turned into keys); when not
            empty, only items of one of them pass.
        exclude_brands: Brand keys whose items never pass.
        min_price: Lowest price allowed; with either bound set, items without a price do not pass (a price
            that cannot be checked cannot be promised). Amounts are compared as they are, in the catalog's
            currency.
        max_price: Highest price allowed.
        exclude_ids: Item ids that never pass (items already shown).

    Raises:
        ValueError: ``min_price`` above ``max_price``, a negative or NaN bound, or an empty category key.

    Example:
        >>> Filters(brands=frozenset({"hp"}), max_price=30.0).is_empty, Filters().is_empty
        (False, True)
    """

    category: str | None = None
    brands: frozenset[str] = frozenset()
    exclude_brands: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    exclude_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Display forms ("HP", "Post-it") are accepted and matched by key; "" names no brand and is dropped (an
        # item without a brand fails an inclusion and passes an exclusion). Any iterable of ids is accepted.
        for name in ("brands", "exclude_brands"):
            keys = frozenset(brand_key(brand) for brand in getattr(self, name))
            object.__setattr__(self, name, keys - {""})
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        for name in ("min_price", "max_price"):
            bound = getattr(self, name)
            if bound is not None and (math.isnan(bound) or bound < 0):
                raise ValueError(f"Filters.{name} must be a non-negative number, got {bound!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(
                f"Filters.min_price ({self.min_price}) is above max_price ({self.max_price}); swap them"
            )
        if self.category is not None and not self.category.strip():
            raise ValueError("Filters.category must be a category path key or None, got an empty string")

    @property
    def is_empty(self) -> bool:
        """Whether every item passes."""
        return self == Filters()


class FilterIndex:
    """Each item's filterable values as integer codes, so that :meth:`mask` is a few array comparisons.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "x", brand="HP", categories=("Ink", "Black")), Item("b", "y")])
        >>> FilterIndex(catalog).mask(Filters(category="Ink > Black")).tolist()
        [True, False]
    """

    def __init__(self, catalog: Catalog) -> None:
        self.item_ids = [item.item_id for item in catalog]
        self._positions = dict(catalog.positions)
        depth = max((len(item.categories) for item in catalog), default=0)
        # One code array per category level: the code of the item's path prefix at that level, -1 when the
        # item's path is shorter.
        self._category_codes: list[dict[str, int]] = []
        self._category_arrays: list[np.ndarray] = []
        for level in range(1, depth + 1):
            codes: dict[str, int] = {}
            array = np.full(len(catalog), -1, dtype=np.int32)
            for position, item in enumerate(catalog):
                if len(item.categories) >= level:
                    array[position] = codes.setdefault(
                        PATH_SEPARATOR.join(item.categories[:level]), len(codes)
                    )
            self._category_codes.append(codes)
            self._category_arrays.append(array)
        self._brand_codes: dict[str, int] = {}
        self._brands = np.array(
            [self._brand_codes.setdefault(item.brand_key, len(self._brand_codes)) for item in catalog],
            dtype=np.int32,
        )
        self._prices = np.array(
            [item.price.amount if item.price is not None else np.nan for item in catalog], dtype=np.float64
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def mask(self, filters: Filters) -> np.ndarray:
        """Which items pass every filter, in catalog order."""
        passing = np.ones(len(self.item_ids), dtype=bool)
        if filters.category is not None:
            level = filters.category.count(PATH_SEPARATOR) + 1
            codes = self._category_codes[level - 1] if level <= len(self._category_codes) else {}
            if filters.category in codes:
                passing &= self._category_arrays[level - 1] == codes[filters.category]
            else:
                passing[:] = False
        if filters.brands:
            codes = [self._brand_codes[key] for key in filters.brands if key in self._brand_codes]
            passing &= np.isin(self._brands, codes)
        if filters.exclude_brands:
            codes = [self._brand_codes[key] for key in filters.exclude_brands if key in self._brand_codes]
            passing &= ~np.isin(self._brands, codes)
        if filters.min_price is not None or filters.max_price is not None:
            low = -np.inf if filters.min_price is None else filters.min_price
            high = np.inf if filters.max_price is None else filters.max_price
            # NaN (no price) compares false both ways, so unpriced items fail.
            passing &= (self._prices >= low) & (self._prices <= high)
        if filters.exclude_ids:
            passing[[self._positions[i] for i in filters.exclude_ids if i in self._positions]] = False
        return passing


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
        text: The query text, already cut to :data:`MAX_QUERY_CHARS`; ``""`` when there is none.
        vector: The embedding (L2-normalised) of the text and its context, or ``None`` when no channel needs one
            or both are empty.
    """

    text: str
    vector: np.ndarray | None = None


class Channel(Protocol):
    """A retrieval channel: the best items for a query among those the filters allow.

    ``allowed`` is the boolean mask of :meth:`FilterIndex.mask` (``None``: every item); a channel may also
    use ``filters`` itself (a vector store's own metadata filter), but every position it returns must be
    allowed by the mask. A channel that ``needs_vector`` is asked only when the query has a vector, one that
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
        return self._query(collection, vector, k, filters)

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


@dataclass(frozen=True)
class ChannelScore:
    """Where one channel put a candidate: rank from 1, and the channel's own score."""

    rank: int
    score: float


@dataclass(frozen=True)
class Candidate:
    """An item worth ranking, with how each channel found it.

    Attributes:
        item_id: The item.
        position: Its catalog position.
        score: The fused RRF score (0 for an item only filled in, see the module docstring).
        channels: Channel name -> its rank and score, for the channels that found the item.

    Example:
        >>> candidate = Candidate("7", 6, 1 / 61 + 1 / 63, {"lexical": ChannelScore(1, 8.2)})
        >>> candidate.channels["lexical"].rank
        1
    """

    item_id: str
    position: int
    score: float
    channels: Mapping[str, ChannelScore] = field(default_factory=dict)


def reciprocal_rank_fusion(
    rankings: Mapping[str, ChannelHits], rrf_k: int, weights: Mapping[str, float] | None = None
) -> list[tuple[int, float, dict[str, ChannelScore]]]:
    """Fuse per-channel rankings: ``(position, fused score, per-channel scores)``, best first.

    A channel's term is multiplied by its weight (1 for a channel ``weights`` does not name). Ties are broken by
    the best single-channel rank, then by catalog position.

    Example:
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


def truncate_query(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """``text`` stripped and cut to ``limit`` characters, at the last space when one is in the last tenth.

    Example:
        >>> truncate_query("ink cartridge " * 100, limit=30)
        'ink cartridge ink cartridge'
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit * 0.9 else cut).rstrip()


def _usable(text: str) -> str:
    """``text``, or ``""`` when it has no letter or digit at all: the embedding model turns emoji and
    punctuation into unknown-word tokens, whose nearest items are arbitrary."""
    return text if any(ch.isalnum() for ch in text) else ""


class CandidateGenerator:
    """Queries the channels, applies the hard filters and fuses the rankings (see the module docstring).

    Args:
        catalog: The catalog every channel indexes, in the same order.
        channels: The enabled channels; their names must differ.
        embedder: Embeds query texts for channels that need a vector; required when one does.
        settings: ``candidates`` (default ``k``) and ``rrf_k``.
        depth: How many items each channel contributes before fusion; ``None``: the ``k`` of the request.
        weights: Channel name -> its weight in the fusion (1 for a channel not named).
        weights_without_text: The weights for a request with no query text (only context, or nothing): then
            the channels that read no words (a :class:`PriorChannel`) know more than the vector channels,
            which see only the context; ``None``: ``weights``.

    Raises:
        ValueError: Two channels with one name, a vector channel without an embedder, or a negative weight.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "Blue Pen", brand="BIC"), Item("b", "Blue Pencil", brand="Dixon")])
        >>> generator = CandidateGenerator.lexical_only(catalog)
        >>> best = generator.generate("blue pen")[0]
        >>> best.item_id, best.channels["lexical"].rank
        ('a', 1)
    """

    def __init__(
        self,
        catalog: Catalog,
        channels: Sequence[Channel],
        embedder: TextEmbedder | None = None,
        settings: RetrievalSettings | None = None,
        depth: int | None = None,
        weights: Mapping[str, float] | None = None,
        weights_without_text: Mapping[str, float] | None = None,
    ) -> None:
        names = [channel.name for channel in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must differ, got {names}")
        for given in (weights, weights_without_text):
            if given is not None and any(not weight >= 0 for weight in given.values()):
                raise ValueError(f"channel weights must be non-negative numbers, got {dict(given)}")
        if embedder is None and any(channel.needs_vector for channel in channels):
            raise ValueError("a vector channel needs an embedder for the query text; pass embedder=")
        self.catalog = catalog
        self.channels = tuple(channels)
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()
        self.depth = depth
        self.weights = dict(weights or {})
        self.weights_without_text = (
            self.weights if weights_without_text is None else dict(weights_without_text)
        )
        self.filter_index = FilterIndex(catalog)

    @classmethod
    def lexical_only(cls, catalog: Catalog, settings: RetrievalSettings | None = None) -> CandidateGenerator:
        """A generator with the lexical channel alone (no model needed)."""
        return cls(catalog, [LexicalChannel(LexicalIndex.build(catalog))], settings=settings)

    def generate(
        self, query: str, filters: Filters | None = None, k: int | None = None, context: str = ""
    ) -> list[Candidate]:
        """The best ``k`` (default ``settings.candidates``) candidates for one query under ``filters``.

        Args:
            query: What the shopper wants, in words; every channel reads it.
            filters: Hard filters; none when ``None``.
            k: How many candidates.
            context: Words that only the vector channels read (see the module docstring).
        """
        return self.generate_batch([query], [filters or Filters()], k, [context])[0]

    def generate_batch(
        self,
        queries: Sequence[str],
        filters: Sequence[Filters],
        k: int | None = None,
        contexts: Sequence[str] | None = None,
    ) -> list[list[Candidate]]:
        """:meth:`generate` for many requests; texts for the vector channels are embedded in one batch.

        Raises:
            ValueError: ``queries``, ``filters`` and ``contexts`` differ in length, or ``k`` is negative.
        """
        contexts = [""] * len(queries) if contexts is None else contexts
        if not len(queries) == len(filters) == len(contexts):
            raise ValueError(
                f"got {len(queries)} queries, {len(filters)} filters and {len(contexts)} contexts; "
                "pass one of each per request"
            )
        k = self.settings.candidates if k is None else k
        if k < 0:
            raise ValueError(f"k must be at least 0, got {k}")
        texts = [_usable(truncate_query(query)) for query in queries]
        semantic = [
            _usable(truncate_query(f"{query} {context}"))
            for query, context in zip(queries, contexts, strict=True)
        ]
        vectors: list[np.ndarray | None] = [None] * len(texts)
        if self.embedder is not None and any(channel.needs_vector for channel in self.channels):
            to_embed = [i for i, text in enumerate(semantic) if text]
            if to_embed:
                embedded = self.embedder.embed([semantic[i] for i in to_embed])
                for row, i in enumerate(to_embed):
                    vectors[i] = embedded[row]
        return [
            self._generate(Query(text, vector), request_filters, k)
            for text, vector, request_filters in zip(texts, vectors, filters, strict=True)
        ]

    def _generate(self, query: Query, filters: Filters, k: int) -> list[Candidate]:
        allowed = None if filters.is_empty else self.filter_index.mask(filters)
        depth = max(k, self.depth or 0)
        rankings = {}
        for channel in self.channels if k else ():
            if channel.needs_vector:
                searchable = query.vector is not None
            else:
                searchable = bool(query.text) or not channel.needs_text
            if searchable:
                rankings[channel.name] = channel.search(query, depth, filters, allowed)
        weights = self.weights if query.text else self.weights_without_text
        fused = reciprocal_rank_fusion(rankings, self.settings.rrf_k, weights)[:k]
        item_ids = self.filter_index.item_ids
        candidates = [Candidate(item_ids[p], p, score, parts) for p, score, parts in fused]
        if len(candidates) < k:
            taken = np.zeros(len(item_ids), dtype=bool)
            taken[[candidate.position for candidate in candidates]] = True
            rest = ~taken if allowed is None else allowed & ~taken
            for position in np.flatnonzero(rest)[: k - len(candidates)].tolist():
                candidates.append(Candidate(item_ids[position], position, 0.0))
        return candidates
