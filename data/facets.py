"""Catalog facets discovered from the data: what a shopper can be asked about and what a system can filter on.

Nothing here knows about office products: every facet comes from the catalog itself.

- ``category_1``, ``category_2``, ...: one facet per category level. A level-k value is identified by its
  path prefix (``"Office & School Supplies > Paper"``), so two ``"Envelopes"`` under different parents are two
  values; it is displayed by its last name.
- ``brand``: an item's maker (:func:`maker_keys`: its brand, or for an item without one the known brand its title
  opens with), matched on :func:`data.normalize.brand_key`, displayed in the spelling most items use.
- ``price_band``: quantile bands with rounded, readable bounds, only when enough items have a price.
- ``attr:<key>``: one facet per attribute key that enough items have and that takes at least two values.

Facets with fewer than two values are kept (their ``informative`` flag is false) so that the inventory can
report them; the question order of the simulator and the question policy leave them out.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from data.normalize import clean_text, leading_brand_key
from data.schema import Catalog

PATH_SEPARATOR = " > "
_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


class FacetKind(StrEnum):
    CATEGORY = "category"
    BRAND = "brand"
    PRICE_BAND = "price_band"
    ATTRIBUTE = "attribute"


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet.

    Attributes:
        key: Stable identifier used in requests (category path prefix, brand key, a band like ``"10-25"``).
        label: What a person reads (``"Envelopes"``, ``"HP"``, ``"$10 to $25"``).
        count: How many catalog items have this value.
    """

    key: str
    label: str
    count: int


@dataclass(frozen=True, eq=False)
class Facet:
    """One facet of a catalog with each item's value.

    Attributes:
        name: Identifier used in requests (``"category_2"``, ``"brand"``, ``"price_band"``, ``"attr:color"``).
        label: What a person reads (``"Category (level 2)"``).
        kind: Which rule built it.
        values: The distinct values, most common first.
        codes: One value code per catalog item in catalog order (an index into ``values``), ``-1`` = missing.
        level: The 1-based category level for category facets, else ``None``.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "Pen", brand="BIC"), Item("b", "Pad", brand="bic"), Item("c", "X")])
        >>> brand = discover_facets(catalog)["brand"]
        >>> [(v.key, v.label, v.count) for v in brand.values], brand.codes.tolist(), brand.informative
        ([('bic', 'BIC', 2)], [0, 0, -1], False)
    """

    name: str
    label: str
    kind: FacetKind
    values: tuple[FacetValue, ...]
    codes: np.ndarray
    level: int | None = None
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.codes.setflags(write=False)
        object.__setattr__(self, "_index", {value.key: code for code, value in enumerate(self.values)})

    @property
    def coverage(self) -> float:
        """Share of catalog items that have a value."""
        return float(np.count_nonzero(self.codes >= 0) / len(self.codes)) if len(self.codes) else 0.0

    @property
    def informative(self) -> bool:
        """Whether asking about this facet can tell items apart (at least two values)."""
        return len(self.values) >= 2

    def code(self, key: str) -> int:
        """The code of a value key, ``-1`` when the facet has no such value."""
        return self._index.get(key, -1)

    def value_of(self, position: int) -> FacetValue | None:
        """The value of the item at a catalog position, ``None`` when it has none."""
        code = int(self.codes[position])
        return self.values[code] if code >= 0 else None

    def mask(self, key: str) -> np.ndarray:
        """Boolean array over the catalog: which items have this value (all false for an unknown key)."""
        code = self.code(key)
        return self.codes == code if code >= 0 else np.zeros(len(self.codes), dtype=bool)


@dataclass(frozen=True, eq=False)
class Facets:
    """All facets of one catalog, in discovery order: category levels, brand, price band, attributes.

    Example:
        >>> from data.schema import Item
        >>> items = [Item("a", "Pen", categories=("Office", "Pens")), Item("b", "X", categories=("Office",))]
        >>> catalog = Catalog(items)
        >>> facets = discover_facets(catalog)
        >>> facets.names
        ('category_1', 'category_2', 'brand')
        >>> facets["category_2"].values[0].key, facets["category_2"].values[0].label
        ('Office > Pens', 'Pens')
    """

    facets: tuple[Facet, ...]
    n_items: int
    _by_name: dict[str, Facet] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {facet.name: facet for facet in self.facets})

    def __getitem__(self, name: str) -> Facet:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Facet]:
        return iter(self.facets)

    def __len__(self) -> int:
        return len(self.facets)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(facet.name for facet in self.facets)

    def category_levels(self) -> tuple[Facet, ...]:
        """The category facets, top level first."""
        return tuple(facet for facet in self.facets if facet.kind is FacetKind.CATEGORY)

    def attributes(self) -> tuple[Facet, ...]:
        return tuple(facet for facet in self.facets if facet.kind is FacetKind.ATTRIBUTE)


