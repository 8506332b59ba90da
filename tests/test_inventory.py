from data.inventory import Distribution, build_inventory, format_inventory
from data.schema import Catalog, Interaction, Interactions, Item, Price


def small_catalog() -> Catalog:
    return Catalog(
        [
            Item("a", "Blue Pen", "Smooth ink", "Pilot", ("Office", "Pens")),
            Item("b", "blue pen", "", "PILOT", ("Office", "Pens"), Price(2.0, "USD")),
            Item("c", "Copy Paper", "", "", ("Office", "Paper", "Copy Paper")),
            Item("d", "Stapler", "Heavy duty", "Swingline", ()),
        ]
    )


def test_catalog_health_on_a_hand_built_catalog():
    inventory = build_inventory(small_catalog())
    assert inventory.items == 4
    assert inventory.missing["description"] == 0.5
    assert inventory.missing["brand"] == 0.25
    assert inventory.missing["price"] == 0.75
    assert inventory.missing["categories"] == 0.25
    assert inventory.category_depths == {0: 1, 2: 2, 3: 1}
    assert inventory.category_nodes_per_level == [1, 2, 1]
    assert inventory.top_categories == [("Office", 3)]
    assert inventory.brands == 2
    assert inventory.top_brands == [("Pilot", 2), ("Swingline", 1)]
    assert inventory.brands_from_titles == 0
    assert inventory.duplicate_titles == 1
    assert inventory.duplicate_title_examples == [("Blue Pen", 2)]
    assert inventory.per_user is None


def test_unbranded_items_whose_title_opens_with_a_known_brand_are_counted():
    catalog = Catalog(
        [*small_catalog(), Item("e", "Swingline Mini Stapler"), Item("f", "Stapler for Swingline")]
    )
    inventory = build_inventory(catalog)
    assert inventory.brands_from_titles == 1
    assert "unbranded items whose title opens with a known brand: 1" in format_inventory(inventory)


def test_interaction_health():
    events = [Interaction("u1", "a"), Interaction("u1", "b"), Interaction("u2", "a"), Interaction("u3", "a")]
    inventory = build_inventory(small_catalog(), Interactions(events))
    assert inventory.users == 3
    assert inventory.interactions == 4
    assert inventory.per_user == Distribution(3, 1, 1, 4 / 3, 2, 2)
    assert inventory.per_item == Distribution(4, 0, 0.5, 1.0, 3, 3)
    assert inventory.cold_items == 2
    assert inventory.events == {"unspecified": 4}
    text = format_inventory(inventory)
    assert "Cold items            2 (50.0%) with no interactions" in text
    assert inventory.to_json()["per_user"]["maximum"] == 2


def test_empty_distribution():
    assert Distribution.of([]) == Distribution(0, 0, 0.0, 0.0, 0.0, 0)
