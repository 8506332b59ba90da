"""Questions on title words, on a small kitchen catalog (another domain than the sample's): which words are
offered, how the engine folds the answer into the need, and how the simulated shopper answers. Exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.policy import NO_PREFERENCE, WORDS, FixedOrderPolicy, Question, QuestionPolicy
from assistant.profile import InterestProfile
from assistant.simulator import Episode, Order, ShopperWorld, SimulatedShopper, Vocabulary
from assistant.title_words import TitleWords, title_keys
from data.facets import discover_facets
from data.schema import Catalog, Item
from data.settings import EvalSettings
from retrieval.profile import Constraint, Op
from tests.assistant_fixtures import small_assistant

KETTLES = ("Kitchen", "Kettles")
KNIVES = ("Kitchen", "Knives")
KITCHEN = [
    ("k1", "Electric Kettle, Glass, 1.7 Litre", "Brewco", KETTLES),
    ("k2", "Electric Kettle, Stainless Steel", "Brewco", KETTLES),
    ("k3", "Electric Kettle, Glass with Blue Light", "Brewco", KETTLES),
    ("k4", "Stovetop Kettle, Stainless Steel, Whistling", "Brewco", KETTLES),
    ("k5", "Stovetop Kettle, Enamel, Whistling", "Brewco", KETTLES),
    ("k6", "Stovetop Kettle, Stainless Steel", "Brewco", KETTLES),
    ("k7", "Gooseneck Electric Kettle, Matte Black", "Brewco", KETTLES),
    ("n1", "Brewco Chef Knife, Stainless Steel", "Brewco", KNIVES),
    ("n2", "Bread Knife, Stainless Steel", "Edgewell", KNIVES),
    ("n3", "Paring Knife, Ceramic Blade", "Edgewell", KNIVES),
]


def kitchen() -> Catalog:
    return Catalog([Item(i, title, brand=brand, categories=path) for i, title, brand, path in KITCHEN])


def test_words_are_the_titles_content_words_used_by_three_titles_brand_words_left_out() -> None:
    words = TitleWords.build(kitchen())
    # "brewco" (a brand), "glass" and "whistling" (two titles each), "litre" (one) and "with" (a function word)
    # are never offered; plural and singular are one word.
    assert words.keys == ("electric", "kettle", "knife", "stainless", "steel", "stovetop")
    assert words.labels == ("Electric", "Kettle", "Knife", "Stainless", "Steel", "Stovetop")
    assert title_keys("Paring Knives, Ceramic Blade, 2 Pack") == ["paring", "knife", "ceramic", "blade"]
    # Labels are written as the titles write them: acronyms kept, lower case and shouting capitalised.
    players = Catalog([Item(str(n), "Portable DVD player, BLACK") for n in range(3)])
    assert TitleWords.build(players).labels == ("Black", "DVD", "Player", "Portable")


def test_units_names_and_hyphenated_brands_are_never_offered_compounds_are_one_word() -> None:
    staplers = Catalog(
        [Item(f"q{n}", "QuietCo Stapler, 20 Sheets, Full-Strip") for n in range(3)]
        + [Item(f"p{n}", "Post-it Stapler, 40 Sheets, Half-Strip", brand="Post-it") for n in range(3)]
    )
    words = TitleWords.build(staplers)
    # "sheet" follows a number (a count), "QuietCo" has a capital inside (a name the catalog has as no brand),
    # "post-it" is a brand; the strip kinds are one word each.
    assert words.keys == ("full-strip", "half-strip", "stapler")
    assert words.labels == ("Full-Strip", "Half-Strip", "Stapler")


def test_options_split_the_candidates_and_leave_out_what_was_said_and_what_all_share() -> None:
    words = TitleWords.build(kitchen())
    kettles = np.arange(7)
    offer = words.options(kettles, np.full(7, 1 / 7), said=["a kettle"])
    # "kettle" was said. Greedily: "stainless" (k2 k4 k6) first, "electric" for k1 k3 k7, "stovetop" for k5;
    # "steel" adds nothing once "stainless" is offered (the same three kettles).
    assert offer.keys == ("stainless", "electric", "stovetop")
    assert offer.labels == ("Stainless", "Electric", "Stovetop")
    # k1..k7 fall to: Electric, Stainless (k2 has both; Stainless is offered first), Electric, Stainless,
    # Stovetop, Stainless, Electric.
    assert offer.groups.tolist() == [1, 0, 1, 0, 2, 0, 1]
    assert offer.information == pytest.approx(-2 * (3 / 7) * np.log(3 / 7) - (1 / 7) * np.log(1 / 7))
    # A word every candidate has tells nothing, and one candidate alone is no choice: among the electric
    # kettles "stainless" and "steel" are one kettle's, so nothing is offered.
    electric = np.array([0, 1, 2, 6])
    nothing = words.options(electric, np.full(4, 0.25), said="electric kettle")
    assert (nothing.keys, nothing.information, nothing.groups.tolist()) == ((), 0.0, [-1, -1, -1, -1])
    # Over the whole catalog with nothing said, "kettle" is offered too: it covers the enamel kettle, which the
    # words chosen before it do not.
    assert words.options(np.arange(10), np.full(10, 0.1), said="").keys == (
        "electric",
        "stainless",
        "kettle",
        "knife",
    )
    assert words.options(np.array([], dtype=np.int64), np.array([]), said="").keys == ()


def test_the_policy_asks_about_words_when_no_facet_tells_the_kettles_apart() -> None:
    catalog = kitchen()
    facets = discover_facets(catalog)
    profile = InterestProfile(needs=("kettle",)).with_slot(
        Constraint("category_2", Op.EQ, "Kitchen > Kettles"), "kettle"
    )
    policy = QuestionPolicy(facets, words=TitleWords.build(catalog))
    question = policy.question(np.arange(7), profile, asked=0)
    assert question is not None and question.facet == WORDS
    assert question.options == ("Electric", "Stainless", "Stovetop")
    # Without title words there is nothing to ask: one brand, one category.
    assert QuestionPolicy(facets).question(np.arange(7), profile, asked=0) is None
    # Answered once, never asked again.
    assert policy.question(np.arange(7), profile.with_words("stovetop"), asked=1) is None


def test_a_questions_reach_is_the_mass_each_answer_would_show_next() -> None:
    catalog = kitchen()
    profile = InterestProfile().with_slot(Constraint("category_2", Op.EQ, "Kitchen > Kettles"), "kettle")
    policy = QuestionPolicy(discover_facets(catalog), words=TitleWords.build(catalog), horizon=2)
    question = policy.question(np.arange(7), profile, asked=0)
    assert question is not None and question.options == ("Electric", "Stainless", "Stovetop")
    # Each kettle falls to the first offered word its title has: Electric k1 k2 k3 k7, Stainless k4 k6,
    # Stovetop k5. Two cards after the answer show k1 k2, k4 k6 and k5; the mass is 1 / (rank + 1).
    mass = 1 / np.arange(1, 8)
    assert question.reach == pytest.approx(mass[[0, 1, 3, 5, 4]].sum() / mass.sum())


def test_a_question_is_asked_only_when_its_reach_gains_enough_over_recommending_now() -> None:
    catalog = kitchen()
    profile = InterestProfile().with_slot(Constraint("category_2", Op.EQ, "Kitchen > Kettles"), "kettle")
    # The words question above: reach over k1 k2 k4 k6 k5, against k1 k2 on the two cards of a slate now.
    mass = 1 / np.arange(1, 8)
    gain = mass[[3, 5, 4]].sum() / mass.sum()

    def asked(min_gain: float) -> Question | None:
        policy = QuestionPolicy(
            discover_facets(catalog), words=TitleWords.build(catalog), horizon=2, min_reach_gain=min_gain
        )
        return policy.question(np.arange(7), profile, asked=0)

    assert asked(0.0) is not None and asked(gain - 0.001) is not None
    assert asked(gain + 0.001) is None
    with pytest.raises(ValueError, match=r"min_reach_gain must be in \[0, 1\], got 1.5"):
        QuestionPolicy(discover_facets(catalog), min_reach_gain=1.5)


def test_the_engine_asks_by_reach_or_entropy_the_fixed_order_by_its_order() -> None:
    facets = discover_facets(kitchen())
    words = Question(WORDS, "Anything in particular?", ("A", "B"), ("a", "b"), 1.0, reach=0.5)
    brand = Question("brand", "Any brand you prefer?", ("X", "Y"), ("x", "y"), 0.6, reach=0.7)
    assert QuestionPolicy(facets).choose([words, brand]) is brand
    assert QuestionPolicy(facets, choice="entropy").choose([brand, words]) is words
    assert FixedOrderPolicy(facets, (WORDS, "brand")).choose([brand, words]) is words
    with pytest.raises(ValueError, match="question choice must be one of reach, entropy, got 'most'"):
        QuestionPolicy(facets, choice="most")


@pytest.fixture
def service(tmp_path):
    return small_assistant(tmp_path, catalog=kitchen()).service


def test_a_word_chosen_joins_the_need_and_ranks_its_items_first(service) -> None:
    asked = service.send("s", "i need a kettle")
    assert asked.question is not None and asked.question.facet == WORDS
    assert asked.options == ("Electric", "Stainless", "Stovetop", NO_PREFERENCE)
    picks = service.send("s", "Stovetop")
    assert {card.item_id for card in picks.cards[:3]} == {"k4", "k5", "k6"}
    profile = service.view("s").conversation.profile
    assert "stovetop" in profile.need and profile.is_answered(WORDS)


def test_picked_words_lead_the_slate_over_the_other_words_of_the_need(service) -> None:
    # "glass" is the rarer word, so retrieval alone ranks the two glass kettles (electric ones) first.
    asked = service.send("s", "a glass kettle")
    assert asked.question is not None and asked.question.facet == WORDS
    picks = service.send("s", "Stovetop")
    assert {card.item_id for card in picks.cards[:3]} == {"k4", "k5", "k6"}
    profile = service.view("s").conversation.profile
    assert [(slot.facet, slot.constraint.value, slot.said) for slot in profile.slots][-1] == (
        WORDS,
        "stovetop",
        "quick reply",
    )


def test_words_typed_instead_of_a_quick_reply_answer_the_question_too(service) -> None:
    service.send("s", "i need a kettle")
    reply = service.send("s", "one that whistles, enamel maybe")
    assert reply.question is None and reply.cards
    assert reply.cards[0].item_id == "k5"
    assert service.view("s").conversation.profile.is_answered(WORDS)


def test_words_the_catalog_never_uses_leave_the_question_pending(service) -> None:
    asked = service.send("s", "i need a kettle")
    reply = service.send("s", "zyxwv qwrtp")
    assert reply.question == asked.question and not reply.cards
    assert not service.view("s").conversation.profile.is_answered(WORDS)


def test_no_preference_to_the_words_recommends_without_changing_the_need(service) -> None:
    service.send("s", "i need a kettle")
    reply = service.send("s", NO_PREFERENCE)
    profile = service.view("s").conversation.profile
    assert reply.cards and profile.needs == () and profile.is_answered(WORDS)


def test_the_simulated_shopper_picks_the_first_offered_word_its_target_has() -> None:
    catalog = kitchen()
    facets = discover_facets(catalog)
    world = ShopperWorld.build(catalog, facets, EvalSettings(), Order.NEED_FIRST)
    shopper = SimulatedShopper(Episode("e", "u", "k6", (), 1), world, Vocabulary.VAGUE)
    assert shopper.pick_word(("electric", "stovetop", "stainless")) == 1
    assert shopper.pick_word(("electric", "glass")) is None
