"""``build_assistant(settings)``: everything the assistant stands on, assembled once per process.

It loads the catalog and interactions the settings name, discovers the facets, builds the vocabulary and the
category resolver (:mod:`assistant.resolve`: the label vectors, once per store), fits the ranking system (the
trained blend of hybrid retrieval, cross-encoder and MF prior when ``concierge train-reranker`` has run; the hybrid
retrieval alone until then, which :attr:`Assistant.ranking` says), the question policy, and the session store
(SQLite under the artifacts folder unless ``conversation.session_store`` names another). The UI and every channel
only serve the :class:`assistant.service.AssistantService` it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.engine import Engine, Shop
from assistant.policy import QuestionPolicy
from assistant.resolve import CategoryResolver
from assistant.service import AssistantService
from assistant.sessions import MemoryStore, SessionStore, SQLiteStore
from assistant.title_words import TitleWords
from assistant.understand import CatalogVocabulary
from data.facets import discover_facets
from data.schema import Catalog, Interactions
from data.settings import Settings

log = logging.getLogger(__name__)

SESSIONS_FILE = "sessions.sqlite3"


@dataclass
class Assistant:
    """The assembled assistant: the service, and what it was built from."""

    service: AssistantService
    shop: Shop
    ranking: str


def session_store(settings: Settings) -> SessionStore:
    """The store the settings name: ``memory``, ``sqlite:///PATH``, ``postgresql://...``, or "" for the artifacts
    folder's SQLite file."""
    url = settings.conversation.session_store.strip()
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from assistant.sessions import PostgresStore

        return PostgresStore(url)
    if url:
        raise ValueError(
            f"conversation.session_store {url!r}: use '' (SQLite under the artifacts folder), 'memory', "
            "'sqlite:///PATH' or 'postgresql://...'"
        )
    return SQLiteStore(settings.paths.artifacts / SESSIONS_FILE)


def build_assistant(
    settings: Settings,
    catalog: Catalog | None = None,
    interactions: Interactions | None = None,
    *,
    system=None,
    store: SessionStore | None = None,
) -> Assistant:
    """Assemble the assistant (see the module docstring). ``system`` and ``store`` replace the ones the settings
    would make (a fitted :class:`ranking.system.RankingSystem`; tests use small ones)."""
    from ranking.system import TrainingData

    if catalog is None or interactions is None:
        from data.load import load_catalog, load_interactions

        catalog = catalog or load_catalog(settings.paths.catalog, settings=settings.data)[0]
        interactions = (
            interactions or load_interactions(settings.paths.interactions, catalog, settings=settings.data)[0]
        )
    facets = discover_facets(catalog)
    data = TrainingData.build(catalog, facets, interactions)
    ranking = getattr(system, "name", "")
    if system is None:
        system, ranking = _ranking_system(settings)
        system.fit(data)
    conversation = settings.conversation
    vocabulary = CatalogVocabulary.build(catalog, facets)
    llm = _chat_model(settings)
    shop = Shop(
        catalog=catalog,
        facets=facets,
        vocabulary=vocabulary,
        system=system,
        policy=QuestionPolicy(
            facets,
            conversation.question_budget,
            conversation.min_entropy,
            conversation.min_coverage,
            TitleWords.build(catalog) if conversation.word_questions else None,
            conversation.slate_size,
            conversation.question_choice,
            conversation.min_reach_gain,
        ),
        generated=_generated(settings, catalog),
        chosen_by=data.item_counts(),
        shared=_shared(catalog, data),
        candidates=_candidates(system, conversation.policy_candidates),
        slate_size=conversation.slate_size,
        llm=llm,
        cards_with_questions=conversation.cards_with_questions,
        rank_question_cards=conversation.question_cards == "ranked",
        resolver=_resolver(settings, vocabulary, llm),
    )
    service = AssistantService(Engine(shop), store or session_store(settings), conversation.session_ttl_hours)
    return Assistant(service, shop, ranking)


def swap_ranking(assistant: Assistant, settings: Settings, interactions: Interactions) -> str:
    """Fit the ranking system the settings now call for (the blend, once trained) and put it in place of the
    running one; what ranks now."""
    from ranking.system import TrainingData

    shop = assistant.shop
    system, ranking = _ranking_system(settings)
    system.fit(TrainingData.build(shop.catalog, shop.facets, interactions))
    shop.candidates = _candidates(system, settings.conversation.policy_candidates)
    shop.system = system
    assistant.ranking = ranking
    return ranking


def _ranking_system(settings: Settings):
    from ranking.candidate_systems import HybridSystem
    from ranking.cross_encoder import RerankerModelError, read_card
    from ranking.rerank import RERANKER_FOLDER, FullBlend

    try:
        read_card(settings.paths.artifacts / RERANKER_FOLDER)
    except RerankerModelError as error:
        log.warning("ranking with hybrid retrieval only: %s", error)
        hybrid = HybridSystem(settings, application_index=True)
        return hybrid, "hybrid retrieval (the reranker is not trained yet: concierge train-reranker)"
    # The indexes `concierge build` wrote (on the Chroma server when one is set), shared by every process.
    blend = FullBlend(settings, application_index=True)
    return blend, "hybrid retrieval reranked by the cross-encoder and the MF prior (blend)"


def _chat_model(settings: Settings):
    """The language model that may reword explanations; ``None`` with provider "none" or when it cannot load
    (explanations are then the templates, which are always shown anyway)."""
    from assistant.llm import ModelUnavailableError, get_chat_model

    try:
        return get_chat_model(settings)
    except ModelUnavailableError as error:
        log.warning("explanations stay templates: %s", error)
        return None


def _resolver(settings: Settings, vocabulary: CatalogVocabulary, llm) -> CategoryResolver | None:
    """The resolver of needs the rules place in no category, its label vectors computed now; ``None`` when the
    settings turn its stages off. The embedder shares the process's one loaded model with retrieval."""
    understanding = settings.understanding
    if not understanding.embeddings:
        return None
    from retrieval.embeddings import get_embedder

    embedder = get_embedder(settings.retrieval.embedding_batch_size)
    return CategoryResolver(vocabulary, embedder, understanding, llm)


def _generated(settings: Settings, catalog: Catalog) -> dict[str, str]:
    """The current generated descriptions (those of items unchanged since they were written)."""
    from data.descriptions import descriptions_for_retrieval, load_descriptions

    return descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)


def _shared(catalog: Catalog, data):
    """``(liked title, shoppers who chose both)`` for a pick and the liked items, most shared first."""
    matrix = data.matrix().tocsc()

    def shared(item_id: str, liked: Sequence[str]) -> list[tuple[str, int]]:
        pick = matrix[:, catalog.position(item_id)]
        out = []
        for other in liked:
            if other != item_id and other in catalog:
                both = int(pick.multiply(matrix[:, catalog.position(other)]).sum())
                out.append((catalog[other].title, both))
        return sorted(out, key=lambda pair: -pair[1])

    return shared


def _candidates(system, depth: int):
    """The candidates' catalog positions for a profile, best first: the candidate generator's when the system
    has one (no reranking: a question turn stays fast), else the system's ranking."""
    if hasattr(system, "candidates_batch"):

        def found(profile) -> np.ndarray:
            return np.array(
                [c.position for c in system.candidates_batch([profile])[0]][:depth], dtype=np.int64
            )

        return found

    def ranked(profile) -> np.ndarray:
        return np.array([r.position for r in system.rank(profile, k=depth)], dtype=np.int64)

    return ranked
