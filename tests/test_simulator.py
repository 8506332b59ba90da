"""The simulated shopper: answer orders, honest need statements in three vocabularies, seeded brand answers,
profiles, reactions."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace

import numpy as np
import pytest

import assistant.simulator as simulator_module
from assistant.simulator import (
    NEED,
    NO_PREFERENCE,
    VAGUE_LEAF_SHARE,
    Episode,
    Order,
    ShopperWorld,
    SimulatedShopper,
    Vocabulary,
    content_words,
    episodes_from_split,
    question_order,
)
from data.facets import discover_facets
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import EvalSettings
from data.splits import make_split
from ranking.system import RankingSystem


@pytest.fixture(scope="module")
def office_shoppers(office) -> list[SimulatedShopper]:
    catalog, _ = office
    settings = EvalSettings()
    world = ShopperWorld.build(catalog, discover_facets(catalog), settings)
    # Every item as a target, not only the test users' last items: the need rule must hold for the whole catalog.
    return [
        SimulatedShopper(Episode(f"e{n}", f"u{n}", item.item_id, (), seed=n), world, Vocabulary.SPECIFIC)
        for n, item in enumerate(catalog)
    ]


def _content_words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_need_statement_is_never_the_title_nor_a_model_number(office, office_shoppers):
    catalog, _ = office
    lengths = []
    for shopper in office_shoppers:
        item = catalog[shopper.episode.target]
        need = shopper.need
        words = need.split()
        lengths.append(len(words))
        assert need == need.lower()
        assert not any(ch.isdigit() for ch in need)
        assert need.casefold() != item.title.casefold() and item.title.casefold() not in need
        assert not set(_content_words(item.title)) <= set(words) or not words
        category_words = {word for level in item.categories for word in _content_words(level)}
        # No word may come from a title token with a digit (a model number such as "WF-3520" gives no "wf").
        clean_tokens = [
            token for token in re.split(r"[\s,;:/()]+", item.title) if not re.search(r"\d", token)
        ]
        assert set(words) <= category_words | set(_content_words(" ".join(clean_tokens)))
        from_title_only = [word for word in words if word not in category_words]
        assert len(from_title_only) <= 2
        assert len(words) <= 5
    lengths = np.array(lengths)
    assert np.mean((lengths >= 2) & (lengths <= 5)) > 0.95


def test_need_statement_drops_brand_stop_and_short_words():
    items = [
        Item(
            "t",
            "Acme Ultra Pen with Gel Ink, Black, 12-Pack (AC-123)",
            brand="Acme",
            categories=("Office", "Gel Pens"),
        ),
        *(
            Item(f"f{n}", "Ultra Black Gel Ink Pen for all", brand="Zed", categories=("School", "Pens"))
            for n in range(3)
        ),
    ]
    catalog = Catalog(items)
    world = ShopperWorld.build(catalog, discover_facets(catalog), EvalSettings())
    needs = {
        SimulatedShopper(Episode("e", "u", "t", (), seed=seed), world, Vocabulary.SPECIFIC).need
        for seed in range(30)
    }
    for need in needs:
        words = need.split()
        # Category words last; then two of the title's other content words, in title order ("acme" is the
        # brand, "with" a stop word, "12-Pack" and "AC-123" contain digits, "pen" repeats "pens").
        assert words[-2:] == ["gel", "pens"]
        title_words = words[:-2]
        assert len(title_words) == 2 and set(title_words) <= {"ultra", "ink", "black"}
        assert title_words == sorted(title_words, key=["ultra", "ink", "black"].index)
    assert len(needs) > 1


def _brand_world(share: float, n_items: int = 400) -> tuple[ShopperWorld, list[Episode]]:
    items = [Item(f"i{n}", "Thing", brand=f"Brand{n % 7}", categories=(f"C{n % 3}",)) for n in range(n_items)]
    catalog = Catalog(items)
    world = ShopperWorld.build(
        catalog, discover_facets(catalog), EvalSettings(brand_no_preference=share), Order.FACETS_FIRST
    )
    episodes = [Episode(f"e{n}", f"u{n}", f"i{n}", (), seed=1000 + n) for n in range(n_items)]
    return world, episodes


@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_brand_no_preference_rate_is_close_to_the_setting(share):
    world, episodes = _brand_world(share, n_items=2000)
    assert world.order == ("category_1", "brand", NEED)
    withheld = [SimulatedShopper(episode, world).answers(2)[1].no_preference for episode in episodes]
    assert np.mean(withheld) == pytest.approx(share, abs=0.03)


def test_same_seed_same_answers_other_seed_other_brand_draws():
    world, episodes = _brand_world(0.5)
    first = [SimulatedShopper(episode, world).answers(3) for episode in episodes]
    again = [SimulatedShopper(episode, world).answers(3) for episode in episodes]
    reseeded = [
        SimulatedShopper(replace(episode, seed=episode.seed + 1), world).answers(3) for episode in episodes
    ]
    assert first == again
    assert first != reseeded


def test_answer_order_and_category_answers_come_from_the_target():
    items = [
        Item("deep", "Alpha pen", brand="Acme", categories=("Office", "Writing", "Pens", "Gel")),
        Item("flat", "Beta pad", categories=("School",)),
        Item("mid", "Gamma tape", brand="Zed", categories=("Office", "Tape", "Clear")),
        Item("other", "Delta", brand="Zed", categories=("Office", "Writing", "Pencils", "Wooden")),
    ]
    catalog = Catalog(items)
    facets = discover_facets(catalog)
    world = ShopperWorld.build(catalog, facets, EvalSettings(brand_no_preference=0.0), Order.FACETS_FIRST)
    assert question_order(facets, Order.FACETS_FIRST) == (
        "category_1",
        "category_2",
        "brand",
        NEED,
        "category_3",
        "category_4",
    )
    assert question_order(facets) == (NEED, "category_1", "category_2", "brand", "category_3", "category_4")
    deep = SimulatedShopper(Episode("e1", "u1", "deep", ("mid",), seed=1), world)
    answers = deep.answers(6)
    assert [answer.question for answer in answers] == list(world.order)
    assert [answer.value for answer in answers if answer.question != NEED] == [
        "Office",
        "Office > Writing",
        "acme",
        "Office > Writing > Pens",
        "Office > Writing > Pens > Gel",
    ]
    assert answers[1].text == "Writing"
    flat = SimulatedShopper(Episode("e2", "u2", "flat", (), seed=1), world).answers(6)
    assert [answer.text for answer in flat if answer.question != NEED] == ["School", *[NO_PREFERENCE] * 4]
    assert len(deep.answers(99)) == len(world.order) and deep.answers(0) == []


def test_the_brand_answer_is_the_targets_maker_even_when_the_catalog_gives_it_no_brand():
    items = [
        Item("hp-toner", "HP 78A Toner", brand="HP", categories=("Ink",)),
        Item("hp-printer", "HP Color LaserJet Printer", categories=("Printers",)),
        Item("for-hp", "Toner for HP printers", categories=("Ink",)),
        Item("canon", "Canon PG-245 Ink", brand="Canon", categories=("Ink",)),
    ]
    catalog = Catalog(items)
    world = ShopperWorld.build(catalog, discover_facets(catalog), EvalSettings(brand_no_preference=0.0))
    answers = {
        target: SimulatedShopper(Episode(target, "u", target, (), seed=1), world).answer("brand")
        for target in ("hp-printer", "for-hp")
    }
    assert (answers["hp-printer"].value, answers["hp-printer"].text) == ("hp", "HP")
    assert (answers["for-hp"].value, answers["for-hp"].text) == (None, NO_PREFERENCE)
    # The maker is known even when the brand answer is withheld ("no preference").
    shy = ShopperWorld.build(catalog, discover_facets(catalog), EvalSettings(brand_no_preference=1.0))
    printer = SimulatedShopper(Episode("e", "u", "hp-printer", (), seed=1), shy)
    assert printer.answer("brand").value is None and printer.maker == "hp"
    assert SimulatedShopper(Episode("e", "u", "for-hp", (), seed=1), shy).maker == ""


def test_uninformative_facets_are_left_out_of_the_order():
    items = [Item(str(n), "x", brand="Only", categories=("Root", f"Leaf{n % 2}")) for n in range(4)]
    assert question_order(discover_facets(Catalog(items)), Order.FACETS_FIRST) == ("category_2", NEED)


def test_profile_carries_only_answers_with_a_value_and_the_latest_likes():
    world, episodes = _brand_world(1.0)
    shopper = SimulatedShopper(replace(episodes[0], others=("i5", "i9")), world)
    profile = shopper.profile(3)
    assert profile.values() == {"category_1": "C0"}
    assert profile.answered == 3
    assert profile.session_id == episodes[0].episode_id
    assert profile.shown == frozenset() and profile.liked == ()
    assert shopper.profile(3, feedback=1).liked == ("i9",)
    assert shopper.profile(3, feedback=5).liked == ("i9", "i5")


def test_vague_need_is_leaf_words_and_at_most_one_common_title_word(office):
    catalog, _ = office
    world = ShopperWorld.build(catalog, discover_facets(catalog), EvalSettings())
    leaf_titles: dict[tuple[str, ...], list[set[str]]] = {}
    for item in catalog:
        leaf_titles.setdefault(item.categories, []).append(set(content_words(item.title)))
    brand_keys = {item.brand_key for item in catalog if item.brand_key}
    spoken = 0
    for n, item in enumerate(catalog):
        need = SimulatedShopper(Episode(f"e{n}", "u", item.item_id, (), seed=n), world, Vocabulary.VAGUE).need
        if not need:
            continue
        spoken += 1
        assert not any(ch.isdigit() for ch in need)
        category_words = {word for level in item.categories for word in content_words(level)}
        extra = [word for word in need.split() if word not in category_words]
        assert len(extra) <= 1, (item.title, need)
        for word in extra:
            titles = leaf_titles[item.categories]
            assert sum(word in title for title in titles) >= VAGUE_LEAF_SHARE * len(titles)
            assert word not in brand_keys and word not in content_words(item.brand)
    assert spoken / len(catalog) > 0.95


def test_paraphrased_need_comes_from_the_stored_paraphrase_only():
    items = [Item("a", "Stapler", categories=("Desk",)), Item("b", "Tape", categories=("Desk",))]
    catalog = Catalog(items)
    world = ShopperWorld.build(
        catalog, discover_facets(catalog), EvalSettings(), paraphrases={"a": "something to fasten sheets"}
    )
    with_one = SimulatedShopper(Episode("e", "u", "a", (), seed=1), world, Vocabulary.PARAPHRASED)
    without = SimulatedShopper(Episode("e", "u", "b", (), seed=1), world, Vocabulary.PARAPHRASED)
    assert with_one.need == "something to fasten sheets"
    assert without.need == "" and without.answers(1)[0].text == NO_PREFERENCE


def test_reactions_like_the_target_and_the_users_other_items():
    world, _ = _brand_world(0.0)
    shopper = SimulatedShopper(Episode("e", "u", "i1", ("i2", "i3"), seed=0), world)
    assert shopper.react(["i1", "i2", "i4", "i3"]) == {
        "i1": "like",
        "i2": "like",
        "i4": "dislike",
        "i3": "like",
    }


def test_the_simulator_never_has_access_to_a_system():
    parameters = inspect.signature(SimulatedShopper).parameters
    assert list(parameters) == ["episode", "world", "vocabulary"]
    world, episodes = _brand_world(0.25)
    shopper = SimulatedShopper(episodes[0], world)
    reachable = [*vars(shopper).values(), *vars(world).values()]
    assert not any(isinstance(value, RankingSystem) for value in reachable)
    assert "RankingSystem" not in vars(simulator_module)


def test_episodes_take_the_last_item_as_target_and_a_seeded_cap():
    catalog = Catalog([Item(f"i{n}", "x") for n in range(6)])
    events = [Interaction(f"u{u}", f"i{(u + n) % 6}", order=n) for u in range(40) for n in range(1 + u % 4)]
    events.append(Interaction("u1", "i1", order=9))
    settings = EvalSettings(test_share=0.5)
    split = make_split(catalog, Interactions(events), settings)
    episodes = episodes_from_split(split, settings)
    assert [episode.user_id for episode in episodes] == list(split.test_users)
    for episode in episodes:
        history = split.histories[episode.user_id]
        assert episode.target == history[-1]
        assert episode.target not in episode.others and set(episode.others) == set(history) - {episode.target}
    capped = episodes_from_split(split, settings, max_episodes=5)
    assert len(capped) == 5 and capped == episodes_from_split(split, settings, max_episodes=5)
    assert {episode.episode_id for episode in capped} <= {episode.episode_id for episode in episodes}
    assert len({episode.episode_id for episode in episodes}) == len(episodes)
    # An episode id names neither the target nor the user: a system that reads it learns nothing.
    assert all(e.target not in e.episode_id and e.user_id not in e.episode_id for e in episodes)
    tuning = episodes_from_split(split, settings, validation=True)
    assert tuning and [episode.user_id for episode in tuning] == list(split.validation_users)
    assert not {episode.user_id for episode in tuning} & {episode.user_id for episode in episodes}
