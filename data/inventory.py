"""The data-asset inventory: a health report of a catalog and its interactions.

It answers what a merchandiser asks before trusting recommendations: how much text and structure do the items
carry, how deep is the category tree, how concentrated are the interactions, how many items nobody touched.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

from data.facets import maker_keys
from data.schema import Catalog, Interactions


@dataclass(frozen=True)
class Distribution:
    """Summary of a count per entity (interactions per user, per item)."""

    count: int
    minimum: int
    median: float
    mean: float
    p90: float
    maximum: int

    @classmethod
    def of(cls, values: list[int]) -> Distribution:
        if not values:
            return cls(0, 0, 0.0, 0.0, 0.0, 0)
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return cls(
            len(ordered), ordered[0], statistics.median(ordered), statistics.fmean(ordered), p90, ordered[-1]
        )


@dataclass(frozen=True)
class Inventory:
    items: int
    missing: dict[str, float]
    category_depths: dict[int, int]
    category_nodes_per_level: list[int]
    top_categories: list[tuple[str, int]]
    brands: int
    top_brands: list[tuple[str, int]]
    # Items without a brand whose title opens with a brand other items carry: their maker for questions and filters
    # (data.facets.maker_keys).
    brands_from_titles: int
    duplicate_titles: int
    duplicate_title_examples: list[tuple[str, int]]
    interactions: int = 0
    users: int = 0
    per_user: Distribution | None = None
    per_item: Distribution | None = None
    cold_items: int = 0
    events: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def build_inventory(catalog: Catalog, interactions: Interactions | None = None, *, top: int = 8) -> Inventory:
    """Compute the inventory of a catalog and, when given, its interactions.

    Example:
        >>> from data.schema import Item
        >>> build_inventory(Catalog([Item("1", "Stapler"), Item("2", "stapler")])).duplicate_titles
        1
    """
    n = len(catalog)
    missing = Counter()
    depths: Counter[int] = Counter()
    levels: list[set[tuple[str, ...]]] = []
    top_level: Counter[str] = Counter()
    brands: Counter[str] = Counter()
    brand_display: dict[str, str] = {}
    titles: Counter[str] = Counter()
    title_display: dict[str, str] = {}
    for item in catalog:
        missing["description"] += not item.description
        missing["brand"] += not item.brand
        missing["price"] += item.price is None
        missing["categories"] += not item.categories
        missing["attributes"] += not item.attributes
        missing["image_url"] += not item.image_url
        depths[len(item.categories)] += 1
        for depth in range(len(item.categories)):
            if len(levels) <= depth:
                levels.append(set())
            levels[depth].add(item.categories[: depth + 1])
        if item.categories:
            top_level[item.categories[0]] += 1
        if item.brand:
            brands[item.brand_key] += 1
            brand_display.setdefault(item.brand_key, item.brand)
        titles[item.title.casefold()] += 1
        title_display.setdefault(item.title.casefold(), item.title)
    duplicated = [(title_display[key], count) for key, count in titles.most_common() if count > 1]
    inventory = Inventory(
        items=n,
        missing={key: (count / n if n else 0.0) for key, count in missing.items()},
        category_depths=dict(sorted(depths.items())),
        category_nodes_per_level=[len(level) for level in levels],
        top_categories=top_level.most_common(top),
        brands=len(brands),
        top_brands=[(brand_display[key], count) for key, count in brands.most_common(top)],
        brands_from_titles=sum(
            1
            for maker, item in zip(maker_keys(catalog), catalog, strict=True)
            if maker and not item.brand_key
        ),
        duplicate_titles=len(duplicated),
        duplicate_title_examples=duplicated[:top],
    )
    if interactions is None:
        return inventory
    per_user: Counter[str] = Counter()
    per_item: Counter[str] = Counter({item.item_id: 0 for item in catalog})
    events: Counter[str] = Counter()
    for event in interactions.events:
        per_user[event.user_id] += 1
        per_item[event.item_id] += 1
        events[str(event.event) if event.event else "unspecified"] += 1
    return replace(
        inventory,
        interactions=len(interactions),
        users=len(per_user),
        per_user=Distribution.of(list(per_user.values())),
        per_item=Distribution.of([per_item[item.item_id] for item in catalog]),
        cold_items=sum(1 for item in catalog if per_item[item.item_id] == 0),
        events=dict(events.most_common()),
    )


def format_inventory(inventory: Inventory) -> str:
    """The inventory as a readable plain-text report."""
    lines = [f"Items                 {inventory.items:,}"]
    for key, share in inventory.missing.items():
        lines.append(f"  missing {key:<13} {share:6.1%}")
    lines.append(
        "Category tree         "
        + " / ".join(f"{count:,}" for count in inventory.category_nodes_per_level)
        + " nodes per level"
    )
    lines.append(
        "  items by depth      " + ", ".join(f"{d}: {c:,}" for d, c in inventory.category_depths.items())
    )
    for name, count in inventory.top_categories:
        lines.append(f"  {name:<40} {count:>7,}")
    lines.append(f"Brands                {inventory.brands:,}")
    lines.append("  top: " + ", ".join(f"{name} ({count:,})" for name, count in inventory.top_brands))
    lines.append(f"  unbranded items whose title opens with a known brand: {inventory.brands_from_titles:,}")
    lines.append(f"Duplicate titles      {inventory.duplicate_titles:,}")
    for title, count in inventory.duplicate_title_examples:
        lines.append(f"  {count} x {title[:70]}")
    if inventory.per_user is not None and inventory.per_item is not None:
        lines.append(f"Interactions          {inventory.interactions:,}   users {inventory.users:,}")
        lines.append("  events              " + ", ".join(f"{k}: {v:,}" for k, v in inventory.events.items()))
        for label, dist in (("per user", inventory.per_user), ("per item", inventory.per_item)):
            lines.append(
                f"  {label:<19} min {dist.minimum}  median {dist.median:g}  mean {dist.mean:.1f}"
                f"  p90 {dist.p90:g}  max {dist.maximum}"
            )
        share = inventory.cold_items / inventory.items if inventory.items else 0.0
        lines.append(f"Cold items            {inventory.cold_items:,} ({share:.1%}) with no interactions")
    return "\n".join(lines)
