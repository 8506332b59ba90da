"""The one interface every ranking system implements, the registry the benchmark finds them in, and the factory
that builds them from the settings.

A system learns from :class:`TrainingData` once, then scores the whole catalog for each
:class:`retrieval.profile.Profile` (what a shopper has said so far); :meth:`RankingSystem.rank` gives the best
items with their :class:`ScoreParts`, so an agent console or an explanation can show why an item ranked. Trained
parts are saved and loaded by the systems that have them (the MF prior, the cross-encoder, the blend weights).
Every system is built by :func:`create_system` from the one settings object; none loads settings itself.

Adding a system to the benchmark is writing one class:

Example:
    >>> import numpy as np
    >>> from data.settings import Settings
    >>> @register
    ... class Shortest(RankingSystem):
    ...     name = "doc_shortest"
    ...     description = "Short titles first (an example, not a real system)."
    ...     def fit(self, data: TrainingData) -> None:
    ...         super().fit(data)
    ...         self.lengths = np.array([len(item.title) for item in data.catalog], dtype=float)
    ...     def score(self, profile: Profile) -> np.ndarray:
    ...         return -self.lengths
    >>> type(create_system("doc_shortest", Settings())) is Shortest
    True
    >>> unregister("doc_shortest")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, TypeVar

import numpy as np
from scipy import sparse

from data.facets import Facets
from data.schema import Catalog, Interactions
from data.settings import Settings
from data.splits import Split
from retrieval.filters import FilterIndex
from retrieval.profile import Profile, profile_filters


@dataclass(frozen=True)
class ScoreParts:
    """Why an item ranked where it did: each part as the system's blend used it, ``None`` when not used.

    Attributes:
        retrieval: The candidate generator's fused score, normalised over the candidates.
        cross_encoder: The cross-encoder's score, normalised over the candidates.
        prior: The MF prior's score, normalised over the candidates.
        final: The score the item was ranked by.

    Example:
        >>> ScoreParts(retrieval=0.4, final=0.4).cross_encoder is None
        True
    """

    retrieval: float | None = None
    cross_encoder: float | None = None
    prior: float | None = None
    final: float = 0.0


@dataclass(frozen=True)
class Ranked:
    """One item of a ranking: its id, catalog position and score parts."""

    item_id: str
    position: int
    parts: ScoreParts


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
    """A ranking system: fit once on training data, then score the whole catalog per profile.

    Systems are built by :func:`create_system` with the settings object, which they keep as
    :attr:`settings` (artifact paths, retrieval and ranking settings).

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Item
        >>> class Constant(RankingSystem):
        ...     name = "constant"
        ...     description = "Every item scores the same."
        ...     def fit(self, data: TrainingData) -> None:
        ...         super().fit(data)
        ...         self.n = len(data.catalog)
        ...     def score(self, profile: Profile) -> np.ndarray:
        ...         return np.zeros(self.n)
        >>> catalog = Catalog([Item("a", "Pen"), Item("b", "Ink")])
        >>> system = Constant(Settings())
        >>> system.fit(TrainingData.build(catalog, discover_facets(catalog), Interactions([])))
        >>> [r.item_id for r in system.rank(Profile(shown=frozenset({"a"})), k=5)]
        ['b']
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def fit(self, data: TrainingData) -> None:
        """Learn from the training data; called once before any scoring. Subclasses call ``super().fit(data)``
        first: it keeps what :meth:`rank` needs (item ids, facets, the filter index)."""
        self.item_ids = tuple(item.item_id for item in data.catalog)
        self.facets = data.facets
        self.filter_index = FilterIndex(data.catalog)

    @abstractmethod
    def score(self, profile: Profile) -> np.ndarray:
        """One float per catalog item, in catalog order; higher is better, ties are broken by the caller."""

    def score_batch(self, profiles: Sequence[Profile]) -> np.ndarray:
        """Scores for several profiles, one row each; override when a system can batch."""
        return np.stack([np.asarray(self.score(profile), dtype=float) for profile in profiles])

    def rank(self, profile: Profile, k: int = 10) -> list[Ranked]:
        """The ``k`` best items that pass the profile's hard filters (:func:`retrieval.profile.profile_filters`:
        facet constraints, items shown or disliked), best first, with score parts; fewer when fewer pass.

        Ties keep catalog order; NaN scores rank last.
        """
        return self.rank_batch([profile], k)[0]

    def rank_batch(self, profiles: Sequence[Profile], k: int = 10) -> list[list[Ranked]]:
        """:meth:`rank` for several profiles."""
        scores, details = self.score_details(profiles)
        ranked = []
        for profile, row, detail in zip(profiles, np.asarray(scores, dtype=float), details, strict=True):
            allowed = self.filter_index.mask(profile_filters(profile, self.facets))
            row = np.where(allowed, np.nan_to_num(row, nan=-np.inf, posinf=np.finfo(float).max), -np.inf)
            order = np.argsort(-row, kind="stable")[: int(allowed.sum())][:k].tolist()
            parts = self.parts(order, row, detail)
            ranked.append([Ranked(self.item_ids[p], p, part) for p, part in zip(order, parts, strict=True)])
        return ranked

    def score_details(self, profiles: Sequence[Profile]) -> tuple[np.ndarray, list[object]]:
        """The scores of :meth:`score_batch` and, per profile, whatever :meth:`parts` needs to explain them
        (computed in the same pass, so ranking with parts costs one scoring); by default nothing."""
        return self.score_batch(profiles), [None] * len(profiles)

    def parts(self, positions: Sequence[int], scores: np.ndarray, detail: object) -> list[ScoreParts]:
        """The score parts of some items from the profile's catalog scores and its :meth:`score_details`; by
        default the final score only. Systems that blend several parts override both."""
        return [ScoreParts(final=float(scores[p])) for p in positions]


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


def create_system(name: str, settings: Settings) -> RankingSystem:
    """A registered system built with the settings (its factory).

    Raises:
        KeyError: No system of that name; the message lists the registered ones.
    """
    registry = registered_systems()
    if name not in registry:
        raise KeyError(f"unknown ranking system '{name}'; registered: {', '.join(registry)}")
    return registry[name](settings)
