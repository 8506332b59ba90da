"""Hard filters: what a request rules out (a category, brands, a price range, items already shown), and which
catalog items pass them.

An item that fails a hard filter is never a candidate. :class:`FilterIndex` answers for the whole catalog with a few
array comparisons; :func:`retrieval.index.where_filter` states the same filters as a Chroma ``where`` (a property
test checks that the two agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data.facets import PATH_SEPARATOR, maker_keys
from data.normalize import brand_key
from data.schema import Catalog


@dataclass(frozen=True)
class Filters:
    """Hard filters: an item that fails one is never a candidate.

    Attributes:
        category: A category facet value key, the " > "-joined path prefix at one level
            (``"Office Products > Ink & Toner"``); only items in that subtree pass. ``None``: any category.
        exclude_categories: Category path keys (any level) whose subtrees never pass ("no more pens").
        brands: Brand keys (:func:`data.normalize.brand_key`; display forms are turned into keys); when not
            empty, only items made by one of them pass. An item's maker is its brand, or for an item without
            one the known brand its title opens with (:func:`data.facets.maker_keys`: an unbranded "HP LaserJet
            ..." is HP's, for "HP" and for "not HP" alike).
        exclude_brands: Brand keys whose items never pass (by maker, as above).
        min_price: Lowest price allowed; with either bound set, items without a price do not pass (a price
            that cannot be checked cannot be promised). Amounts are compared as they are, in the catalog's
            currency.
        max_price: Highest price allowed.
        exclude_ids: Item ids that never pass (items already shown).

    Raises:
        ValueError: ``min_price`` above ``max_price``, a negative or NaN bound, or an empty category key.

    Example:
        >>> Filters(brands=frozenset({"hp"}), max_price=30.0).is_empty, Filters().is_empty
        (False, True)
    """

    category: str | None = None
    exclude_categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    exclude_brands: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    exclude_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Display forms ("HP", "Post-it") are accepted and matched by key; "" names no brand and is dropped (an
        # item without a maker fails an inclusion and passes an exclusion). Any iterable of ids is accepted.
        for name in ("brands", "exclude_brands"):
            keys = frozenset(brand_key(brand) for brand in getattr(self, name))
            object.__setattr__(self, name, keys - {""})
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        object.__setattr__(self, "exclude_categories", frozenset(self.exclude_categories))
        for name in ("min_price", "max_price"):
            bound = getattr(self, name)
            if bound is not None and (math.isnan(bound) or bound < 0):
                raise ValueError(f"Filters.{name} must be a non-negative number, got {bound!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(
                f"Filters.min_price ({self.min_price}) is above max_price ({self.max_price}); swap them"
            )
        if self.category is not None and not self.category.strip():
            raise ValueError("Filters.category must be a category path key or None, got an empty string")

    @property
    def is_empty(self) -> bool:
        """Whether every item passes."""
        return self == Filters()


class FilterIndex:
    """Each item's filterable values as integer codes, so that :meth:`mask` is a few array comparisons.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "x", brand="HP", categories=("Ink", "Black")), Item("b", "y")])
        >>> FilterIndex(catalog).mask(Filters(category="Ink > Black")).tolist()
        [True, False]
        >>> FilterIndex(catalog).mask(Filters(exclude_categories=frozenset({"Ink"}))).tolist()
        [False, True]
    """

    def __init__(self, catalog: Catalog) -> None:
        self.item_ids = [item.item_id for item in catalog]
        self._positions = dict(catalog.positions)
        depth = max((len(item.categories) for item in catalog), default=0)
        # One code array per category level: the code of the item's path prefix at that level, -1 when the
        # item's path is shorter.
        self._category_codes: list[dict[str, int]] = []
        self._category_arrays: list[np.ndarray] = []
        for level in range(1, depth + 1):
            codes: dict[str, int] = {}
            array = np.full(len(catalog), -1, dtype=np.int32)
            for position, item in enumerate(catalog):
                if len(item.categories) >= level:
                    array[position] = codes.setdefault(
                        PATH_SEPARATOR.join(item.categories[:level]), len(codes)
                    )
            self._category_codes.append(codes)
            self._category_arrays.append(array)
        # Each item's maker (its brand, or the known brand its title opens with; see data.facets.maker_keys).
        self._brand_codes: dict[str, int] = {}
        self._brands = np.array(
            [self._brand_codes.setdefault(key, len(self._brand_codes)) for key in maker_keys(catalog)],
            dtype=np.int32,
        )
        self._prices = np.array(
            [item.price.amount if item.price is not None else np.nan for item in catalog], dtype=np.float64
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def mask(self, filters: Filters) -> np.ndarray:
        """Which items pass every filter, in catalog order."""
        passing = np.ones(len(self.item_ids), dtype=bool)
        if filters.category is not None:
            level = filters.category.count(PATH_SEPARATOR) + 1
            codes = self._category_codes[level - 1] if level <= len(self._category_codes) else {}
            if filters.category in codes:
                passing &= self._category_arrays[level - 1] == codes[filters.category]
            else:
                passing[:] = False
        for category in filters.exclude_categories:
            level = category.count(PATH_SEPARATOR) + 1
            codes = self._category_codes[level - 1] if level <= len(self._category_codes) else {}
            if category in codes:
                passing &= self._category_arrays[level - 1] != codes[category]
        if filters.brands:
            codes = [self._brand_codes[key] for key in filters.brands if key in self._brand_codes]
            passing &= np.isin(self._brands, codes)
        if filters.exclude_brands:
            codes = [self._brand_codes[key] for key in filters.exclude_brands if key in self._brand_codes]
            passing &= ~np.isin(self._brands, codes)
        if filters.min_price is not None or filters.max_price is not None:
            low = -np.inf if filters.min_price is None else filters.min_price
            high = np.inf if filters.max_price is None else filters.max_price
            # NaN (no price) compares false both ways, so unpriced items fail.
            passing &= (self._prices >= low) & (self._prices <= high)
        if filters.exclude_ids:
            passing[[self._positions[i] for i in filters.exclude_ids if i in self._positions]] = False
        return passing