def _build(
    name: str,
    label: str,
    kind: FacetKind,
    keys: list[str | None],
    labels: dict[str, str],
    *,
    level: int | None = None,
    order: list[str] | None = None,
) -> Facet:
    """A facet from each item's value key (``None`` = missing) and each key's display label.

    Values come most common first, or in ``order`` (keys no item has are left out).
    """
    counts = Counter(key for key in keys if key is not None)
    if order is None:
        ordered = sorted(counts, key=lambda key: (-counts[key], labels[key], key))
    else:
        ordered = [key for key in order if key in counts]
    index = {key: code for code, key in enumerate(ordered)}
    codes = np.fromiter(
        (index[key] if key is not None else -1 for key in keys), dtype=np.int32, count=len(keys)
    )
    values = tuple(FacetValue(key, labels[key], counts[key]) for key in ordered)
    return Facet(name, label, kind, values, codes, level)


def _most_common_forms(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """For each key, the display form most items use (the first seen among equally common ones)."""
    forms: dict[str, Counter[str]] = {}
    for key, form in pairs:
        forms.setdefault(key, Counter())[form] += 1
    return {key: counter.most_common(1)[0][0] for key, counter in forms.items()}


def _category_facets(catalog: Catalog) -> list[Facet]:
    depth = max((len(item.categories) for item in catalog), default=0)
    facets = []
    for level in range(1, depth + 1):
        keys = [
            PATH_SEPARATOR.join(item.categories[:level]) if len(item.categories) >= level else None
            for item in catalog
        ]
        labels = {key: key.rsplit(PATH_SEPARATOR, 1)[-1] for key in keys if key is not None}
        facets.append(
            _build(
                f"category_{level}",
                f"Category (level {level})",
                FacetKind.CATEGORY,
                keys,
                labels,
                level=level,
            )
        )
    return facets


def maker_keys(catalog: Catalog) -> list[str]:
    """Each item's maker as a brand key, in catalog order: its own brand, else the brand among those other items
    carry that its title opens with (:func:`data.normalize.leading_brand_key`), else ``""``.

    The one reading of "which brand is this item" for asking, answering and filtering: an unbranded "HP Color
    LaserJet ..." is an HP item to a shopper who chose HP and to one who said "not HP".

    Example:
        >>> from data.schema import Item
        >>> maker_keys(Catalog([Item("a", "HP 78A Toner", brand="HP"), Item("b", "HP LaserJet Printer"),
        ...                     Item("c", "Toner for HP printers"), Item("d", "Canon Ink", brand="")]))
        ['hp', 'hp', '', '']
    """
    known = {item.brand_key for item in catalog if item.brand_key}
    return [item.brand_key or leading_brand_key(item.title, known) for item in catalog]


def _brand_facet(catalog: Catalog) -> Facet:
    keys = [key or None for key in maker_keys(catalog)]
    # Display forms come from the items that carry the brand; every maker key is one of theirs.
    labels = _most_common_forms([(item.brand_key, item.brand) for item in catalog if item.brand_key])
    return _build("brand", "Brand", FacetKind.BRAND, keys, labels)


def _readable(value: float) -> float:
    """A price bound rounded to two significant figures, whole units from 10 up (12.37 -> 12, 147 -> 150)."""
    if value <= 0:
        return 0.0
    digits = 1 - math.floor(math.log10(value))
    rounded = round(value, digits)
    return float(round(rounded)) if rounded >= 10 else rounded


def _money(amount: float, currency: str) -> str:
    number = f"{amount:,.0f}" if amount == int(amount) else f"{amount:,.2f}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def _price_facet(catalog: Catalog, bands: int, min_coverage: float) -> Facet | None:
    """Quantile price bands over the items priced in the catalog's most common currency."""
    currencies = Counter(item.price.currency for item in catalog if item.price is not None)
    if not currencies:
        return None
    currency = currencies.most_common(1)[0][0]
    prices = np.array(
        [
            item.price.amount if item.price is not None and item.price.currency == currency else np.nan
            for item in catalog
        ]
    )
    priced = prices[~np.isnan(prices)]
    if len(priced) < max(2, min_coverage * len(catalog)) or priced.min() == priced.max():
        return None
    inner = np.quantile(priced, np.linspace(0, 1, bands + 1)[1:-1])
    edges = sorted({_readable(edge) for edge in inner if priced.min() < _readable(edge) <= priced.max()})
    # Rounding can leave a band with no item in it; drop its upper bound until every band is used.
    while True:
        band = np.searchsorted(np.array(edges), priced, side="right")
        used = np.bincount(band, minlength=len(edges) + 1)
        empty = np.flatnonzero(used == 0)
        if not len(empty):
            break
        del edges[min(int(empty[0]), len(edges) - 1)]
    bounds = [0.0, *edges, math.inf]
    keys_of, labels = [], {}
    for low, high in itertools.pairwise(bounds):
        if low == 0:
            key, label = f"0-{high:g}", f"Under {_money(high, currency)}"
        elif math.isinf(high):
            key, label = f"{low:g}+", f"{_money(low, currency)} and up"
        else:
            key, label = f"{low:g}-{high:g}", f"{_money(low, currency)} to {_money(high, currency)}"
        keys_of.append(key)
        labels[key] = label
    item_band = np.searchsorted(np.array(edges), np.nan_to_num(prices), side="right")
    keys = [keys_of[b] if not np.isnan(p) else None for b, p in zip(item_band, prices, strict=True)]
    # Bands read in price order, not by how many items each holds.
    return _build("price_band", "Price", FacetKind.PRICE_BAND, keys, labels, order=keys_of)


def _attribute_facets(catalog: Catalog, min_coverage: float, max_value_share: float) -> list[Facet]:
    per_key: dict[str, list[str | None]] = {}
    forms: dict[str, list[tuple[str, str]]] = {}
    names: dict[str, list[tuple[str, str]]] = {}
    for position, item in enumerate(catalog):
        for raw_key, raw_value in item.attributes:
            key, value = clean_text(raw_key).casefold(), clean_text(raw_value)
            if not key or not value:
                continue
            per_key.setdefault(key, [None] * len(catalog))[position] = value.casefold()
            forms.setdefault(key, []).append((value.casefold(), value))
            names.setdefault(key, []).append((key, raw_key))
    facets = []
    for key, values in per_key.items():
        covered = sum(value is not None for value in values)
        distinct = len({value for value in values if value is not None})
        # A key that nearly every item spells differently (model number, SKU) is an identifier, not a facet.
        if covered < min_coverage * len(catalog) or distinct < 2 or distinct > max_value_share * covered:
            continue
        display = _most_common_forms(names[key])[key]
        label = display[:1].upper() + display[1:].replace("_", " ")
        facets.append(
            _build(f"attr:{key}", label, FacetKind.ATTRIBUTE, values, _most_common_forms(forms[key]))
        )
    return sorted(facets, key=lambda facet: (-facet.coverage, facet.name))


def discover_facets(
    catalog: Catalog, *, price_bands: int = 5, min_coverage: float = 0.05, max_value_share: float = 0.5
) -> Facets:
    """Discover the facets of a catalog.

    Args:
        catalog: Any catalog.
        price_bands: How many quantile price bands to aim for (fewer when rounded bounds coincide).
        min_coverage: Share of items a price band or attribute facet needs to exist.
        max_value_share: An attribute whose distinct values exceed this share of the items having it is an
            identifier and is not a facet.

    Returns:
        Category levels (always, one per level present), brand (always), price band (when enough items are
        priced), then attribute facets, widest coverage first.

    Example:
        >>> from data.schema import Item
        >>> colors = ["red", "red", "blue", "red"]
        >>> items = [Item(str(i), "x", attributes=(("Color", c),)) for i, c in enumerate(colors)]
        >>> facets = discover_facets(Catalog(items))
        >>> facets["attr:color"].label, [v.label for v in facets["attr:color"].values]
        ('Color', ['red', 'blue'])
    """
    facets = [*_category_facets(catalog), _brand_facet(catalog)]
    price = _price_facet(catalog, price_bands, min_coverage)
    if price is not None:
        facets.append(price)
    facets.extend(_attribute_facets(catalog, min_coverage, max_value_share))
    return Facets(tuple(facets), len(catalog))
