"""Seeded train / validation / test splits of shoppers, and "new arrivals" among the items.

Shoppers, not events, are split: a test shopper's history is never seen by anything a model learns from,
which is what a cold-start shopper is. A seeded share of items becomes new arrivals: every interaction with
them is removed from the training data (they stay in validation and test histories, so the benchmark can tell
whether a system still reaches them).

Both draws depend only on the seed and the sets of user and item ids (sorted first), not on file order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from data.schema import Catalog, Interactions
from data.settings import EvalSettings


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from any values' text, the same in every process (unlike the salted built-in ``hash``).

    Example:
        >>> stable_seed(13, "user-1") == stable_seed(13, "user-1") != stable_seed(14, "user-1")
        True
    """
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True, eq=False)
class Split:
    """Who trains, who validates, who is tested, and which items are new arrivals.

    Attributes:
        seed: The seed that drew it.
        train_users: Users whose interactions models learn from, sorted.
        validation_users: Users held out for tuning, sorted.
        test_users: Users held out for the benchmark, sorted.
        new_items: Items whose every interaction was removed from :attr:`train`.
        train: The training interactions: train users only, new arrivals' interactions removed, file
            order kept.
        histories: The full ordered history (catalog items only, new arrivals included) of every validation
            and test user.

    Example:
        >>> from data.schema import Interaction, Item
        >>> catalog = Catalog([Item(f"i{n}", "x") for n in range(10)])
        >>> events = [Interaction(f"u{u}", f"i{(u + n) % 10}", order=n) for u in range(20) for n in range(3)]
        >>> split = make_split(catalog, Interactions(events), EvalSettings(seed=1))
        >>> len(split.train_users), len(split.validation_users), len(split.test_users), len(split.new_items)
        (16, 2, 2, 1)
        >>> any(event.user_id in split.test_users for event in split.train.events)
        False
    """

    seed: int
    train_users: tuple[str, ...]
    validation_users: tuple[str, ...]
    test_users: tuple[str, ...]
    new_items: frozenset[str]
    train: Interactions
    histories: Mapping[str, tuple[str, ...]]


def make_split(catalog: Catalog, interactions: Interactions, settings: EvalSettings) -> Split:
    """Split shoppers and draw new arrivals with ``settings.seed``.

    Interactions with items missing from the catalog are ignored. Shares are rounded to whole users and items.

    Raises:
        ValueError: Shares outside [0, 1], or validation and test shares that leave no training user.
    """
    shares = (settings.validation_share, settings.test_share, settings.new_item_share)
    if any(not 0 <= share <= 1 for share in shares):
        raise ValueError(f"split shares must lie in [0, 1], got {shares}")
    if settings.validation_share + settings.test_share >= 1:
        raise ValueError("validation_share + test_share must be below 1 so that some users train")
    events = [event for event in interactions.events if event.item_id in catalog]
    users = sorted({event.user_id for event in events})
    user_rng, item_rng = (
        np.random.default_rng(stable_seed(settings.seed, "split", part)) for part in ("users", "items")
    )
    shuffled = [users[i] for i in user_rng.permutation(len(users))]
    n_test = round(settings.test_share * len(users))
    n_validation = round(settings.validation_share * len(users))
    test = tuple(sorted(shuffled[:n_test]))
    validation = tuple(sorted(shuffled[n_test : n_test + n_validation]))
    train_users = tuple(sorted(shuffled[n_test + n_validation :]))

    item_ids = sorted(item.item_id for item in catalog)
    n_new = round(settings.new_item_share * len(item_ids))
    new_items = frozenset(item_ids[i] for i in item_rng.permutation(len(item_ids))[:n_new])

    training = set(train_users)
    train = Interactions([e for e in events if e.user_id in training and e.item_id not in new_items])
    held_out = set(test) | set(validation)
    histories = Interactions([e for e in events if e.user_id in held_out]).histories()
    return Split(
        seed=settings.seed,
        train_users=train_users,
        validation_users=validation,
        test_users=test,
        new_items=new_items,
        train=train,
        histories={user: tuple(history) for user, history in histories.items()},
    )
