"""The category resolver: exact answers on the bundled sample and on a hand-built garden store, the LLM stage's
strict validation (with fake chat models: those tests are about what is accepted), and its wiring."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant.build import build_assistant
from assistant.engine import Conversation, Engine
from assistant.resolve import CategoryResolver, LabelMatch, Stage, pick_label
from assistant.understand import CatalogVocabulary, understand
from data.facets import discover_facets
from data.load import load_catalog
from data.schema import Catalog, Item
from data.settings import UnderstandingSettings, load_settings
from ranking.candidate_systems import LexicalSystem
from ranking.system import TrainingData
from retrieval.embeddings import get_embedder
from tests.assistant_fixtures import small_assistant, small_catalog, small_interactions, small_settings

# The default thresholds, with the stage turned on (it is off by default).
DEFAULTS = replace(UnderstandingSettings(), embeddings=True)
# Low enough for "pruners" (0.53 to Pruning Shears) in the garden store: these tests are about the mechanism; the
# defaults are pinned by the tests that use them.
LOOSE = replace(DEFAULTS, embedding_threshold=0.5)


@pytest.fixture(scope="module")
def embedder():
    """The project's bi-encoder, loaded once for the module (the model itself is loaded once per process)."""
    model = get_embedder(16)
    model.embed(["warm up"])
    return model


def _vocabulary(catalog: Catalog) -> CatalogVocabulary:
    return CatalogVocabulary.build(catalog, discover_facets(catalog))


@pytest.fixture(scope="module")
def garden() -> CatalogVocabulary:
    """A small garden store: nothing in the resolver may depend on what a store sells."""
    rows = [
        ("Bypass Pruning Shears", "Felco", ("Garden", "Hand Tools", "Pruning Shears")),
        ("Anvil Pruning Shears", "Fiskars", ("Garden", "Hand Tools", "Pruning Shears")),
        ("Round Point Shovel", "Fiskars", ("Garden", "Hand Tools", "Shovels & Spades")),
        ("Expandable Garden Hose 50 ft", "Flexzilla", ("Garden", "Watering", "Garden Hoses")),
        ("Oscillating Lawn Sprinkler", "Rain Bird", ("Garden", "Watering", "Sprinklers")),
        ("Teak Patio Chair", "Polywood", ("Garden", "Outdoor Furniture", "Patio Chairs")),
        ("Charcoal Kettle Grill", "Weber", ("Garden", "Grills & Outdoor Cooking", "Charcoal Grills")),
        ("Bird Feeder", "Droll", ("Garden", "Bird Care", "Bird Feeders")),
    ]
    return _vocabulary(
        Catalog(
            [Item(str(n), title, brand=brand, categories=path) for n, (title, brand, path) in enumerate(rows)]
        )
    )


@pytest.fixture(scope="module")
def sample() -> CatalogVocabulary:
    catalog, _ = load_catalog(load_settings(environ={}).paths.catalog)
    return _vocabulary(catalog)


def _categories(resolved) -> list[str]:
    return [str(edit) for edit in resolved.understanding.edits if edit.facet.startswith("category_")]


def test_pruners_resolve_to_the_pruning_category(garden, embedder) -> None:
    understood = understand("i need some pruners", garden)
    assert understood.need == "pruners" and not understood.edits  # the rules cannot place it
    resolved = CategoryResolver(garden, embedder, LOOSE).resolve(understood)
    assert resolved.stage is Stage.EMBEDDINGS
    assert _categories(resolved) == ["category_3 = Garden > Hand Tools > Pruning Shears"]
    assert resolved.understanding.need == "pruners"  # the words stay for retrieval
    assert resolved.candidates[0].label == "Pruning Shears"


def test_the_default_threshold_leaves_a_weak_match_to_retrieval(garden, embedder) -> None:
    resolved = CategoryResolver(garden, embedder, DEFAULTS).resolve(understand("pruners", garden))
    assert resolved.stage is Stage.NONE and not resolved.understanding.edits


@pytest.mark.parametrize("message", ["something nice for my mom", "asdf qwerty", "a mobile phone"])
def test_a_need_with_nothing_resolvable_gets_no_edit(garden, embedder, message) -> None:
    resolved = CategoryResolver(garden, embedder, LOOSE).resolve(understand(message, garden))
    assert resolved.stage is Stage.NONE and resolved.understanding.edits == ()


def test_a_margin_refuses_a_near_tie(garden, embedder) -> None:
    # "bbq": Grills & Outdoor Cooking 0.66, Charcoal Grills 0.63.
    understood = understand("bbq", garden)
    assert _categories(CategoryResolver(garden, embedder, LOOSE).resolve(understood)) == [
        "category_2 = Garden > Grills & Outdoor Cooking"
    ]
    margin = replace(LOOSE, embedding_margin=0.05)
    assert CategoryResolver(garden, embedder, margin).resolve(understood).understanding.edits == ()


def test_a_category_the_rules_found_is_kept_as_it_is(garden, embedder) -> None:
    understood = understand("a garden hose and pruners", garden)
    resolved = CategoryResolver(garden, embedder, LOOSE).resolve(understood)
    assert resolved.stage is Stage.RULES and resolved.understanding is understood


