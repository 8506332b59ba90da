"""Hybrid candidate generation: the ``k`` (100) likeliest items of the whole catalog, under hard filters.

One request (a query text, an optional context text, :class:`retrieval.filters.Filters`, ``k``) goes to each
enabled channel (:mod:`retrieval.channels`): the lexical channel (:mod:`retrieval.lexical`) and vector search
(:class:`retrieval.channels.VectorChannel`, over item text and, when enabled, generated descriptions). Each channel
returns its best items among those the filters allow; reciprocal-rank fusion (:mod:`retrieval.fusion`) merges
them. Every :class:`Candidate` keeps its per-channel rank and score, so a later layer can show why it is there.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from data.schema import Catalog
from data.settings import RetrievalSettings
from retrieval.channels import Channel, LexicalChannel, Query
from retrieval.embeddings import CachedEmbedder, TextEmbedder
from retrieval.filters import FilterIndex, Filters
from retrieval.fusion import ChannelScore, reciprocal_rank_fusion
from retrieval.lexical import LexicalIndex

MAX_QUERY_CHARS = 1_000


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
            the channels that read no words (a :class:`retrieval.channels.PriorChannel`) know more than the
            vector channels, which see only the context; ``None``: ``weights``.

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
        # Queries repeat (every turn of a conversation, the same few needs of many shoppers): their vectors are kept.
        self.embedder = None if embedder is None else CachedEmbedder(embedder)
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
