"""Converters from public data-set layouts to the standard format (``docs/formats.md``).

The LC-Rec layout (used by the bundled Amazon sample) is two JSON documents:
``{"<item id>": {"title", "description", "brand", "categories"}}`` and ``{"<user id>": [item id, ...]}``, each
list in the order of the shopper's reviews.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from data.errors import DataError, ValidationIssue, preview
from data.normalize import clean_text
from data.schema import Event, Interaction, Item


def split_lcrec_categories(paths: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Split LC-Rec category strings into levels, deciding ambiguous commas from the whole category tree.

    LC-Rec joins Amazon's levels with ``", "``, which is ambiguous because Amazon names such as
    ``"Tape, Adhesives & Fasteners"`` contain a comma themselves; Amazon writes those as ``"A, B & C"``. Under a
    given parent, a segment ``A`` without ``&`` stands alone when some path shows it as a node of its own (it ends
    the path, or is followed by a segment without ``&``, or by a child named after it, as
    ``"Envelopes, Booklet & Catalog Envelopes"``); when every path shows it followed by an ``&`` segment, the two
    are one name.

    Returns:
        Each distinct input string mapped to its levels, top first.

    Example:
        >>> split_lcrec_categories(["Office, Tape, Adhesives & Fasteners, Tape, Clear Tape"])[
        ...     "Office, Tape, Adhesives & Fasteners, Tape, Clear Tape"]
        ('Office', 'Tape, Adhesives & Fasteners', 'Tape', 'Clear Tape')
    """
    segmented = {raw: [s for s in (clean_text(part) for part in raw.split(",")) if s] for raw in set(paths)}
    levels: dict[str, tuple[str, ...]] = {}

    def stands_alone(head: str, rest: list[str]) -> bool:
        return not rest or "&" not in rest[0] or rest[0].split()[-1] == head.split()[-1]

    def walk(prefix: tuple[str, ...], members: list[tuple[str, list[str]]]) -> None:
        groups: dict[str, list[tuple[str, list[str]]]] = {}
        for raw, remaining in members:
            if not remaining:
                levels[raw] = prefix
            else:
                groups.setdefault(remaining[0], []).append((raw, remaining))
        for head, group in groups.items():
            alone = "&" in head or any(stands_alone(head, remaining[1:]) for _, remaining in group)
            children: dict[str, list[tuple[str, list[str]]]] = {}
            for raw, remaining in group:
                merged = not alone and len(remaining) > 1
                name = f"{head}, {remaining[1]}" if merged else head
                children.setdefault(name, []).append((raw, remaining[2:] if merged else remaining[1:]))
            for name, child in children.items():
                walk((*prefix, name), child)

    walk((), list(segmented.items()))
    return levels


@dataclass
class LcRecData:
    """What :func:`read_lcrec` found: the items and interactions, and every record it could not use."""

    items: list[Item]
    interactions: list[Interaction]
    issues: list[ValidationIssue] = field(default_factory=list)


def _read_object(path: Path) -> dict:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DataError(
            ValidationIssue("missing_file", path, 0, "", "", "file not found", "Check the path.")
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(
            ValidationIssue(
                "malformed_json",
                path,
                getattr(error, "lineno", 0),
                "",
                "",
                f"not valid JSON ({error})",
                "LC-Rec files are single JSON objects; re-export the file.",
            )
        ) from None
    if not isinstance(document, dict) or not document:
        raise DataError(
            ValidationIssue(
                "empty_file",
                path,
                0,
                "",
                preview(type(document).__name__),
                "expected a non-empty JSON object",
                "Pass the LC-Rec '.item.json' and '.inter.json' files.",
            )
        )
    return document


def _items(path: Path, document: dict, issues: list[ValidationIssue]) -> Iterator[Item]:
    categories = split_lcrec_categories(
        str(record.get("categories") or "") for record in document.values() if isinstance(record, dict)
    )
    for item_id, record in document.items():
        if not isinstance(record, dict):
            issues.append(
                ValidationIssue(
                    "not_an_object",
                    path,
                    0,
                    f'["{item_id}"]',
                    preview(record),
                    "an item must be a JSON object",
                    'Each value must look like {"title": ..., "description": ..., "brand": ..., "categories": ...}.',
                )
            )
            continue
        title = clean_text(str(record.get("title") or ""))
        if not title:
            issues.append(
                ValidationIssue(
                    "missing_title",
                    path,
                    0,
                    f'["{item_id}"].title',
                    preview(record.get("title")),
                    "every item needs a title",
                    "Add a title or remove the item.",
                )
            )
            continue
        yield Item(
            item_id=str(item_id),
            title=title,
            description=clean_text(str(record.get("description") or "")),
            brand=clean_text(str(record.get("brand") or "")),
            categories=categories[str(record.get("categories") or "")],
        )


def _interactions(
    path: Path, document: dict, known: set[str], issues: list[ValidationIssue]
) -> Iterator[Interaction]:
    for user_id, history in document.items():
        if not isinstance(history, list):
            issues.append(
                ValidationIssue(
                    "not_a_list",
                    path,
                    0,
                    f'["{user_id}"]',
                    preview(history),
                    "a history must be a list of item ids",
                    "Each value must be a JSON list of item ids, oldest first.",
                )
            )
            continue
        for order, item_id in enumerate(history):
            if str(item_id) not in known:
                issues.append(
                    ValidationIssue(
                        "unknown_item_id",
                        path,
                        0,
                        f'["{user_id}"][{order}]',
                        preview(item_id),
                        "item id not in the item file",
                        "Remove the interaction or add the item.",
                    )
                )
                continue
            yield Interaction(user_id=str(user_id), item_id=str(item_id), order=order, event=Event.REVIEW)


def read_lcrec(items_path: Path, interactions_path: Path, *, strict: bool = False) -> LcRecData:
    """Read an LC-Rec item file and interaction file into standard records.

    Args:
        items_path: The ``*.item.json`` file.
        interactions_path: The ``*.inter.json`` file.
        strict: Raise :class:`DataError` on the first unusable record instead of reporting it.

    Raises:
        DataError: A missing, unreadable or empty file; in strict mode also the first bad record.
    """
    issues: list[ValidationIssue] = []
    items = []
    for item in _items(Path(items_path), _read_object(items_path), issues):
        items.append(item)
    if strict and issues:
        raise DataError(issues[0])
    known = {item.item_id for item in items}
    interactions = list(
        _interactions(Path(interactions_path), _read_object(interactions_path), known, issues)
    )
    if strict and issues:
        raise DataError(issues[0])
    return LcRecData(items, interactions, issues)
