"""The cross-encoder's training users never hand it an evaluation episode's query and answer."""

from __future__ import annotations

from collections import Counter

from assistant.simulator import Order, ShopperWorld, Vocabulary, episodes_from_split
from assistant.train_ranking import _profiles_for_training, _train_episodes, held_out_targets
from data.facets import discover_facets
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import EvalSettings, RankingSettings, Settings
from data.splits import make_split


def toy_catalog(items: int = 12) -> Catalog:
    kinds = ("Desk Lamps", "Tote Bags", "Wall Clocks")
    return Catalog(
        [
            Item(f"i{n}", f"{kinds[n % 3]} {n}", brand=f"Maker {n % 2}", categories=("Home", kinds[n % 3]))
            for n in range(items)
        ]
    )


def world(users: int = 40, items: int = 12):
    catalog = toy_catalog(items)
    events = Interactions(
        [
            Interaction(f"u{u:02d}", f"i{(u + step) % items}", order=step)
            for u in range(users)
            for step in range(1 + u % 4)
        ]
    )
    settings = Settings(
        eval=EvalSettings(validation_share=0.2, test_share=0.2),
        ranking=RankingSettings(reranker_train_users=1000),
    )
    return settings, make_split(catalog, events, settings.eval)


def test_held_out_targets_are_exactly_the_validation_and_test_targets():
    settings, split = world()
    expected = {
        e.target for v in (True, False) for e in episodes_from_split(split, settings.eval, validation=v)
    }
    assert held_out_targets(split, settings) == expected
    assert expected  # the fixture has evaluation episodes to hold out


def test_training_positives_skip_held_out_items_and_fall_back_to_earlier_ones():
    settings, split = world()
    held_out = held_out_targets(split, settings)
    episodes = _train_episodes(split, settings, held_out)
    histories = split.train.histories()
    assert episodes and not {e.target for e in episodes} & held_out
    fell_back = 0
    for episode in episodes:
        history = histories[episode.user_id]
        allowed = [item for item in history if item not in held_out]
        assert episode.target == allowed[-1]
        assert episode.target not in episode.others and set(episode.others) <= set(history)
        fell_back += history[-1] != episode.target
    assert fell_back  # some user's last item was held out and an earlier one taken instead
    skipped = [u for u, h in histories.items() if h and all(item in held_out for item in h)]
    assert len(episodes) == len([u for u, h in histories.items() if h]) - len(skipped)


def test_each_training_episode_gives_one_literal_query_and_one_paraphrased_where_its_item_has_one():
    settings, split = world()
    episodes = _train_episodes(split, settings, held_out_targets(split, settings))
    catalog = toy_catalog()
    paraphrased = {
        episodes[0].target: "a thing to keep on the desk",
        episodes[-1].target: "what a bag is for",
    }
    shoppers = ShopperWorld.build(
        catalog, discover_facets(catalog), settings.eval, Order.NEED_FIRST, paraphrased
    )
    rows = _profiles_for_training(episodes, shoppers)
    per_episode = Counter(episode.episode_id for episode, _, _ in rows)
    with_paraphrase = [e for e in episodes if e.target in paraphrased]
    assert with_paraphrase
    for episode in episodes:
        assert per_episode[episode.episode_id] == (2 if episode.target in paraphrased else 1)
    vocabularies = Counter(vocabulary for _, _, vocabulary in rows)
    assert vocabularies[Vocabulary.PARAPHRASED] == len(with_paraphrase)
    assert vocabularies[Vocabulary.VAGUE] + vocabularies[Vocabulary.SPECIFIC] == len(episodes)
    needs = {profile.need for _, profile, vocabulary in rows if vocabulary is Vocabulary.PARAPHRASED}
    assert needs == {paraphrased[e.target] for e in with_paraphrase}
    assert _profiles_for_training(episodes, shoppers) == rows  # seeded: the same queries every run
