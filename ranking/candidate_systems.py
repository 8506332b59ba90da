"""The candidate generators as ranking systems of the cold-start benchmark: lexical, vector, vector with
generated descriptions, and hybrid.

Each system turns a :class:`ranking.system.Request` into a query, a context and hard filters
(:func:`request_query`), asks :class:`retrieval.candidates.CandidateGenerator` for ``retrieval.candidates`` (100)
candidates with its channels, and scores the whole catalog in three tiers:

1. candidates a channel found: above everything else, by fused RRF score;
2. the rest, by how many answered facets they match (items passing every filter first, like
   ``faceted_popularity`` but without popularity);
3. ties within a tier are left to the benchmark's seeded tie-break. Candidates that only filled a short list
   (no channel found them) are in tier 2: their catalog order says nothing about the shopper.

Fitting builds, or reuses, what the channels need for ``data.catalog``: the lexical index and the Chroma index
(item text and generated-description embeddings) live in ``<artifacts>/candidates/<catalog key>/``, a folder
keyed by the catalog's item ids, so that the four systems of one run, and later runs, share one build, and the
application's own index (``<artifacts>/chroma``) is never touched by an evaluation. The first fit embeds the
catalog (the bundled sample's 2,417 item texts take about 45 s on 2 quiet cores, see ``benchmarks/bench_index``);
a later fit only checks that nothing changed, and one made by an older version of the index is rebuilt.

What each system searches (:attr:`CandidateSystem.searches`): ``lexical`` the lexical channel; ``vector`` the
vector channel over item text; ``vector_descriptions`` the vector channel over item text and generated
descriptions (an item's similarity is the better of the two, see :class:`retrieval.candidates.VectorChannel`);
``hybrid`` both channels, the vector one with descriptions, and a popularity channel
(:class:`retrieval.candidates.PriorChannel` over the training interactions), fused by weighted RRF (see
:class:`HybridSystem`). The lexical index appends generated descriptions to the item text (see
:mod:`retrieval.lexical`), for ``lexical`` and ``hybrid`` alike.

Generated descriptions are read from ``paths.descriptions`` (see :mod:`data.descriptions`); when there are none,
``vector_descriptions`` ranks exactly as ``vector``; its description in the report says so, and a warning is
logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from data.descriptions import descriptions_for_retrieval, load_descriptions
from data.facets import FacetKind, Facets
from data.schema import Catalog
from data.settings import RetrievalSettings, Settings, load_settings
from ranking.system import RankingSystem, Request, TrainingData, register
from retrieval.candidates import (
    CandidateGenerator,
    Channel,
    Filters,
    LexicalChannel,
    PriorChannel,
    VectorChannel,
)
from retrieval.embeddings import TextEmbedder, get_embedder
from retrieval.index import DESCRIPTIONS as DESCRIBED
from retrieval.index import ITEMS, VectorIndex, build_index
from retrieval.lexical import LexicalIndex

logger = logging.getLogger(__name__)

LEXICAL = "lexical"
VECTOR = "vector"
DESCRIPTIONS = "descriptions"
POPULARITY = "popularity"


@dataclass(frozen=True)
class RequestQuery:
    """What a request asks the candidate generator.

    Attributes:
        text: The need statement: every channel reads it.
        context: The labels of the answered facets: the vector channels read them after the text (see
            :mod:`retrieval.candidates` for why the lexical channel does not).
        filters: The answered facets as hard filters, and the items already shown.
    """

    text: str
    context: str
    filters: Filters


def request_query(request: Request, facets: Facets) -> RequestQuery:
    """The query text, context and hard filters of a request.

    Context: the label of every answered facet ("Ink & Toner", "HP"). Filters: the deepest answered category
    level (a path prefix implies the levels above it), the answered brand, a price band's bounds (inclusive),
    and the items already shown. Answered attribute facets only add their label to the context. Facet names or
    values the catalog does not have add nothing.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("1", "HP 61 Ink", brand="HP", categories=("Ink & Toner", "Ink"))])
        >>> answers = {"category_1": "Ink & Toner", "category_2": "Ink & Toner > Ink", "brand": "hp"}
        >>> query = request_query(Request(facets=answers, need="black ink"), discover_facets(catalog))
        >>> query.text, query.context, query.filters.category, sorted(query.filters.brands)
        ('black ink', 'Ink & Toner Ink HP', 'Ink & Toner > Ink', ['hp'])
    """
    labels = []
    category: tuple[int, str] | None = None
    brands: frozenset[str] = frozenset()
    low = high = None
    for name, key in request.facets.items():
        if name not in facets or facets[name].code(key) < 0:
            continue
        facet = facets[name]
        labels.append(facet.values[facet.code(key)].label)
        if facet.kind is FacetKind.CATEGORY and (category is None or (facet.level or 0) > category[0]):
            category = (facet.level or 0, key)
        elif facet.kind is FacetKind.BRAND:
            brands = frozenset({key})
        elif facet.kind is FacetKind.PRICE_BAND:
            low, high = _band_bounds(key)
    filters = Filters(
        category=category[1] if category else None,
        brands=brands,
        min_price=low,
        max_price=high,
        exclude_ids=request.exclude,
    )
    return RequestQuery(request.need.strip(), " ".join(labels), filters)


def _band_bounds(key: str) -> tuple[float | None, float | None]:
    """``"10-25"`` -> (10, 25), ``"0-10"`` -> (None, 10), ``"100+"`` -> (100, None) (keys of data.facets)."""
    if key.endswith("+"):
        return float(key[:-1]), None
    low, high = (float(part) for part in key.split("-", 1))
    return (low or None), high


def fusion_weights(retrieval: RetrievalSettings) -> tuple[dict[str, float], dict[str, float]]:
    """The fusion weights of a generator's channels for requests with words, and without (see
    :class:`HybridSystem`); channels not named weigh 1.

    Example:
        >>> fusion_weights(RetrievalSettings(popularity_weight=0.1, popularity_weight_without_text=2.0))
        ({'popularity': 0.1}, {'popularity': 2.0})
    """
    return {POPULARITY: retrieval.popularity_weight}, {POPULARITY: retrieval.popularity_weight_without_text}


def catalog_key(catalog: Catalog) -> str:
    """A short digest of the catalog's item ids: the folder its candidate indexes live in.

    Item text changes need no new folder: both indexes bring themselves up to date.

    Example:
        >>> from data.schema import Item
        >>> len(catalog_key(Catalog([Item("1", "Pen")])))
        16
    """
    digest = hashlib.sha256()
    for item in catalog:
        digest.update(item.item_id.encode() + b"\0")
    return digest.hexdigest()[:16]


class CandidateSystem(RankingSystem):
    """A candidate generator with some channels, scored as in the module docstring.

    Args:
        settings: Where artifacts and descriptions are, ``retrieval.candidates`` and ``retrieval.rrf_k``; the
            project settings (:func:`data.settings.load_settings`) when ``None``.
        depth: How many items each channel contributes before fusion; ``None``: ``retrieval.candidates``.
        embedder: The bi-encoder (any :class:`retrieval.embeddings.TextEmbedder`); the project's when ``None``.

    Attributes:
        searches: What the system searches: ``"lexical"``, ``"vector"`` (item text), ``"descriptions"``
            (generated descriptions, in the vector channel).
        generator: The fitted :class:`retrieval.candidates.CandidateGenerator` (after :meth:`fit`).
    """

    searches: ClassVar[tuple[str, ...]]

    def __init__(
        self, settings: Settings | None = None, depth: int | None = None, embedder: TextEmbedder | None = None
    ) -> None:
        self._settings = settings
        self._depth = depth
        self._embedder = embedder

    def fit(self, data: TrainingData) -> None:
        settings = self._settings or load_settings()
        catalog = data.catalog
        self.description = type(self).description
        descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
        if DESCRIPTIONS in self.searches and not descriptions:
            logger.warning(
                "no generated descriptions in %s: %s searches item text only",
                settings.paths.descriptions,
                self.name,
            )
            self.description = f"{type(self).description} No generated descriptions found: item text only."
        folder = Path(settings.paths.artifacts).resolve() / "candidates" / catalog_key(catalog)
        built: list[Channel] = []
        if LEXICAL in self.searches:
            built.append(
                LexicalChannel(LexicalIndex.load_or_build(folder / "lexical", catalog, descriptions))
            )
        embedder = None
        if VECTOR in self.searches:
            embedder = self._embedder or get_embedder(settings.retrieval.embedding_batch_size)
            built.append(self._vector_channel(settings, folder, catalog, descriptions, embedder))
        if POPULARITY in self.searches:
            built.append(PriorChannel(POPULARITY, data.item_counts()))
        self.generator = CandidateGenerator(
            catalog, built, embedder, settings.retrieval, self._depth, *fusion_weights(settings.retrieval)
        )
        self._facets = data.facets

    def _vector_channel(
        self,
        settings: Settings,
        folder: Path,
        catalog: Catalog,
        descriptions: dict[str, str],
        embedder: TextEmbedder,
    ) -> VectorChannel:
        # An embedded store of its own under the keyed folder, even when the application uses a Chroma server:
        # an evaluation must not rewrite the collections the application serves.
        store = replace(
            settings,
            paths=replace(settings.paths, artifacts=folder),
            retrieval=replace(settings.retrieval, chroma_host=""),
        )
        # The evaluation's own cache: one made by an older version is rebuilt, not refused.
        report = build_index(
            store, catalog, descriptions, progress=False, embedder=embedder, replace_outdated=True
        )
        if report.replaced_outdated:
            logger.warning("rebuilt the candidate index in %s (made by another version)", folder)
        index = VectorIndex.open(store, embedder=embedder)
        collections: dict[str, np.ndarray | None] = {ITEMS: None}
        if DESCRIPTIONS in self.searches and descriptions:
            collections[DESCRIBED] = np.array([item.item_id in descriptions for item in catalog])
        return VectorChannel(VECTOR, index, catalog, collections)

    def score(self, request: Request) -> np.ndarray:
        return self.score_batch([request])[0]

    def score_batch(self, requests: Sequence[Request]) -> np.ndarray:
        queries = [request_query(request, self._facets) for request in requests]
        found = self.generator.generate_batch(
            [q.text for q in queries], [q.filters for q in queries], contexts=[q.context for q in queries]
        )
        scores = np.zeros((len(requests), self._facets.n_items))
        for row, (request, candidates) in enumerate(zip(requests, found, strict=True)):
            answered = [(name, key) for name, key in request.facets.items() if name in self._facets]
            for name, key in answered:
                scores[row] += self._facets[name].mask(key)
            for candidate in candidates:
                if candidate.channels:
                    # Above any count of matched facets: the fused score of two channels is below 2 / rrf_k.
                    scores[row, candidate.position] = len(answered) + 1 + candidate.score
        return scores


@register
class LexicalSystem(CandidateSystem):
    """BM25 over title, brand, categories and descriptions (see :mod:`retrieval.lexical`).

    Example:
        >>> LexicalSystem.searches
        ('lexical',)
    """

    name = "lexical"
    description = "BM25 candidates (model codes kept whole and split) under the answered facets as filters."
    searches = (LEXICAL,)


@register
class VectorSystem(CandidateSystem):
    """all-MiniLM-L6-v2 nearest neighbours over each item's own text."""

    name = "vector"
    description = "Bi-encoder candidates over item text under the answered facets as filters."
    searches = (VECTOR,)


@register
class VectorDescriptionsSystem(CandidateSystem):
    """Vector search over item text and generated descriptions of thin items (the better similarity counts)."""

    name = "vector_descriptions"
    description = (
        "Bi-encoder candidates over item text and generated descriptions under the facets as filters."
    )
    searches = (VECTOR, DESCRIPTIONS)


@register
class HybridSystem(CandidateSystem):
    """Lexical, vector (item text and generated descriptions) and popularity channels, fused by weighted RRF.

    Popularity is counted on the training interactions. Its weight is ``retrieval.popularity_weight`` (0.1)
    when the shopper said something, so the words decide what is found and popularity orders near-equals; and
    ``retrieval.popularity_weight_without_text`` (2) when they have only picked facets, so the candidates are
    then mostly the best sellers under the filters (the vector channel, which sees only the facet labels, adds
    the rest).
    """

    name = "hybrid"
    description = (
        "Lexical + bi-encoder (item text, generated descriptions) + popularity candidates, weighted RRF, "
        "facets as filters."
    )
    searches = (LEXICAL, VECTOR, DESCRIPTIONS, POPULARITY)
