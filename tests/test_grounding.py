"""The fact checker: a corpus of real model outputs judged by hand, each rule on its own, and properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.describe import template_description
from assistant.grounding import (
    Finding,
    FindingKind,
    SourceFacts,
    catalog_brands,
    check_grounded,
    is_placeholder_brand,
)
from data.schema import Catalog, Item

CORPUS = Path(__file__).parent / "data" / "grounding_corpus.jsonl"
EXAMPLES = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]

PEN = SourceFacts(
    title="BIC Round Stic Ball Pen, Fine Point, 0.8mm, Black, 12 Pens (GSF11-Blk)",
    brand="BIC",
    categories=(
        "Office & School Supplies",
        "Writing & Correction Supplies",
        "Pens & Refills",
        "Ballpoint Pens",
    ),
    known_brands={"BIC", "Pilot", "Paper Mate", "Generic"},
)


def kinds(text: str, facts: SourceFacts) -> list[str]:
    return [finding.kind.value for finding in check_grounded(text, facts)]


@pytest.fixture(scope="module")
def office_brands(office) -> frozenset[str]:
    catalog, _ = office
    return catalog_brands(catalog)


def test_corpus_is_large_and_mostly_real():
    assert len(EXAMPLES) >= 30
    real = [example for example in EXAMPLES if example["origin"] != "hand-written"]
    assert len(real) >= 30
    assert {example["verdict"] for example in EXAMPLES} == {"accept", "reject"}


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[f"{i}-{e['origin']}-{e['item_id']}" for i, e in enumerate(EXAMPLES)]
)
def test_corpus(example, office_brands):
    item = Item(
        example["item_id"],
        example["title"],
        description=example.get("description", ""),
        brand=example["brand"],
        categories=tuple(example["categories"]),
    )
    found = sorted(
        {
            finding.kind.value
            for finding in check_grounded(example["text"], SourceFacts.from_item(item, office_brands))
        }
    )
    if example.get("note", "").startswith("known miss"):
        # Every word of these wrong texts is in the source: a lexical checker cannot see the error. The test
        # fails when the checker starts catching them, so that the corpus is updated.
        assert example["verdict"] == "reject" and found == []
        return
    assert found == example["kinds"]
    assert (found == []) == (example["verdict"] == "accept")


def test_findings_are_typed_in_reading_order_and_say_what_is_missing():
    found = check_grounded("The best BIC pens, 24 per box, waterproof.", PEN)
    assert found == [
        Finding(FindingKind.SUPERLATIVE, "best"),
        Finding(FindingKind.NUMBER, "24"),
        Finding(FindingKind.PROPERTY, "waterproof"),
    ]
    assert str(found[1]) == "number: '24' is not in the source"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A pack of 12 black BIC ballpoint pens with a fine 0.8 mm point.", []),
        ("Twelve BIC pens.", []),
        ("BIC's Round Stic pens, GSF11-BLK.", []),
        ("BIC Round Stic pens GSF11.", []),
        ("BIC pens, model GSF12.", ["model_code"]),
        ("BIC pens from Pilot.", ["brand"]),
        ("Black pens, a generic brand.", ["new_word"]),  # a placeholder brand is no brand
        ("BIC pens with a 0.8 inch point.", ["number"]),
        ("BIC pens, 77 of them.", ["number"]),
        ("BIC pens with a lifetime guarantee.", ["warranty", "warranty"]),
        ("BIC pens for $5.", ["price", "number"]),
        ("Non-toxic BIC pens.", ["certification"]),
        ("BIC pens with blue ink.", ["color", "new_word"]),
        ("BIC pens for artists.", ["audience"]),
        ("Sleek BIC pens.", ["marketing"]),
        ("BIC pens with a Pentagon clip.", ["proper_noun", "new_word"]),
        ("BIC pens with a cap made of rubber.", ["new_word", "material"]),
        ("BIC pens at https://example.com.", ["link"]),
    ],
)
def test_each_rule(text, expected):
    assert kinds(text, PEN) == expected


CUP = SourceFacts(title="Rolodex Jumbo Pencil Cup, Black, Holds 30 Pencils, 2 Pack (62557)", brand="Rolodex")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "A black Rolodex pencil cup that holds 62557 pencils.",
            [Finding(FindingKind.NUMBER, "62557 pencils")],
        ),
        ("A black Rolodex pencil cup (62557) that holds 30 pencils.", []),
        ("The Rolodex 62557 pencil cup, 2 cups.", []),  # the item number names the item
        ("A Rolodex pencil cup with a 62557 model number.", []),
    ],
)
def test_an_item_number_used_as_a_count_is_found(text, expected):
    assert check_grounded(text, CUP) == expected


def test_capitalised_first_word_of_a_sentence_is_not_a_name():
    assert kinds("Round Stic pens. Fine point, black.", PEN) == []
    assert kinds("Round Stic pens. Ideal for school.", PEN) == ["marketing"]


def test_a_claim_word_the_source_has_is_supported():
    facts = SourceFacts(title="Rubbermaid Heavy-Duty Waterproof Storage Box, Best Value")
    assert kinds("A waterproof, heavy duty storage box, the best value.", facts) == []


def test_extra_facts_support_a_text():
    assert kinds("The shopper asked for 24 pens.", PEN) == ["new_word", "new_word", "number"]
    extra = SourceFacts(**{**PEN.__dict__, "extra": ("The shopper asked for 24 pens.",)})
    assert kinds("The shopper asked for 24 pens.", extra) == []


def test_placeholder_brands_name_no_brand():
    assert [is_placeholder_brand(brand) for brand in ("", "Generic", "UNKNOWN", "Non-OEM", "3M")] == [
        True,
        True,
        True,
        True,
        False,
    ]
    catalog = Catalog([Item("1", "Pen", brand="BIC"), Item("2", "Pad", brand="Generic"), Item("3", "Ink")])
    assert catalog_brands(catalog) == frozenset({"BIC"})


def test_every_template_and_every_seller_text_is_grounded_in_its_own_item(office, office_brands):
    """The checker accepts the source itself: no false finding on the real catalog's own words."""
    catalog, _ = office
    for item in catalog.items[::4]:
        facts = SourceFacts.from_item(item, office_brands)
        assert check_grounded(template_description(item), facts) == [], item.item_id
        assert check_grounded(item.description, facts) == [], item.item_id


@settings(max_examples=60, deadline=None)
@given(number=st.integers(min_value=13, max_value=10**6))
def test_an_invented_number_is_always_found(number):
    text = f"A pack of 12 BIC pens and {number} refills."
    assert Finding(FindingKind.NUMBER, str(number)) in check_grounded(text, PEN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(PEN.title.replace(",", "").split()), min_size=1, max_size=12))
def test_words_of_the_title_alone_are_accepted(words):
    assert check_grounded(" ".join(words), PEN) == []
