"""Seeded user splits and new arrivals."""

from __future__ import annotations

import random

import pytest

from data.facets import discover_facets
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import EvalSettings
from data.splits import make_split, stable_seed
from ranking.system import TrainingData


def _store(n_users: int = 200, n_items: int = 50) -> tuple[Catalog, Interactions]:
    rng = random.Random(5)
    catalog = Catalog([Item(f"i{n}", f"Item {n}") for n in range(n_items)])
    events = [
        Interaction(f"u{u}", f"i{rng.randrange(n_items)}", order=n)
        for u in range(n_users)
        for n in range(rng.randint(1, 6))
    ]
    return catalog, Interactions(events)


def test_users_are_split_by_the_shares_without_overlap():
    catalog, interactions = _store()
    split = make_split(catalog, interactions, EvalSettings(validation_share=0.1, test_share=0.2))
    train, validation, test = set(split.train_users), set(split.validation_users), set(split.test_users)
    assert (len(train), len(validation), len(test)) == (140, 20, 40)
    assert not train & validation and not train & test and not validation & test
    assert train | validation | test == set(interactions.users())


def test_training_data_holds_train_users_only_and_no_new_arrival():
    catalog, interactions = _store()
    split = make_split(catalog, interactions, EvalSettings(new_item_share=0.2))
    assert len(split.new_items) == 10
    assert {event.user_id for event in split.train.events} <= set(split.train_users)
    assert not {event.item_id for event in split.train.events} & split.new_items
    expected = [
        event
        for event in interactions.events
        if event.user_id in set(split.train_users) and event.item_id not in split.new_items
    ]
    assert split.train.events == expected
    data = TrainingData.from_split(catalog, discover_facets(catalog), split)
    assert set(data.user_ids) <= set(split.train_users)
    assert all(data.item_counts()[catalog.position(item)] == 0 for item in split.new_items)


def test_held_out_histories_keep_new_arrivals_and_are_complete():
    catalog, interactions = _store()
    split = make_split(catalog, interactions, EvalSettings(new_item_share=0.3))
    everything = interactions.histories()
    assert set(split.histories) == set(split.test_users) | set(split.validation_users)
    for user, history in split.histories.items():
        assert list(history) == everything[user]
    assert any(item in split.new_items for user in split.test_users for item in split.histories[user])


def test_same_seed_same_split_other_seed_other_split():
    catalog, interactions = _store()
    first = make_split(catalog, interactions, EvalSettings(seed=1))
    again = make_split(catalog, interactions, EvalSettings(seed=1))
    other = make_split(catalog, interactions, EvalSettings(seed=2))
    assert (first.test_users, first.new_items, first.train.events) == (
        again.test_users,
        again.new_items,
        again.train.events,
    )
    assert first.test_users != other.test_users
    assert first.new_items != other.new_items


def test_split_does_not_depend_on_file_order():
    catalog, interactions = _store()
    shuffled_events = list(interactions.events)
    random.Random(1).shuffle(shuffled_events)
    shuffled_catalog = Catalog(list(reversed(catalog.items)))
    first = make_split(catalog, interactions, EvalSettings())
    second = make_split(shuffled_catalog, Interactions(shuffled_events), EvalSettings())
    assert first.test_users == second.test_users and first.new_items == second.new_items


def test_interactions_outside_the_catalog_are_ignored():
    catalog, interactions = _store()
    events = [*interactions.events, Interaction("ghost", "not-an-item")]
    split = make_split(catalog, Interactions(events), EvalSettings())
    assert "ghost" not in {*split.train_users, *split.validation_users, *split.test_users}


@pytest.mark.parametrize(
    "shares",
    [
        {"test_share": -0.1},
        {"new_item_share": 1.5},
        {"validation_share": 0.5, "test_share": 0.5},
    ],
)
def test_bad_shares_are_refused(shares):
    catalog, interactions = _store()
    with pytest.raises(ValueError):
        make_split(catalog, interactions, EvalSettings(**shares))


def test_stable_seed_is_stable_and_distinguishes_its_parts():
    assert stable_seed(13, "a") == stable_seed(13, "a")
    assert len({stable_seed(13, "a"), stable_seed(13, "b"), stable_seed(14, "a"), stable_seed("13a")}) == 4
    # A fixed value: the seed must not change between processes or Python versions.
    assert stable_seed(13, "tie", "u1") == 12270345760368286449


def test_real_data_split_sizes(office):
    catalog, interactions = office
    split = make_split(catalog, interactions, EvalSettings())
    assert (len(split.train_users), len(split.validation_users), len(split.test_users)) == (3925, 490, 490)
    assert len(split.new_items) == 242
    assert 0.6 * len(interactions) < len(split.train) < 0.8 * len(interactions)
