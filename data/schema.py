"""The standard records of the project: a catalog item and an interaction.

Field-by-field rules live in ``docs/formats.md``; the loaders in :mod:`data.load` turn files into these records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from data.normalize import brand_key


@dataclass(frozen=True, slots=True)
class Price:
    """A non-negative amount in an ISO 4217 currency (``"USD"``)."""

    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class Item:
    """One product of the catalog, already cleaned (see :mod:`data.normalize`).

    Attributes:
        item_id: Unique, non-empty identifier.
        title: Display title, non-empty.
        description: Seller text, ``""`` when missing.
        brand: Display form of the brand, ``""`` when missing; match on :attr:`brand_key`.
        categories: The category path, top level first, ``()`` when missing.
        price: ``None`` when the catalog has no price for the item.
        attributes: Extra key/value facts (``(("color", "black"),)``), keys unique.
        image_url: ``""`` when missing.
    """

    item_id: str
    title: str
    description: str = ""
    brand: str = ""
    categories: tuple[str, ...] = ()
    price: Price | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    image_url: str = ""

    @property
    def brand_key(self) -> str:
        return brand_key(self.brand)


class Event(StrEnum):
    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"
    REVIEW = "review"
    RATING = "rating"


@dataclass(frozen=True, slots=True)
class Interaction:
    """One event of one shopper on one item.

    ``timestamp`` (seconds since the epoch) or ``order`` (a per-user sequence number) orders a shopper's history;
    without either, file order is kept.
    """

    user_id: str
    item_id: str
    timestamp: float | None = None
    order: int | None = None
    event: Event | None = None
    value: float | None = None


@dataclass(slots=True)
class Catalog:
    """The items of a store, in file order, with an id -> position index."""

    items: list[Item]
    positions: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.positions = {item.item_id: i for i, item in enumerate(self.items)}
        if len(self.positions) != len(self.items):
            raise ValueError("Catalog item ids must be unique; load catalogs with data.load.load_catalog")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.positions

    def __getitem__(self, item_id: str) -> Item:
        return self.items[self.positions[item_id]]

    def position(self, item_id: str) -> int:
        return self.positions[item_id]


@dataclass(slots=True)
class Interactions:
    """Every interaction of a data set, in file order; :meth:`histories` gives each shopper's ordered items."""

    events: list[Interaction]

    def __len__(self) -> int:
        return len(self.events)

    def histories(self) -> dict[str, list[str]]:
        """Each shopper's item ids, oldest first (by timestamp, else order, else file order).

        Users come in the order they are first seen."""
        per_user: dict[str, list[tuple[float, int, str]]] = {}
        for position, event in enumerate(self.events):
            key = event.timestamp if event.timestamp is not None else event.order
            per_user.setdefault(event.user_id, []).append(
                (float(key) if key is not None else 0.0, position, event.item_id)
            )
        return {user: [item for _, _, item in sorted(rows)] for user, rows in per_user.items()}

    def users(self) -> Sequence[str]:
        return list(dict.fromkeys(event.user_id for event in self.events))
