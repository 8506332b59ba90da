"""Three honest baselines every real system has to beat.

- ``random``: uniform scores, seeded per request from its session id, so reruns are identical.
- ``popularity``: training interactions per item; what a store shows someone it knows nothing about.
- ``faceted_popularity``: the store's "filter by what the shopper said, sort by bestsellers". Items matching
  every answered facet come first, by popularity; the rest follow by how many answered facets they match, then
  popularity. The free-text need is ignored.
"""

from __future__ import annotations

import numpy as np

from data.splits import stable_seed
from ranking.system import RankingSystem, TrainingData, register
from retrieval.profile import Profile


@register
class RandomSystem(RankingSystem):
    """Uniform random scores, the same for the same session id and training seed.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Interactions, Item
        >>> from data.settings import Settings
        >>> catalog = Catalog([Item(str(n), "x") for n in range(4)])
        >>> system = RandomSystem(Settings())
        >>> system.fit(TrainingData.build(catalog, discover_facets(catalog), Interactions([])))
        >>> bool((system.score(Profile(session_id="s")) == system.score(Profile(session_id="s"))).all())
        True
    """

    name = "random"
    description = "Uniform random scores (seeded per session)."

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        self._n_items = len(data.catalog)
        self._seed = data.seed

    def score(self, profile: Profile) -> np.ndarray:
        return np.random.default_rng(stable_seed(self._seed, "random", profile.session_id)).random(
            self._n_items
        )


@register
class PopularitySystem(RankingSystem):
    """Most-interacted items first, whatever the shopper said.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Interaction, Interactions, Item
        >>> from data.settings import Settings
        >>> catalog = Catalog([Item("a", "x"), Item("b", "y")])
        >>> events = Interactions([Interaction("u", "b")])
        >>> system = PopularitySystem(Settings())
        >>> system.fit(TrainingData.build(catalog, discover_facets(catalog), events))
        >>> system.score(Profile()).tolist()
        [0.0, 1.0]
    """

    name = "popularity"
    description = "Training interactions per item (bestsellers)."

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        self._counts = data.item_counts().astype(float)

    def score(self, profile: Profile) -> np.ndarray:
        return self._counts.copy()


@register
class FacetedPopularitySystem(RankingSystem):
    """Filter by the answered facets, sort by popularity; items missing some facets follow.

    The score is the number of answered facets an item matches plus its popularity scaled into [0, 1), so
    the order is: matched facets (all first), then training interactions. Facet names or values the catalog
    does not have match no item.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Interaction, Interactions, Item
        >>> from data.settings import Settings
        >>> brands = {"a": "HP", "b": "Epson", "c": "HP"}
        >>> catalog = Catalog([Item(item_id, "x", brand=brand) for item_id, brand in brands.items()])
        >>> events = Interactions([Interaction("u", "b")])
        >>> system = FacetedPopularitySystem(Settings())
        >>> system.fit(TrainingData.build(catalog, discover_facets(catalog), events))
        >>> scores = system.score(Profile.from_answers({"brand": "hp"}, answered=1))
        >>> [catalog.items[i].item_id for i in np.argsort(-scores, kind="stable")]
        ['a', 'c', 'b']
    """

    name = "faceted_popularity"
    description = "Items matching every answered facet first, by popularity; then by facets matched."

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        counts = data.item_counts().astype(float)
        self._popularity = counts / (counts.max() + 1.0)
        self._facets = data.facets

    def score(self, profile: Profile) -> np.ndarray:
        matched = np.zeros(len(self._popularity))
        for name, key in profile.values().items():
            if name in self._facets:
                matched += self._facets[name].mask(key)
        return matched + self._popularity
