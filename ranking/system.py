"""The one interface every ranking system implements, and the registry the benchmark finds them in.

A system learns from :class:`TrainingData` once, then scores the whole catalog for each :class:`Request`
(what a cold-start shopper has said so far). Adding a system to the benchmark is writing one class:

Example:
    >>> import numpy as np
    >>> @register
    ... class Shortest(RankingSystem):
    ...     name = "doc_shortest"
    ...     description = "Short titles first (an example, not a real system)."
    ...     def fit(self, data: TrainingData) -> None:
    ...         self.lengths = np.array([len(item.title) for item in data.catalog], dtype=float)
    ...     def score(self, request: Request) -> np.ndarray:
    ...         return -self.lengths
    >>> registered_systems()["doc_shortest"] is Shortest
    True
    >>> unregister("doc_shortest")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeVar

import numpy as np
from scipy import sparse

from data.facets import Facets
from data.schema import Catalog, Interactions
from data.splits import Split


@dataclass(frozen=True)
class Request:
    """What the shopper has said so far.

    Attributes:
        facets: Facet name -> value key (:attr:`data.facets.FacetValue.key`), only answered facets that
            carry a value ("no preference" answers are left out).
        need: A free-text need statement, ``""`` when not given.
        answered: Questions answered so far, "no preference" answers included.
        session_id: Opaque id of the conversation; real systems ignore it (a test's planted oracle uses it).
        exclude: Item ids already shown.

    Example:
        >>> request = Request(facets={"category_1": "Office Electronics"}, need="cordless phone", answered=3)
        >>> request.facets["category_1"], request.answered, request.exclude
        ('Office Electronics', 3, frozenset())
    """

    facets: Mapping[str, str] = field(default_factory=dict)
    need: str = ""
    answered: int = 0
    session_id: str = ""
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Everything a system may learn from.

    Attributes:
        catalog: The whole catalog; scores are in its order.
        facets: The catalog's facets.
        interactions: Training interactions only (train users, new arrivals' interactions removed).
        user_ids: The training users, row order of :meth:`matrix`.
        user_index: Per training interaction, its row in ``user_ids``.
        item_index: Per training interaction, its item's catalog position.
        seed: The evaluation seed, for systems that draw random numbers while fitting.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Interaction, Item
        >>> catalog = Catalog([Item("a", "Pen"), Item("b", "Ink")])
        >>> events = Interactions([Interaction("u", "b")])
        >>> data = TrainingData.build(catalog, discover_facets(catalog), events)
        >>> data.item_counts().tolist(), data.matrix().toarray().tolist()
        ([0, 1], [[0.0, 1.0]])
    """

    catalog: Catalog
    facets: Facets
    interactions: Interactions
    user_ids: tuple[str, ...]
    user_index: np.ndarray
    item_index: np.ndarray
    seed: int = 0

    @classmethod
    def build(
        cls, catalog: Catalog, facets: Facets, interactions: Interactions, seed: int = 0
    ) -> TrainingData:
        """Index the interactions (events on items outside the catalog are dropped)."""
        events = [event for event in interactions.events if event.item_id in catalog]
        user_ids = tuple(dict.fromkeys(event.user_id for event in events))
        rows = {user: row for row, user in enumerate(user_ids)}
        user_index = np.fromiter((rows[e.user_id] for e in events), dtype=np.int64, count=len(events))
        item_index = np.fromiter(
            (catalog.position(e.item_id) for e in events), dtype=np.int64, count=len(events)
        )
        return cls(catalog, facets, Interactions(events), user_ids, user_index, item_index, seed)

    @classmethod
    def from_split(cls, catalog: Catalog, facets: Facets, split: Split) -> TrainingData:
        return cls.build(catalog, facets, split.train, split.seed)

    def item_counts(self) -> np.ndarray:
        """Training interactions per item, in catalog order."""
        return np.bincount(self.item_index, minlength=len(self.catalog))

    def matrix(self) -> sparse.csr_matrix:
        """Users x items, 1.0 where the user interacted with the item (repeats count once)."""
        matrix = sparse.csr_matrix(
            (np.ones(len(self.item_index)), (self.user_index, self.item_index)),
            shape=(len(self.user_ids), len(self.catalog)),
        )
        matrix.data[:] = 1.0
        return matrix


class RankingSystem(ABC):
    """A ranking system: fit once on training data, then score the whole catalog per request.

    Registered systems are built with no arguments (``cls()``) by the benchmark.

    Example:
        >>> class Constant(RankingSystem):
        ...     name = "constant"
        ...     description = "Every item scores the same."
        ...     def fit(self, data: TrainingData) -> None:
        ...         self.n = len(data.catalog)
        ...     def score(self, request: Request) -> np.ndarray:
        ...         return np.zeros(self.n)
    """

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def fit(self, data: TrainingData) -> None:
        """Learn from the training data; called once before any scoring."""

    @abstractmethod
    def score(self, request: Request) -> np.ndarray:
        """One float per catalog item, in catalog order; higher is better, ties are broken by the caller."""

    def score_batch(self, requests: Sequence[Request]) -> np.ndarray:
        """Scores for several requests, one row each; override when a system can batch."""
        return np.stack([np.asarray(self.score(request), dtype=float) for request in requests])


_REGISTRY: dict[str, type[RankingSystem]] = {}
SystemClass = TypeVar("SystemClass", bound=type[RankingSystem])


def register(cls: SystemClass) -> SystemClass:
    """Class decorator: make a system available to the benchmark under ``cls.name``.

    Raises:
        ValueError: No name, or the name is taken by another class.
    """
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty class attribute 'name' to be registered")
    known = _REGISTRY.get(name)
    # Reloading a module re-runs its decorators with a new class object of the same origin.
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"system name '{name}' is already registered by {known.__module__}.{known.__qualname__}"
        )
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a registered system (for tests and examples that register a throwaway one)."""
    _REGISTRY.pop(name, None)


def registered_systems() -> Mapping[str, type[RankingSystem]]:
    """The registered system classes by name, in registration order (a read-only view)."""
    return MappingProxyType(dict(_REGISTRY))
