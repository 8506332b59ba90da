"""Facets discovered from any catalog: category levels, brand, price bands, attributes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.facets import FacetKind, discover_facets
from data.schema import Catalog, Item, Price


@pytest.fixture(scope="module")
def office_catalog(office) -> Catalog:
    return office[0]


def test_category_values_are_path_prefixes_displayed_by_their_last_name():
    catalog = Catalog(
        [
            Item("a", "x", categories=("Office", "Envelopes")),
            Item("b", "x", categories=("Shipping", "Envelopes")),
            Item("c", "x", categories=("Office", "Envelopes", "Booklet")),
            Item("d", "x"),
        ]
    )
    facets = discover_facets(catalog)
    level2 = facets["category_2"]
    assert level2.label == "Category (level 2)"
    assert {value.key for value in level2.values} == {"Office > Envelopes", "Shipping > Envelopes"}
    assert {value.label for value in level2.values} == {"Envelopes"}
    assert level2.codes.tolist()[3] == -1
    assert level2.value_of(0).key == "Office > Envelopes" and level2.value_of(3) is None
    assert level2.coverage == pytest.approx(0.75)
    assert facets["category_3"].values[0].key == "Office > Envelopes > Booklet"
    assert not facets["category_3"].informative
    assert [facet.level for facet in facets.category_levels()] == [1, 2, 3]


def test_an_unbranded_item_whose_title_opens_with_a_known_brand_has_that_brand_as_its_value():
    catalog = Catalog(
        [
            Item("a", "HP 78A Toner", brand="HP"),
            Item("b", "hp LaserJet Printer"),
            Item("c", "Toner for HP printers"),
            Item("d", "Post-it Notes", brand="Post-it"),
            Item("e", "Post-it Super Sticky Notes"),
            Item("f", "Acme Stapler"),
        ]
    )
    brand = discover_facets(catalog)["brand"]
    assert [(value.key, value.label, value.count) for value in brand.values] == [
        ("hp", "HP", 2),
        ("postit", "Post-it", 2),
    ]
    assert brand.codes.tolist() == [0, 0, -1, 1, 1, -1]


def test_brand_is_matched_on_its_key_and_shown_in_the_most_common_form():
    brands = ["3M", "3m", " 3-M ", "3M", "Avery", ""]
    catalog = Catalog([Item(str(n), "x", brand=brand) for n, brand in enumerate(brands)])
    brand = discover_facets(catalog)["brand"]
    assert [(value.key, value.label, value.count) for value in brand.values] == [
        ("3m", "3M", 4),
        ("avery", "Avery", 1),
    ]
    assert brand.codes.tolist() == [0, 0, 0, 0, 1, -1]
    assert brand.mask("3m").tolist() == [True] * 4 + [False] * 2
    assert not brand.mask("unknown").any()
    assert brand.code("unknown") == -1


def test_codes_are_read_only():
    facets = discover_facets(Catalog([Item("a", "x", brand="A"), Item("b", "x", brand="B")]))
    with pytest.raises(ValueError):
        facets["brand"].codes[0] = 1


def test_price_bands_are_quantile_bands_with_readable_bounds_in_price_order():
    rng = np.random.default_rng(3)
    amounts = np.round(rng.lognormal(3, 1, size=400), 2)
    items = [Item(str(n), "x", price=Price(float(amount), "USD")) for n, amount in enumerate(amounts)]
    items.append(Item("unpriced", "x"))
    band = discover_facets(Catalog(items))["price_band"]
    assert band.kind is FacetKind.PRICE_BAND
    assert 4 <= len(band.values) <= 5
    assert band.values[0].label.startswith("Under $") and band.values[-1].label.endswith("and up")
    assert band.codes[-1] == -1 and (band.codes[:-1] >= 0).all()
    assert sum(value.count for value in band.values) == 400
    # Quantile bands hold similar numbers of items.
    assert min(value.count for value in band.values) > 400 / len(band.values) / 2
    # Bands are in price order: every item of a band is cheaper than every item of the next.
    for code in range(len(band.values) - 1):
        assert amounts[band.codes[:-1] == code].max() < amounts[band.codes[:-1] == code + 1].min()


def test_no_price_facet_without_enough_prices():
    items = [Item(str(n), "x") for n in range(100)]
    assert "price_band" not in discover_facets(Catalog(items))
    items[0] = Item("0", "x", price=Price(3.0, "USD"))
    items[1] = Item("1", "x", price=Price(9.0, "USD"))
    assert "price_band" not in discover_facets(Catalog(items))


def test_attribute_facets_need_coverage_and_at_least_two_values_and_are_not_identifiers():
    items = []
    for n in range(100):
        attributes = [("Color", ["red", "Blue", "blue"][n % 3]), ("SKU", f"sku-{n}")]
        if n < 3:
            attributes.append(("rare", ["x", "y", "z"][n]))
        attributes.append(("material", "steel"))
        items.append(Item(str(n), "x", attributes=tuple(attributes)))
    facets = discover_facets(Catalog(items))
    assert [facet.name for facet in facets.attributes()] == ["attr:color"]
    color = facets["attr:color"]
    assert color.label == "Color"
    assert [(value.key, value.label, value.count) for value in color.values] == [
        ("blue", "Blue", 66),
        ("red", "red", 34),
    ]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["A", "B", "C"]), max_size=3),
            st.sampled_from(["", "Acme", "acme", "Zed"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_codes_agree_with_counts_on_any_catalog(rows):
    catalog = Catalog(
        [Item(str(n), "x", brand=brand, categories=tuple(path)) for n, (path, brand) in enumerate(rows)]
    )
    facets = discover_facets(catalog)
    for facet in facets:
        assert len(facet.codes) == len(catalog)
        assert facet.codes.min(initial=-1) >= -1 and facet.codes.max(initial=-1) < len(facet.values)
        assert [value.count for value in facet.values] == [
            int((facet.codes == c).sum()) for c in range(len(facet.values))
        ]
        assert facet.coverage == pytest.approx(np.mean(facet.codes >= 0))


def test_real_catalog_facets_are_discovered_fast(office_catalog):
    started = time.perf_counter()
    facets = discover_facets(office_catalog)
    assert time.perf_counter() - started < 1.0
    assert facets.names[:2] == ("category_1", "category_2") and "brand" in facets
    assert "price_band" not in facets
    level1 = {value.label for value in facets["category_1"].values}
    assert {"Office & School Supplies", "Office Electronics"} <= level1
    # 1,935 of the 2,417 items carry a brand (0.80); 353 more open their title with one of those brands.
    assert facets["brand"].coverage == pytest.approx(2288 / 2417)
    assert all(facet.informative for facet in facets)