def test_on_the_sample_a_paraphrased_category_resolves_with_the_defaults(sample, embedder) -> None:
    understood = understand("printer cartridges", sample)
    assert not understood.edits
    resolved = CategoryResolver(sample, embedder, DEFAULTS).resolve(understood)
    assert resolved.stage is Stage.EMBEDDINGS
    assert _categories(resolved) == ["category_2 = Office & School Supplies > Printer Ink & Toner"]


@pytest.mark.parametrize("message", ["pruners", "asdf qwerty", "something nice for my mom"])
def test_on_the_sample_words_of_no_category_get_no_edit(sample, embedder, message) -> None:
    resolved = CategoryResolver(sample, embedder, DEFAULTS).resolve(understand(message, sample))
    assert resolved.understanding.edits == ()


def _llm_settings(**changes) -> UnderstandingSettings:
    # Nothing passes the embedding threshold, so every need above the floor goes to the model.
    return replace(DEFAULTS, **{"embedding_threshold": 1.0, "llm": True, "llm_floor": 0.3, **changes})


def test_the_llm_pick_among_the_offered_labels_is_taken(garden, embedder) -> None:
    model = FakeListChatModel(responses=["pruning shears."])
    resolved = CategoryResolver(garden, embedder, _llm_settings(), model).resolve(
        understand("pruners", garden)
    )
    assert resolved.stage is Stage.LLM
    assert _categories(resolved) == ["category_3 = Garden > Hand Tools > Pruning Shears"]


@pytest.mark.parametrize(
    "answer",
    [
        "Lawn Mowers",  # a category the store does not have
        "Patio Chairs",  # the store has it, but it was not offered (not among the 2 best)
        "Pruning Shears or Shovels & Spades",
        "none",
        "",
    ],
)
def test_an_llm_answer_that_is_not_an_offered_label_makes_no_edit(garden, embedder, answer) -> None:
    settings = _llm_settings(llm_candidates=2)
    resolver = CategoryResolver(garden, embedder, settings, FakeListChatModel(responses=[answer]))
    offered = [match.label for match in resolver.candidates("pruners", 2)]
    assert "Patio Chairs" not in offered
    resolved = resolver.resolve(understand("pruners", garden))
    assert resolved.stage is Stage.NONE and resolved.understanding.edits == ()


class _Broken(FakeListChatModel):
    def _call(self, *args, **kwargs) -> str:
        raise TimeoutError("the server did not answer")


def test_a_failing_llm_makes_no_edit(garden, embedder) -> None:
    resolver = CategoryResolver(garden, embedder, _llm_settings(), _Broken(responses=["x"]))
    assert resolver.resolve(understand("pruners", garden)).understanding.edits == ()


def test_below_the_llm_floor_the_model_is_not_asked(garden, embedder) -> None:
    model = FakeListChatModel(responses=["Pruning Shears"])
    resolver = CategoryResolver(garden, embedder, _llm_settings(llm_floor=0.9), model)
    assert resolver.resolve(understand("pruners", garden)).understanding.edits == ()
    assert model.i == 0  # never called


def test_with_provider_none_the_llm_stage_is_skipped(garden, embedder) -> None:
    from assistant.llm import get_chat_model

    model = get_chat_model(load_settings(environ={"CONCIERGE_LLM_PROVIDER": "none"}))
    assert model is None
    resolved = CategoryResolver(garden, embedder, _llm_settings(), model).resolve(
        understand("pruners", garden)
    )
    assert resolved.stage is Stage.NONE and resolved.understanding.edits == ()
    offered = (LabelMatch("category_3", "Garden > Hand Tools > Pruning Shears", "Pruning Shears", 0.5),)
    assert pick_label(None, "pruners", offered) is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"embedding_threshold": 1.5}, "embedding_threshold"),
        ({"llm_floor": -2.0}, "llm_floor"),
        ({"embedding_margin": -0.1}, "embedding_margin"),
        ({"llm_candidates": 1}, "llm_candidates"),
    ],
)
def test_bad_settings_are_refused_by_name(garden, embedder, changes, named) -> None:
    with pytest.raises(ValueError, match=f"understanding.{named}"):
        CategoryResolver(garden, embedder, replace(DEFAULTS, **changes))


def test_the_engine_puts_a_resolved_category_in_the_profile(tmp_path, embedder) -> None:
    assert small_assistant(tmp_path / "off").shop.resolver is None  # off by default
    settings = replace(small_settings(tmp_path), understanding=DEFAULTS)
    catalog, interactions, system = small_catalog(), small_interactions(), LexicalSystem(settings)
    system.fit(TrainingData.build(catalog, discover_facets(catalog), interactions))
    shop = build_assistant(settings, catalog, interactions, system=system).shop
    assert isinstance(shop.resolver, CategoryResolver)  # built once per store when turned on
    state, _ = Engine(shop).respond(Conversation(), "a telephone")
    assert [slot.constraint.value for slot in state.profile.slots] == []  # Phones 0.74: under the default
    shop.resolver = CategoryResolver(shop.vocabulary, embedder, LOOSE)
    state, _ = Engine(shop).respond(Conversation(), "a telephone")
    assert [(slot.constraint.value, slot.said) for slot in state.profile.slots] == [
        ("Office Electronics > Phones", "telephone")
    ]


def test_the_settings_turn_the_resolver_on() -> None:
    settings = load_settings(environ={"CONCIERGE_UNDERSTANDING_EMBEDDINGS": "true"})
    assert settings.understanding.embeddings is True
    assert UnderstandingSettings().embeddings is False and UnderstandingSettings().llm is False
