"""The candidate generators as ranking systems of the cold-start benchmark: lexical, vector, vector with
generated descriptions, and hybrid.

Each system turns a :class:`retrieval.profile.Profile` into a query, a context and hard filters
(:func:`retrieval.profile.profile_query`), asks :class:`retrieval.candidates.CandidateGenerator` for
``retrieval.candidates`` (100) candidates with its channels, and scores the whole catalog in three tiers:

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
descriptions (an item's similarity is the better of the two, see :class:`retrieval.channels.VectorChannel`);
``hybrid`` both channels, the vector one with descriptions, and a popularity channel
(:class:`retrieval.channels.PriorChannel` over the training interactions), fused by weighted RRF (see
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
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from data.descriptions import descriptions_for_retrieval, load_descriptions
from data.schema import Catalog
from data.settings import RetrievalSettings, Settings
from ranking.system import RankingSystem, TrainingData, register
from retrieval.candidates import Candidate, CandidateGenerator
from retrieval.channels import Channel, LexicalChannel, PriorChannel, VectorChannel
from retrieval.embeddings import TextEmbedder, get_embedder
from retrieval.index import DESCRIPTIONS as DESCRIBED
from retrieval.index import ITEMS, VectorIndex, build_index
from retrieval.lexical import LexicalIndex
from retrieval.profile import Profile, profile_query

logger = logging.getLogger(__name__)

LEXICAL = "lexical"
VECTOR = "vector"
DESCRIPTIONS = "descriptions"
POPULARITY = "popularity"
# How long an evaluation waits for another one building the same candidate index (a build of the sample takes
# about a minute on 2 cores).
CACHE_LOCK_WAIT_SECONDS = 600.0


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
        settings: Where artifacts and descriptions are, ``retrieval.candidates`` and ``retrieval.rrf_k``.
        depth: How many items each channel contributes before fusion; ``None``: ``retrieval.candidates``.
        embedder: The bi-encoder (any :class:`retrieval.embeddings.TextEmbedder`); the project's when ``None``.
        application_index: Search the application's own indexes, the ones ``concierge build`` writes (the
            vector index under ``paths.artifacts`` or on the Chroma server of ``retrieval.chroma_host``, the
            lexical one under ``paths.artifacts``): what a serving process does, so that several processes share
            one Chroma server and none embeds the catalog at start. ``False`` (evaluations): indexes of the
            system's own under ``paths.artifacts/candidates/<catalog key>``, built when missing, which never
            touch what the application serves.

    Attributes:
        searches: What the system searches: ``"lexical"``, ``"vector"`` (item text), ``"descriptions"``
            (generated descriptions, in the vector channel), ``"popularity"``.
        generator: The fitted :class:`retrieval.candidates.CandidateGenerator` (after :meth:`fit`).
        descriptions: Item id -> generated description, for the thin items that have one (after :meth:`fit`).
    """

    searches: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        settings: Settings,
        depth: int | None = None,
        embedder: TextEmbedder | None = None,
        *,
        application_index: bool = False,
    ) -> None:
        super().__init__(settings)
        self._depth = depth
        self._embedder = embedder
        self._application_index = application_index

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        settings = self.settings
        catalog = data.catalog
        self.description = type(self).description
        descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
        self.descriptions = descriptions
        if DESCRIPTIONS in self.searches and not descriptions:
            logger.warning(
                "no generated descriptions in %s: %s searches item text only",
                settings.paths.descriptions,
                self.name,
            )
            self.description = f"{type(self).description} No generated descriptions found: item text only."
        folder = Path(settings.paths.artifacts).resolve() / "candidates" / catalog_key(catalog)
        lexical = (
            Path(settings.paths.artifacts) / "lexical" if self._application_index else folder / "lexical"
        )
        built: list[Channel] = []
        if LEXICAL in self.searches:
            built.append(LexicalChannel(LexicalIndex.load_or_build(lexical, catalog, descriptions)))
        embedder = None
        self._index: VectorIndex | None = None
        if VECTOR in self.searches:
            embedder = self._embedder or get_embedder(settings.retrieval.embedding_batch_size)
            built.append(self._vector_channel(settings, folder, catalog, descriptions, embedder))
        if POPULARITY in self.searches:
            built.append(PriorChannel(POPULARITY, data.item_counts()))
        self.generator = CandidateGenerator(
            catalog, built, embedder, settings.retrieval, self._depth, *fusion_weights(settings.retrieval)
        )

    def _vector_channel(
        self,
        settings: Settings,
        folder: Path,
        catalog: Catalog,
        descriptions: dict[str, str],
        embedder: TextEmbedder,
    ) -> VectorChannel:
        collections: dict[str, np.ndarray | None] = {ITEMS: None}
        if DESCRIPTIONS in self.searches and descriptions:
            collections[DESCRIBED] = np.array([item.item_id in descriptions for item in catalog])
        if self._application_index:
            # Opened, never written: `concierge build` keeps it current; a missing one is a RetrievalError that
            # says to build it.
            index = VectorIndex.open(settings, embedder=embedder)
            if index.count(ITEMS) < len(catalog):
                logger.warning(
                    "the vector index holds %d items, the catalog %d: run concierge build to bring it up to date",
                    index.count(ITEMS),
                    len(catalog),
                )
            self._index = index
            return VectorChannel(VECTOR, index, catalog, collections)
        # An embedded store of its own under the keyed folder, even when the application uses a Chroma server:
        # an evaluation must not rewrite the collections the application serves.
        store = replace(
            settings,
            paths=replace(settings.paths, artifacts=folder),
            retrieval=replace(settings.retrieval, chroma_host=""),
        )
        # The evaluation's own cache: one made by an older version is rebuilt, not refused.
        # Two evaluations of one catalog share this cache: the second waits while the first writes it.
        report = build_index(
            store,
            catalog,
            descriptions,
            progress=False,
            embedder=embedder,
            replace_outdated=True,
            wait_for_lock=CACHE_LOCK_WAIT_SECONDS,
        )
        if report.replaced_outdated:
            logger.warning("rebuilt the candidate index in %s (made by another version)", folder)
        index = VectorIndex.open(store, embedder=embedder)
        self._index = index
        return VectorChannel(VECTOR, index, catalog, collections)

    def item_vectors(self) -> np.ndarray:
        """Every catalog item's stored item-text vector, in catalog order (``(n_items, dimension)``).

        Raises:
            ValueError: The system searches no vectors, or the index lacks an item.
        """
        if self._index is None:
            raise ValueError(f"{self.name} has no vector index: it does not search vectors")
        ids, vectors = self._index.vectors(ITEMS)
        order = {item_id: row for row, item_id in enumerate(ids)}
        missing = [item_id for item_id in self.item_ids if item_id not in order]
        if missing:
            raise ValueError(f"the vector index lacks {len(missing)} catalog items, e.g. {missing[:3]}")
        return vectors[[order[item_id] for item_id in self.item_ids]]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """The bi-encoder's vectors of some texts (L2-normalised)."""
        return self.generator.embedder.embed(list(texts))

    def candidates_batch(self, profiles: Sequence[Profile]) -> list[list[Candidate]]:
        """The generator's candidates for each profile."""
        queries = [profile_query(profile, self.facets) for profile in profiles]
        return self.generator.generate_batch(
            [q.text for q in queries], [q.filters for q in queries], contexts=[q.context for q in queries]
        )

    def catalog_scores(self, profiles: Sequence[Profile], found: Sequence[Sequence[Candidate]]) -> np.ndarray:
        """The whole catalog's scores from each profile's candidates (tiers of the module docstring)."""
        scores = np.zeros((len(profiles), self.facets.n_items))
        for row, (profile, candidates) in enumerate(zip(profiles, found, strict=True)):
            answered = [(name, key) for name, key in profile.values().items() if name in self.facets]
            for name, key in answered:
                scores[row] += self.facets[name].mask(key)
            for candidate in candidates:
                if candidate.channels:
                    # Above any count of matched facets: the fused score of two channels is below 2 / rrf_k.
                    scores[row, candidate.position] = len(answered) + 1 + candidate.score
        return scores

    def score(self, profile: Profile) -> np.ndarray:
        return self.score_batch([profile])[0]

    def score_batch(self, profiles: Sequence[Profile]) -> np.ndarray:
        return self.catalog_scores(profiles, self.candidates_batch(profiles))


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
