"""What a shopper has said, as one typed value, and the one rule that turns it into a search.

A :class:`Profile` is the interest profile every layer reads: facet constraints with operators, the need in the
shopper's own words, liked and disliked items, and the items already shown. The chat builds it from messages,
the benchmark's simulated shopper from its answers, an agent edits it; retrieval and the rankers take it as it
is. :func:`profile_query` is the only place a profile becomes query words, context and hard filters, and
:func:`profile_text` the only place it becomes the text a cross-encoder reads.

Constraints name a facet of :func:`data.facets.discover_facets` (``category_2``, ``brand``, ``price_band``,
``attr:color``) or :data:`PRICE` for amounts. What each one does:

- ``category_k = key``: a hard filter to that subtree (the deepest answered level wins: a path prefix implies
  the levels above it); its label joins the context. ``category_k != key``: that subtree is excluded.
- ``brand = key``: only that brand (several ``=`` brands: any of them); ``brand != key``: never that brand.
- ``price_band = key``: the band's bounds; ``price < x``, ``price > x``, ``price between (a, b)``: bounds on
  the amount (inclusive); items without a price then fail, since a price that cannot be checked cannot be
  promised.
- ``attr:* = value``: the value's label joins the context (catalog attributes are too sparse to filter on).
- A facet or value the catalog does not have adds nothing: a profile from another catalog never breaks a search.

Example:
    >>> from data.facets import discover_facets
    >>> from data.schema import Catalog, Item
    >>> catalog = Catalog([Item("1", "HP 61 Ink", brand="HP", categories=("Ink & Toner", "Ink"))])
    >>> profile = Profile.from_answers(
    ...     {"category_1": "Ink & Toner", "category_2": "Ink & Toner > Ink", "brand": "hp"}, need="black ink"
    ... )
    >>> query = profile_query(profile, discover_facets(catalog))
    >>> query.text, query.context, query.filters.category, sorted(query.filters.brands)
    ('black ink', 'Ink & Toner Ink HP', 'Ink & Toner > Ink', ['hp'])
    >>> profile_text(profile, discover_facets(catalog))
    'black ink. Ink & Toner, Ink, HP'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from data.facets import FacetKind, Facets
from retrieval.filters import Filters

PRICE = "price"


class Op(StrEnum):
    """How a constraint relates a facet to its value."""

    EQ = "="
    NE = "!="
    LT = "<"
    GT = ">"
    BETWEEN = "between"


@dataclass(frozen=True)
class Constraint:
    """One thing the shopper said about a facet.

    Attributes:
        facet: A facet name (``"brand"``, ``"category_2"``) or :data:`PRICE`.
        op: The operator.
        value: A value key for ``=`` and ``!=``; an amount for ``<`` and ``>``; ``(low, high)`` for ``between``.

    Raises:
        ValueError: A value of the wrong kind for the operator, a negative or NaN amount, or ``low > high``.

    Example:
        >>> Constraint(PRICE, Op.LT, 30.0)
        Constraint(facet='price', op=<Op.LT: '<'>, value=30.0)
        >>> Constraint(PRICE, Op.BETWEEN, (40.0, 20.0))
        Traceback (most recent call last):
        ...
        ValueError: price between (40.0, 20.0): the low bound is above the high bound; swap them
    """

    facet: str
    op: Op
    value: str | float | tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", Op(self.op))
        where = f"{self.facet} {self.op.value} {self.value!r}"
        if self.op in (Op.EQ, Op.NE):
            if not isinstance(self.value, str) or not self.value.strip():
                raise ValueError(f"{where}: '{self.op.value}' needs a facet value key (a non-empty string)")
            return
        if self.facet != PRICE:
            raise ValueError(f"{where}: '{self.op.value}' compares amounts; use the facet '{PRICE}'")
        bounds = self.value if self.op is Op.BETWEEN else (self.value,)
        if self.op is Op.BETWEEN and (not isinstance(bounds, tuple) or len(bounds) != 2):
            raise ValueError(f"{where}: 'between' needs a (low, high) pair of amounts")
        for bound in bounds:
            if (
                isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or math.isnan(bound)
                or bound < 0
            ):
                raise ValueError(f"{where}: amounts must be non-negative numbers")
        if self.op is Op.BETWEEN:
            object.__setattr__(self, "value", (float(bounds[0]), float(bounds[1])))
            if bounds[0] > bounds[1]:
                raise ValueError(f"{where}: the low bound is above the high bound; swap them")
        else:
            object.__setattr__(self, "value", float(self.value))


@dataclass(frozen=True)
class Profile:
    """Everything a shopper has said so far (see the module docstring).

    Attributes:
        constraints: Facet constraints, in the order they were said (a later one may refine an earlier one).
        need: The need in the shopper's words, ``""`` when not given.
        liked: Items the shopper liked (thumbs up), oldest first.
        disliked: Items the shopper disliked, oldest first.
        shown: Items already shown; never shown again.
        answered: Questions answered so far, "no preference" answers included.
        session_id: The conversation's opaque id; real systems ignore it (a test's planted oracle uses it).

    Example:
        >>> profile = Profile.from_answers({"brand": "hp"}, need="ink", answered=2)
        >>> profile.values(), profile.answered, profile.excluded
        ({'brand': 'hp'}, 2, frozenset())
    """

    constraints: tuple[Constraint, ...] = ()
    need: str = ""
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    shown: frozenset[str] = field(default_factory=frozenset)
    answered: int = 0
    session_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints", tuple(self.constraints))
        object.__setattr__(self, "liked", tuple(self.liked))
        object.__setattr__(self, "disliked", tuple(self.disliked))
        object.__setattr__(self, "shown", frozenset(self.shown))

    @classmethod
    def from_answers(cls, values: Mapping[str, str], need: str = "", **rest: object) -> Profile:
        """A profile of ``facet = value`` answers (``{"brand": "hp"}``) and a need; ``rest`` sets other fields."""
        constraints = tuple(Constraint(name, Op.EQ, key) for name, key in values.items())
        return cls(constraints=constraints, need=need, **rest)  # type: ignore[arg-type]

    def values(self) -> dict[str, str]:
        """Facet name -> value key of the ``=`` constraints (the last one of a facet wins)."""
        return {c.facet: c.value for c in self.constraints if c.op is Op.EQ}  # type: ignore[misc]

    @property
    def excluded(self) -> frozenset[str]:
        """Items never to show: those already shown and those disliked."""
        return self.shown | frozenset(self.disliked)

    def with_feedback(self, liked: Iterable[str] = (), disliked: Iterable[str] = ()) -> Profile:
        """The same profile with more likes and dislikes (kept in order, without repeats)."""
        return replace(
            self,
            liked=tuple(dict.fromkeys((*self.liked, *liked))),
            disliked=tuple(dict.fromkeys((*self.disliked, *disliked))),
        )


@dataclass(frozen=True)
class ProfileQuery:
    """What a profile asks the candidate generator.

    Attributes:
        text: The need statement: every channel reads it.
        labels: The labels of the ``=`` facet values, in the order said, without repeats.
        filters: The hard filters, with the items already shown or disliked excluded.
    """

    text: str
    labels: tuple[str, ...]
    filters: Filters

    @property
    def context(self) -> str:
        """The labels as one text: the vector channels read it after the need (see :mod:`retrieval.candidates`
        for why the lexical channel does not)."""
        return " ".join(self.labels)


def _band_bounds(key: str) -> tuple[float | None, float | None]:
    """``"10-25"`` -> (10, 25), ``"0-10"`` -> (None, 10), ``"100+"`` -> (100, None) (keys of data.facets)."""
    if key.endswith("+"):
        return float(key[:-1]), None
    low, high = (float(part) for part in key.split("-", 1))
    return (low or None), high


def _tighter(current: float | None, bound: float | None, pick) -> float | None:
    if bound is None:
        return current
    return bound if current is None else pick(current, bound)


def _price_bounds(
    low: float | None, high: float | None, new_low: float | None, new_high: float | None
) -> tuple[float | None, float | None]:
    """Bounds after one more price constraint: each side tightens; a new bound that contradicts the other side
    replaces it, since the shopper's latest words win ("under 20" ... "over 30" means over 30)."""
    low, high = _tighter(low, new_low, max), _tighter(high, new_high, min)
    if low is not None and high is not None and low > high:
        if new_low is not None and new_high is None:
            high = None
        elif new_high is not None and new_low is None:
            low = None
        else:
            low, high = new_low, new_high
    return low, high


