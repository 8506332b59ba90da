"""The shopper profile and the one rule that turns it into query words, context and hard filters."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data.facets import discover_facets
from data.schema import Catalog, Item, Price
from retrieval.filters import FilterIndex, Filters
from retrieval.profile import PRICE, Constraint, Op, Profile, profile_filters, profile_query, profile_text

ITEMS = [
    Item(
        "hp61",
        "HP 61 Black Ink",
        brand="HP",
        categories=("Office", "Ink & Toner", "Ink"),
        price=Price(25.0, "USD"),
    ),
    Item(
        "hp62",
        "HP 62 Color Ink",
        brand="HP",
        categories=("Office", "Ink & Toner", "Ink"),
        price=Price(35.0, "USD"),
    ),
    Item(
        "canon",
        "Canon PG-245 Ink",
        brand="Canon",
        categories=("Office", "Ink & Toner", "Ink"),
        price=Price(18.0, "USD"),
    ),
    Item("toner", "Brother TN-450 Toner", brand="Brother", categories=("Office", "Ink & Toner", "Toner")),
    Item(
        "pen",
        "BIC Round Stic Pens",
        brand="BIC",
        categories=("Office", "Writing", "Pens"),
        price=Price(4.0, "USD"),
    ),
    Item("pad", "Legal Pads", brand="Ampad", categories=("Office", "Paper"), price=Price(12.0, "USD")),
]
CATALOG = Catalog(ITEMS)
FACETS = discover_facets(CATALOG)
INDEX = FilterIndex(CATALOG)


def allowed(profile: Profile) -> list[str]:
    mask = INDEX.mask(profile_filters(profile, FACETS))
    return [item.item_id for item, ok in zip(CATALOG, mask, strict=True) if ok]


def test_deepest_category_and_brand_filter_and_context_in_order():
    profile = Profile.from_answers(
        {"category_2": "Office > Ink & Toner", "category_3": "Office > Ink & Toner > Ink", "brand": "hp"},
        need="black ink",
    )
    query = profile_query(profile, FACETS)
    assert query.text == "black ink"
    assert query.labels == ("Ink & Toner", "Ink", "HP")
    assert query.context == "Ink & Toner Ink HP"
    assert allowed(profile) == ["hp61", "hp62"]
    assert profile_text(profile, FACETS) == "black ink. Ink & Toner, Ink, HP"


def test_negations_exclude_brands_and_categories():
    not_hp = Profile(constraints=(Constraint("brand", Op.NE, "hp"),))
    assert allowed(not_hp) == ["canon", "toner", "pen", "pad"]
    no_ink = Profile(constraints=(Constraint("category_2", Op.NE, "Office > Ink & Toner"),))
    assert allowed(no_ink) == ["pen", "pad"]
    # A brand both asked for and refused is refused: the refusal is the safer reading.
    both = Profile(constraints=(Constraint("brand", Op.EQ, "hp"), Constraint("brand", Op.NE, "hp")))
    assert allowed(both) == ["canon", "toner", "pen", "pad"]


def test_price_constraints_and_latest_words_win():
    under_30 = Profile(constraints=(Constraint(PRICE, Op.LT, 30),))
    assert allowed(under_30) == ["hp61", "canon", "pen", "pad"]  # the unpriced toner cannot be promised
    between = Profile(constraints=(Constraint(PRICE, Op.BETWEEN, (10, 30)),))
    assert allowed(between) == ["hp61", "canon", "pad"]
    changed = Profile(constraints=(Constraint(PRICE, Op.LT, 20), Constraint(PRICE, Op.GT, 30)))
    assert allowed(changed) == ["hp62"]
    assert profile_filters(changed, FACETS).max_price is None


def test_shown_and_disliked_items_never_pass():
    profile = Profile(shown=frozenset({"hp61"}), disliked=("pad",))
    assert allowed(profile) == ["hp62", "canon", "toner", "pen"]
    assert profile.excluded == {"hp61", "pad"}


def test_unknown_facets_and_values_add_nothing():
    odd = Profile.from_answers({"category_9": "X", "brand": "no-such-brand", "attr:color": "red"}, need="  ")
    assert profile_query(odd, FACETS) == profile_query(Profile(), FACETS)
    assert profile_filters(odd, FACETS).is_empty
    assert profile_text(odd, FACETS) == ""


def test_price_band_answers_become_bounds():
    priced = Catalog([Item(str(n), "x", price=Price(float(n), "USD")) for n in range(1, 101)])
    facets = discover_facets(priced)
    band = facets["price_band"].values[0]
    filters = profile_filters(Profile.from_answers({"price_band": band.key}), facets)
    assert filters.min_price is None and filters.max_price is not None


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        (lambda: Constraint("brand", Op.EQ, ""), "needs a facet value key"),
        (lambda: Constraint("brand", Op.LT, 3.0), "use the facet 'price'"),
        (lambda: Constraint(PRICE, Op.LT, -1.0), "non-negative"),
        (lambda: Constraint(PRICE, Op.LT, float("nan")), "non-negative"),
        (lambda: Constraint(PRICE, Op.BETWEEN, (5.0, 1.0)), "swap them"),
        (lambda: Constraint(PRICE, Op.BETWEEN, 5.0), "(low, high) pair"),
    ],
)
def test_bad_constraints_say_what_is_wrong(constraint, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        constraint()


def test_feedback_keeps_order_without_repeats():
    profile = Profile(liked=("a",)).with_feedback(liked=("b", "a"), disliked=("c",))
    assert profile.liked == ("a", "b") and profile.disliked == ("c",)


@given(
    st.lists(
        st.one_of(
            st.builds(
                Constraint,
                st.just("brand"),
                st.sampled_from([Op.EQ, Op.NE]),
                st.sampled_from(["hp", "bic", "zz"]),
            ),
            st.builds(Constraint, st.just(PRICE), st.sampled_from([Op.LT, Op.GT]), st.floats(0, 50)),
        ),
        max_size=6,
    )
)
def test_any_profile_gives_valid_filters_that_respect_every_refusal(constraints):
    profile = Profile(constraints=tuple(constraints))
    filters = profile_filters(profile, FACETS)
    assert isinstance(filters, Filters)
    refused = {c.value for c in constraints if c.op is Op.NE}
    for item_id in allowed(profile):
        assert CATALOG[item_id].brand_key not in refused
