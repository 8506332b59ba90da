"""The contract every ranking system keeps, as a test mixin (in the style of implicit's shared model tests).

A test class for a system subclasses :class:`RankingContract` and says how to build the system; the mixin's tests
then run against it: one finite score per catalog item, the same scores from two fits, a batch equal to single
calls, :meth:`ranking.system.RankingSystem.rank` keeping to every hard filter and never showing an item twice,
score parts in rank order, and feedback on items the catalog does not have taken without a crash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.facets import discover_facets
from data.schema import Catalog, Interaction, Interactions, Item
from ranking.system import RankingSystem, TrainingData
from retrieval.profile import PRICE, Constraint, Op, Profile

INK = ("Office Products", "Ink & Toner")
CONTRACT_CATALOG = Catalog(
    [
        Item("hp61", "HP 61 Black Ink Cartridge", brand="HP", categories=(*INK, "Ink")),
        Item("hp62", "HP 62 Tri-Color Ink Cartridge", brand="HP", categories=(*INK, "Ink")),
        Item("canon", "Canon PG-245 Black Ink Cartridge", brand="Canon", categories=(*INK, "Ink")),
        Item("epson", "Epson 212 Black Ink Cartridge", brand="Epson", categories=(*INK, "Ink")),
        Item("toner", "Brother TN-660 High Yield Toner", brand="Brother", categories=(*INK, "Toner")),
        Item("toner2", "HP 26A Black Toner Cartridge", brand="HP", categories=(*INK, "Toner")),
        Item("paper", "Copy Paper, Letter, 500 Sheets", brand="HP", categories=("Office Products", "Paper")),
        Item("pads", "Yellow Legal Pads, 12 Pack", brand="Ampad", categories=("Office Products", "Paper")),
        Item(
            "stapler", "Swingline Desktop Stapler", brand="Swingline", categories=("Office Products", "Desk")
        ),
        Item("tape", "Scotch Magic Tape Dispenser", brand="Scotch", categories=("Office Products", "Desk")),
        Item("lamp", "LED Desk Lamp with USB Port", brand="Lumi", categories=("Office Products", "Desk")),
        Item("bare", "Desk Organizer"),
    ]
)
# Shoppers who buy within one kind of thing: ink with ink, paper with paper, desk things together.
_BASKETS = [
    ("hp61", "hp62", "toner2"),
    ("canon", "epson", "hp61"),
    ("toner", "toner2"),
    ("paper", "pads"),
    ("pads", "paper", "stapler"),
    ("stapler", "tape", "lamp"),
    ("tape", "lamp"),
    ("hp62", "hp61"),
]
CONTRACT_EVENTS = Interactions(
    [
        Interaction(f"u{n}-{copy}", item, order=order)
        for copy in range(3)
        for n, basket in enumerate(_BASKETS)
        for order, item in enumerate(basket)
    ]
)

PROFILES = [
    Profile(),
    Profile(need="black ink cartridge", session_id="s1"),
    Profile.from_answers({"category_2": "Office Products > Ink & Toner"}, need="black ink", answered=2),
    Profile(need="desk", liked=("stapler",), session_id="s2"),
    Profile(need="ink", constraints=(Constraint("brand", Op.NE, "hp"),), shown=frozenset({"canon"})),
]


def contract_training() -> TrainingData:
    return TrainingData.build(CONTRACT_CATALOG, discover_facets(CONTRACT_CATALOG), CONTRACT_EVENTS, seed=3)


class RankingContract:
    """Mixin: subclasses define :meth:`make_system` (an unfitted system whose artifacts go under ``folder``)."""

    def make_system(self, folder: Path) -> RankingSystem:
        raise NotImplementedError

    @pytest.fixture
    def system(self, tmp_path: Path) -> RankingSystem:
        system = self.make_system(tmp_path)
        system.fit(contract_training())
        return system

    def test_one_finite_score_per_catalog_item(self, system):
        for profile in PROFILES:
            scores = np.asarray(system.score(profile), dtype=float)
            assert scores.shape == (len(CONTRACT_CATALOG),)
            assert np.isfinite(scores).all()

    def test_the_same_data_gives_the_same_scores(self, system, tmp_path):
        again = self.make_system(tmp_path)
        again.fit(contract_training())
        for profile in PROFILES:
            np.testing.assert_allclose(system.score(profile), again.score(profile), rtol=1e-6, atol=1e-9)

    def test_a_batch_equals_single_calls(self, system):
        batch = system.score_batch(PROFILES)
        single = np.stack([system.score(profile) for profile in PROFILES])
        np.testing.assert_allclose(batch, single, rtol=1e-6, atol=1e-9)

    def test_rank_keeps_every_hard_filter_and_never_shows_an_item_twice(self, system):
        refused = Profile(
            need="ink cartridge",
            constraints=(
                Constraint("brand", Op.NE, "hp"),
                Constraint("category_2", Op.EQ, "Office Products > Ink & Toner"),
            ),
            shown=frozenset({"canon"}),
            disliked=("epson",),
        )
        ranked = system.rank(refused, k=10)
        ids = [r.item_id for r in ranked]
        assert ids == ["toner"]
        everything = system.rank(Profile(), k=100)
        assert sorted(r.item_id for r in everything) == sorted(item.item_id for item in CONTRACT_CATALOG)
        # Unpriced items cannot be promised under a price bound: nothing here has a price.
        assert system.rank(Profile(constraints=(Constraint(PRICE, Op.LT, 30.0),)), k=5) == []

    def test_rank_gives_score_parts_in_rank_order(self, system):
        ranked = system.rank(PROFILES[1], k=5)
        assert len(ranked) == 5
        finals = [r.parts.final for r in ranked]
        assert finals == sorted(finals, reverse=True)
        assert all(np.isfinite(final) for final in finals)

    def test_feedback_on_unknown_items_is_taken_without_a_crash(self, system):
        odd = Profile(need="ink", liked=("no-such-item",), disliked=("nor-this",))
        assert np.isfinite(np.asarray(system.score(odd), dtype=float)).all()
        assert len(system.rank(odd, k=3)) == 3
