"""An append-only JSONL file of per-item records, written by one process at a time, that survives an interrupt.

The descriptions and the paraphrases files (:mod:`data.descriptions`, :mod:`data.paraphrases`) work this way:
while a run writes, the file is a log (:class:`RecordLog`): each record is flushed as it is made, so an
interrupted run loses at most the line being written, and the next run starts where it stopped. Reading it
(:meth:`StoredRecords.read`) keeps the last record of each item. A complete run rewrites it with only the current
records (:func:`write_records`). A :class:`RecordFormat` says how a line is read and what the messages name.

Example:
    >>> import json, tempfile
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Note(Record):
    ...     item_id: str
    ...     def to_json(self) -> str:
    ...         return json.dumps({"item_id": self.item_id})
    >>> notes = RecordFormat("note", lambda line: Note(**json.loads(line)), ("note",), RecordLogLockedError)
    >>> path = Path(tempfile.mkdtemp()) / "notes.jsonl"
    >>> with RecordLog(path, notes) as log:
    ...     log.append(Note("1")); log.append(Note("2")); log.append(Note("1"))
    >>> stored = StoredRecords.read(path, notes)
    >>> list(stored.records), stored.lines, write_records(stored.records.values(), path)
    (['1', '2'], 3, 2)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Generic, Self, TypeVar

from data.errors import DataError, ValidationIssue, preview

__all__ = [
    "BadRecordError",
    "Record",
    "RecordFormat",
    "RecordLog",
    "RecordLogLockedError",
    "StoredRecords",
    "write_records",
]

PathLike = str | os.PathLike[str]

# No record of these files comes near this size (a few texts of a few hundred characters each).
_LONGEST_LINE = 1_000_000


class Record(ABC):
    """What a log stores: a record of one item (a frozen dataclass) that writes itself as one line of JSON."""

    item_id: str

    @staticmethod
    def now() -> str:
        """The current time in the form of a record's ``created`` field: ISO 8601 in UTC, to the second."""
        return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    @abstractmethod
    def to_json(self) -> str:
        """The record as one line of JSON, without the newline."""


R = TypeVar("R", bound=Record)


class BadRecordError(ValueError):
    """A line that is not a record, and the field at fault (``""`` for the whole line)."""

    def __init__(self, message: str, field_name: str = "", value: object = "") -> None:
        super().__init__(message)
        self.field_name = field_name
        self.value = value


class RecordLogLockedError(RuntimeError):
    """Another process is writing the same record file."""


@dataclass(frozen=True)
class RecordFormat(Generic[R]):
    """What a record file holds, and what its messages name.

    Attributes:
        noun: What one record is (``"description"``); a bad line breaks the rule ``bad_<noun>``.
        parse: Reads one line into a record; raises :class:`ValueError` for a line that is not one
            (:class:`BadRecordError` to name the field at fault and its value).
        commands: The ``concierge`` commands that write the file (``("describe", "build")``): all are named when
            its lock is refused; the first is the one to run again after deleting a bad line.
        locked_error: What to raise when another process holds the lock.
    """

    noun: str
    parse: Callable[[str], R]
    commands: tuple[str, ...]
    locked_error: type[RecordLogLockedError]


@dataclass
class StoredRecords(Generic[R]):
    """What a record file holds.

    Attributes:
        path: The file read.
        records: The last record of each item, by item id, in the order items were first seen.
        lines: How many records were read (an item written twice counts twice).
        truncated_line: The line number of a last line cut short by an interrupted write, which was skipped;
            ``None`` when the file ended cleanly.
    """

    path: Path
    records: dict[str, R] = field(default_factory=dict)
    lines: int = 0
    truncated_line: int | None = None

    @classmethod
    def read(cls, path: PathLike, record_format: RecordFormat[R]) -> Self:
        """Read a record file; a missing file holds no records.

        A last line without its newline that is not a complete record is what an interrupted write leaves: it
        is skipped and its number reported in :attr:`truncated_line`.

        Raises:
            DataError: A bad line anywhere else, naming the file, the line and the field when one is at fault.
        """
        stored = cls(Path(path))
        try:
            content = stored.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return stored
        lines = content.split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = record_format.parse(line)
            except ValueError as error:
                if number == len(lines):
                    # Only the last line can lack its newline; a whole record always ends with one.
                    stored.truncated_line = number
                    break
                field_name, shown, rerun = "", line, record_format.commands[0]
                if isinstance(error, BadRecordError) and error.field_name:
                    field_name, shown = error.field_name, error.value
                raise DataError(
                    ValidationIssue(
                        f"bad_{record_format.noun}",
                        stored.path,
                        number,
                        field_name,
                        preview(shown),
                        f"not a {record_format.noun} record ({error})",
                        f"Delete the line (or the file) and run `concierge {rerun}` to write it again.",
                    )
                ) from None
            # Re-inserting moves nothing: an item keeps the position it was first seen at.
            stored.records[record.item_id] = record
            stored.lines += 1
        return stored


class RecordLog(Generic[R]):
    """Appends records to a file, flushing each one, so that an interrupt loses at most one line.

    Opening it takes the file's one-writer lock (``<file>.lock``, an ``flock`` the kernel drops when its holder
    exits, however it exits): two runs appending to one file would each rewrite it at the end without the
    other's records. It then cuts off a truncated last line left by an earlier interrupt (its number is kept in
    :attr:`truncated_line`), so that the next record starts on a line of its own.

    Raises:
        RecordLogLockedError: Another process holds the lock (the format's :attr:`RecordFormat.locked_error`);
            raised at once, not after a wait.
    """

    def __init__(self, path: PathLike, record_format: RecordFormat[R]) -> None:
        self.path = Path(path)
        self.record_format = record_format
        self._stream: IO[str] | None = None
        self._lock: IO[str] | None = None
        self.truncated_line: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            writers = " or ".join(f"`concierge {command}`" for command in self.record_format.commands)
            raise self.record_format.locked_error(
                f"{self.path} is being written by another process (lock file {self.lock_path}). "
                f"Wait for that {writers} to finish, or stop it, then try again."
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
                    # A complete record that only lacks its newline is kept (UnicodeDecodeError is a ValueError).
                    self.record_format.parse(tail[last_start:].decode("utf-8"))
                    raw.write(b"\n")
                except ValueError:
                    raw.seek(0)
                    cut = start + last_start
                    self.truncated_line = raw.read(cut).count(b"\n") + 1
                    raw.truncate(cut)

    def append(self, record: R) -> None:
        """Write one record and flush it to the operating system."""
        if self._stream is None:
            name = type(self).__name__
            raise RuntimeError(f"{name}.append outside a `with {name}(path)` block")
        self._stream.write(record.to_json() + "\n")
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


def write_records(records: Iterable[Record], path: PathLike) -> int:
    """Replace a record file with exactly these records (written to a side file, then renamed).

    Returns:
        How many records were written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            for record in records:
                stream.write(record.to_json() + "\n")
                count += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count