def profile_query(profile: Profile, facets: Facets) -> ProfileQuery:
    """The query text, context and hard filters of a profile (rules in the module docstring)."""
    labels: list[str] = []
    category: tuple[int, str] | None = None
    excluded_categories: set[str] = set()
    brands: set[str] = set()
    excluded_brands: set[str] = set()
    low: float | None = None
    high: float | None = None
    for constraint in profile.constraints:
        if constraint.facet == PRICE:
            value = constraint.value
            if constraint.op is Op.LT:
                low, high = _price_bounds(low, high, None, value)  # type: ignore[arg-type]
            elif constraint.op is Op.GT:
                low, high = _price_bounds(low, high, value, None)  # type: ignore[arg-type]
            elif constraint.op is Op.BETWEEN:
                low, high = _price_bounds(low, high, *value)  # type: ignore[misc]
            continue
        if constraint.facet not in facets or constraint.op not in (Op.EQ, Op.NE):
            continue
        facet = facets[constraint.facet]
        key = str(constraint.value)
        if facet.code(key) < 0:
            continue
        if constraint.op is Op.NE:
            if facet.kind is FacetKind.CATEGORY:
                excluded_categories.add(key)
            elif facet.kind is FacetKind.BRAND:
                excluded_brands.add(key)
            continue
        labels.append(facet.values[facet.code(key)].label)
        if facet.kind is FacetKind.CATEGORY and (category is None or (facet.level or 0) > category[0]):
            category = (facet.level or 0, key)
        elif facet.kind is FacetKind.BRAND:
            brands.add(key)
        elif facet.kind is FacetKind.PRICE_BAND:
            low, high = _price_bounds(low, high, *_band_bounds(key))
    filters = Filters(
        category=category[1] if category else None,
        exclude_categories=frozenset(excluded_categories),
        brands=frozenset(brands - excluded_brands),
        exclude_brands=frozenset(excluded_brands),
        min_price=low,
        max_price=high,
        exclude_ids=profile.excluded,
    )
    return ProfileQuery(profile.need.strip(), tuple(dict.fromkeys(labels)), filters)


def profile_filters(profile: Profile, facets: Facets) -> Filters:
    """The hard filters of a profile: :attr:`ProfileQuery.filters` of :func:`profile_query`."""
    return profile_query(profile, facets).filters


def profile_text(profile: Profile, facets: Facets) -> str:
    """The text a cross-encoder reads for a profile: the need, then the labels of the chosen facet values.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Item
        >>> facets = discover_facets(Catalog([Item("1", "Pen", brand="BIC"), Item("2", "Ink", brand="HP")]))
        >>> profile_text(Profile.from_answers({"brand": "bic"}), facets), profile_text(Profile(need="pen"), facets)
        ('BIC', 'pen')
    """
    query = profile_query(profile, facets)
    context = ", ".join(query.labels)
    if query.text and context:
        return f"{query.text}. {context}"
    return query.text or context
