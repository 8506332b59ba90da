"""The cross-encoder's training users never hand it an evaluation episode's query and answer."""

from __future__ import annotations

from assistant.simulator import episodes_from_split
from assistant.train_ranking import _train_episodes, held_out_targets
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import EvalSettings, RankingSettings, Settings
from data.splits import make_split


def world(users: int = 40, items: int = 12):
    catalog = Catalog([Item(f"i{n}", f"item {n}") for n in range(items)])
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
