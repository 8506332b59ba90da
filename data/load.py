"""Load catalogs and interactions from JSONL, CSV or Parquet files, validating every row.

The format is chosen by the file's suffix; the fields and rules are described in ``docs/formats.md``.
Every bad row becomes a :class:`~data.errors.ValidationIssue` with a stable ``rule`` id (see :data:`RULES`).
Under :attr:`Policy.STRICT` the first one is raised as a :class:`~data.errors.DataError`; under
:attr:`Policy.LENIENT` the row is skipped and the finding counted in a :class:`LoadReport`. A problem with
the whole file (missing, empty, unknown suffix, no data rows, a missing required column) is raised whatever
the policy.

Files are streamed: text formats are read in binary with a bounded ``readline`` so that one huge line never
sits in memory whole, and Parquet is read in record batches.

Example:
    >>> catalog, report = load_catalog("items.jsonl")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    items.jsonl: 2,420 rows read, 2,418 loaded, 2 skipped
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from data.errors import DataError, ValidationIssue, preview
from data.normalize import clean_text, split_category_path
from data.schema import Catalog, Event, Interaction, Interactions, Item, Price
from data.settings import DataSettings

if TYPE_CHECKING:
    import _csv

    import pyarrow as pa

__all__ = [
    "RULES",
    "LoadReport",
    "Policy",
    "iter_interactions",
    "iter_items",
    "load_catalog",
    "load_interactions",
    "write_interactions",
    "write_items",
]

T = TypeVar("T")
Record = Mapping[str, object]
PathLike = str | os.PathLike[str]


class Policy(StrEnum):
    """What a load does with a bad row: raise at the first one, or skip and report every one."""

    STRICT = "strict"
    LENIENT = "lenient"


_DEFAULT_SETTINGS = DataSettings()

# Every rule id with the hint a person gets: what to do about it. Messages (what is wrong) are built where the
# rule is checked, since they carry the details of the case.
RULES: Mapping[str, str] = {
    # Whole-file problems, raised whatever the policy.
    "file_not_found": "Check the path (or the paths section of the settings).",
    "unreadable_file": "Check that the file is readable and in the format its suffix says.",
    "unknown_suffix": "Name the file .jsonl, .ndjson, .csv or .parquet after its format.",
    "empty_file": "Point to a file that holds data; docs/formats.md describes the fields.",
    "no_rows": "Add rows to the file: blank lines, or a CSV header alone, hold no data.",
    "missing_column": "Add or rename the column; docs/formats.md lists the field names.",
    "duplicate_column": "Give each column its own name.",
    # Bad rows.
    "not_utf8": "Save the file as UTF-8, or fix the bytes on that line.",
    "line_too_long": "Shorten or split the line, or raise data.max_line_bytes in the settings.",
    "malformed_json": "Fix the JSON on that line: each line holds one complete JSON object.",
    "not_an_object": 'Write each row as a JSON object, like {"item_id": "A1", "title": "Stapler"}.',
    "malformed_csv": "Quote values that hold commas, quotes or line breaks; double the quotes inside them.",
    "column_count": "Make the row match the header; quote values that hold commas.",
    "field_too_long": "Shorten the value, or raise data.max_field_chars in the settings.",
    "missing_item_id": "Give every row an item_id.",
    "missing_user_id": "Give every row a user_id.",
    "bad_id": "Write the id as a string or a whole number.",
    "duplicate_item_id": "Give each item its own id, or remove the repeated row.",
    "missing_title": "Give every item a title.",
    "bad_text": "Write the value as a string, or leave it empty.",
    "bad_price": "Fix the price or leave it empty.",
    "bad_currency": "Use a three-letter ISO 4217 code in capitals, such as USD or EUR, or leave it empty.",
    "bad_categories": "Give the categories as a list of strings or as a path like 'Office Products > Paper'.",
    "bad_attributes": "Give the attributes as a JSON object of names to strings, numbers or booleans.",
    "bad_image_url": "Use a full http:// or https:// address, or leave it empty.",
    "unknown_item_id": "Add the item to the catalog, or remove the interaction.",
    "bad_timestamp": "Use epoch seconds or an ISO 8601 time like 2014-03-01T12:00:00Z, or leave it empty.",
    "bad_order": "Use a whole number >= 0, or leave it empty.",
    "bad_event": f"Use one of {', '.join(Event)}, or leave it empty.",
    "bad_value": "Use a number, or leave it empty.",
}

_BOM = b"\xef\xbb\xbf"
# The rest of an over-long line is skipped in pieces of this size, so it never sits in memory whole.
_SKIP_CHUNK = 1 << 16
_PARQUET_BATCH_ROWS = 4096
_WRITE_BATCH_ROWS = 10_000
# A file whose rows each carry new field names would otherwise fill the notes.
_MAX_UNKNOWN_FIELD_NOTES = 20
_CURRENCY = re.compile(r"[A-Z]{3}")
_PATH_SEPARATORS = re.compile(r"[>|]")
_NUMBER = int | float | Decimal


@dataclass
class LoadReport:
    """What one load did: rows read and loaded, every finding counted, the first ones kept in full.

    Attributes:
        file: The file loaded.
        kind: ``"catalog"`` or ``"interactions"``.
        rows_read: Data rows met, good or bad (blank lines and a CSV header are not rows).
        rows_loaded: Rows that became records.
        issue_counts: Rule id -> number of findings; every finding is counted.
        issues: The first ``DataSettings.max_reported_issues`` findings, in full.
        notes: Things worth knowing that are not errors (a byte-order mark removed, unknown fields ignored).
    """

    file: Path
    kind: str
    rows_read: int = 0
    rows_loaded: int = 0
    issue_counts: collections.Counter[str] = field(default_factory=collections.Counter)
    issues: list[ValidationIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return self.rows_read - self.rows_loaded

    def summary(self) -> str:
        """A few lines for a person: the counts, the findings per rule, the findings kept, the notes."""
        counts = f"{self.rows_read:,} rows read, {self.rows_loaded:,} loaded, {self.rows_skipped:,} skipped"
        lines = [f"{self.file}: {counts}"]
        if self.issue_counts:
            lines.append("findings by rule:")
            lines += [f"  {rule}: {count:,}" for rule, count in sorted(self.issue_counts.items())]
            lines.append("findings:")
            lines += [f"  {issue}" for issue in self.issues]
            if (more := self.issue_counts.total() - len(self.issues)) > 0:
                lines.append(f"  ... and {more:,} more")
        if self.notes:
            lines.append("notes:")
            lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def _add(self, issue: ValidationIssue, keep: int) -> None:
        self.issue_counts[issue.rule] += 1
        if len(self.issues) < keep:
            self.issues.append(issue)


class _Invalid(Exception):
    """A bad row or file, found while reading or checking a field; the caller adds the file and line."""

    def __init__(self, rule: str, message: str, field: str = "", value: str = ""):
        super().__init__(message)
        self.rule, self.message, self.field, self.value = rule, message, field, value

    def issue(self, file: Path, line: int) -> ValidationIssue:
        return ValidationIssue(self.rule, file, line, self.field, self.value, self.message, RULES[self.rule])


@dataclass
class _Layout:
    """The fields of one kind of record; ``columns`` in the order files are written."""

    kind: str
    required: tuple[str, ...]
    columns: tuple[str, ...]
    known: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.known = frozenset(self.columns)


_ITEMS = _Layout(
    "catalog",
    ("item_id", "title"),
    (
        "item_id",
        "title",
        "description",
        "brand",
        "categories",
        "price",
        "currency",
        "attributes",
        "image_url",
    ),
)
_INTERACTIONS = _Layout(
    "interactions", ("user_id", "item_id"), ("user_id", "item_id", "timestamp", "order", "event", "value")
)


@dataclass(slots=True)
class _Source:
    """One file being read: where findings and notes go."""

    path: Path
    layout: _Layout
    settings: DataSettings
    report: LoadReport
    # Known field names plus the unknown ones already noted, so that a row's fields are checked in one step.
    accepted: set[str] = field(init=False)
    watching: bool = True

    def __post_init__(self) -> None:
        self.accepted = set(self.layout.known)

    def fatal(self, invalid: _Invalid, line: int = 0) -> DataError:
        """The error for a problem that stops the load whatever the policy; counted in the report too."""
        issue = invalid.issue(self.path, line)
        self.report._add(issue, self.settings.max_reported_issues)
        return DataError(issue)

    def note_unknown(self, fields: Iterable[str], line: int | None) -> None:
        """Mention each unknown field once, up to a cap."""
        for name in sorted(set(fields) - self.accepted):
            if len(self.accepted) - len(self.layout.known) == _MAX_UNKNOWN_FIELD_NOTES:
                self.report.notes.append("more unknown fields are ignored but not listed")
                self.watching = False
                return
            self.accepted.add(name)
            where = f" (first seen on line {line})" if line else ""
            self.report.notes.append(f"unknown field {name!r} is ignored{where}")

    def check_fields(self, record: Record, line: int) -> None:
        if self.watching and not self.accepted.issuperset(record):
            self.note_unknown(record, line)


# --- reading ------------------------------------------------------------------------------------------------


def _skip_bom(stream: IO[bytes], source: _Source) -> None:
    if stream.read(len(_BOM)) == _BOM:
        source.report.notes.append("a UTF-8 byte-order mark at the start of the file was removed")
    else:
        stream.seek(0)


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    """Read past the end of the current line without holding it; the number of bytes before its line break."""
    skipped = 0
    while chunk := stream.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return skipped + len(chunk) - 1
        skipped += len(chunk)
    return skipped


def _lines(stream: IO[bytes], source: _Source) -> Iterator[tuple[int, str, _Invalid | None]]:
    """Each physical line with its 1-based number, decoded, and the finding when the line is bad.

    A bad line still comes with a text, so that a CSV parser keeps its place: a non-UTF-8 line decoded with
    replacement characters, an over-long one (never read whole) as an empty line.
    """
    _skip_bom(stream, source)
    most = source.settings.max_line_bytes
    for number in itertools.count(1):
        raw = stream.readline(most + 1)
        if not raw:
            return
        if len(raw) > most and not raw.endswith(b"\n"):
            yield number, "\n", _too_long(raw, len(raw) + _skip_rest_of_line(stream), most)
            continue
        try:
            yield number, raw.decode("utf-8"), None
        except UnicodeDecodeError as error:
            yield number, raw.decode("utf-8", "replace"), _not_utf8(raw, error)


def _too_long(start: bytes, length: int, most: int) -> _Invalid:
    # The value shown is the start of the line, enough to find it in an editor that chokes on it.
    return _Invalid(
        "line_too_long",
        f"the line is {length:,} bytes long; the limit is {most:,} (data.max_line_bytes)",
        value=preview(start[:40].decode("utf-8", "replace")),
    )


def _not_utf8(raw: bytes, error: UnicodeDecodeError) -> _Invalid:
    around = raw[max(0, error.start - 30) : error.start + 10].decode("utf-8", "replace").rstrip("\r\n")
    return _Invalid(
        "not_utf8",
        f"the line is not valid UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start:,} "
        f"({error.reason})",
        value=preview(around),
    )


def _jsonl_records(stream: IO[bytes], source: _Source) -> Iterator[tuple[int, Record | _Invalid]]:
    for line, text, invalid in _lines(stream, source):
        if invalid is not None:
            yield line, invalid
        elif not text.isspace():
            yield line, _json_object(text, source, line)


def _json_object(text: str, source: _Source, line: int) -> Record | _Invalid:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        # `pos`, not `colno`: the text ends with its line break, after which json counts a second line.
        return _Invalid(
            "malformed_json", f"not valid JSON: {error.msg} at column {error.pos + 1}", value=_shown(text)
        )
    except (ValueError, RecursionError) as error:  # over-long integers, absurd nesting
        return _Invalid("malformed_json", f"not valid JSON: {error}", value=_shown(text))
    if not isinstance(record, dict):
        return _Invalid(
            "not_an_object", f"a row must be a JSON object, found {_kind(record)}", value=_shown(text)
        )
    source.check_fields(record, line)
    return record


def _shown(line: str) -> str:
    return preview(line.rstrip("\r\n"))


def _csv_records(stream: IO[bytes], source: _Source) -> Iterator[tuple[int, Record | _Invalid]]:
    # The finding of a bad line waits in `broken` while the parser takes the line in; the row that took it in
    # is then skipped, reported by that finding.
    broken: list[tuple[int, _Invalid]] = []
    reader = csv.reader(_csv_text(_lines(stream, source), broken))
    columns: list[tuple[int, str]] | None = None
    width = 0
    while (parsed := _next_csv_row(reader)) is not None:
        start, row = parsed
        spoiled = broken.copy()
        broken.clear()
        if columns is None:
            if spoiled or isinstance(row, _Invalid):
                line, invalid = spoiled[0] if spoiled else (start, row)
                raise source.fatal(invalid, line)
            if not _blank(row):
                width = len(row)
                columns = _csv_columns(row, source)
            continue
        if spoiled:
            yield from spoiled
        elif isinstance(row, _Invalid):
            yield start, row
        elif not _blank(row):
            yield start, _csv_record(row, width, columns)
    if columns is None:
        raise source.fatal(_Invalid("no_rows", "the file has no header and no data rows, only blank lines"))


def _csv_text(
    lines: Iterator[tuple[int, str, _Invalid | None]], broken: list[tuple[int, _Invalid]]
) -> Iterator[str]:
    for line, text, invalid in lines:
        if invalid is not None:
            broken.append((line, invalid))
        yield text


def _next_csv_row(reader: _csv._reader) -> tuple[int, list[str] | _Invalid] | None:
    """The next row and the line it starts on, or ``None`` at the end."""
    start = reader.line_num + 1
    try:
        return start, next(reader)
    except StopIteration:
        return None
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            limit = csv.field_size_limit()
            return start, _Invalid(
                "field_too_long", f"a value is longer than the CSV limit of {limit:,} characters"
            )
        # The csv module's advice for this one (open the file in another mode) is no help to a reader.
        if "new-line character seen in unquoted field" in str(error):
            return start, _Invalid(
                "malformed_csv", "a carriage return (\\r) inside a value that is not quoted"
            )
        return start, _Invalid("malformed_csv", f"not valid CSV: {error}")


def _blank(row: list[str]) -> bool:
    # Spreadsheets export empty rows as a run of commas; they are blank lines too.
    return not any(cell.strip() for cell in row)


def _csv_columns(header: list[str], source: _Source) -> list[tuple[int, str]]:
    names = [name.strip() for name in header]
    _check_columns(names, source)
    return [(index, name) for index, name in enumerate(names) if name in source.layout.known]


def _csv_record(row: list[str], width: int, columns: list[tuple[int, str]]) -> Record | _Invalid:
    if len(row) > width and _blank(row[width:]):
        row = row[:width]
    if len(row) != width:
        return _Invalid("column_count", f"the row has {len(row)} values but the header has {width} columns")
    return {name: row[index] if row[index].strip() else None for index, name in columns}


def _check_columns(names: list[str], source: _Source) -> None:
    """Whole-file checks of a header: required columns present, no name twice; unknown columns noted."""
    if missing := [name for name in source.layout.required if name not in names]:
        found = ", ".join(repr(name) for name in names) or "none"
        raise source.fatal(
            _Invalid(
                "missing_column", f"no column {' or '.join(map(repr, missing))}; the columns are {found}"
            )
        )
    counts = collections.Counter(name for name in names if name)
    if twice := sorted(name for name, count in counts.items() if count > 1):
        raise source.fatal(
            _Invalid("duplicate_column", f"column {', '.join(map(repr, twice))} appears twice")
        )
    source.note_unknown((name for name in names if name), None)


def _parquet_records(stream: IO[bytes], source: _Source) -> Iterator[tuple[int, Record | _Invalid]]:
    # Imported here: pyarrow takes a while to import and only Parquet files need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
        schema = parquet.schema_arrow
        _check_columns(schema.names, source)
        columns = [name for name in schema.names if name in source.layout.known]
        # Map columns come back as lists of (key, value) pairs.
        maps = [name for name in columns if pa.types.is_map(schema.field(name).type)]
        row = 0
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
            for record in batch.to_pylist():
                row += 1
                for name in maps:
                    if record[name] is not None:
                        record[name] = dict(record[name])
                yield row, record
    except (pa.ArrowException, OSError) as error:
        raise source.fatal(_Invalid("unreadable_file", f"not a readable Parquet file ({error})")) from None


_READERS: dict[str, Callable[[IO[bytes], _Source], Iterator[tuple[int, Record | _Invalid]]]] = {
    ".jsonl": _jsonl_records,
    ".ndjson": _jsonl_records,
    ".csv": _csv_records,
    ".parquet": _parquet_records,
}


def _rows(
    path: Path, layout: _Layout, settings: DataSettings, report: LoadReport
) -> Iterator[tuple[int, Record | _Invalid]]:
    """Every data row of a file with its line (row) number; whole-file problems raised as DataError."""
    source = _Source(path, layout, settings, report)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(_READERS)
        raise source.fatal(_Invalid("unknown_suffix", f"unknown file type {path.suffix!r}; known: {known}"))
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise source.fatal(_Invalid("file_not_found", "the file does not exist")) from None
    except OSError as error:
        raise source.fatal(
            _Invalid("unreadable_file", f"the file cannot be read ({error.strerror})")
        ) from None
    rows = 0
    with stream:
        if os.fstat(stream.fileno()).st_size == 0:
            raise source.fatal(_Invalid("empty_file", "the file is empty"))
        for row in reader(stream, source):
            rows += 1
            report.rows_read += 1
            yield row
    if rows == 0:
        raise source.fatal(_Invalid("no_rows", "the file has no data rows"))


def _validated(
    path: Path,
    layout: _Layout,
    build: Callable[[Record, int], T],
    policy: Policy,
    settings: DataSettings,
    report: LoadReport,
) -> Iterator[T]:
    """Build a record from each row; a bad row is raised (strict) or counted and skipped (lenient)."""
    for line, row in _rows(path, layout, settings, report):
        try:
            if isinstance(row, _Invalid):
                raise row
            record = build(row, line)
        except _Invalid as invalid:
            issue = invalid.issue(path, line)
            report._add(issue, settings.max_reported_issues)
            if policy == Policy.STRICT:
                raise DataError(issue) from None
            continue
        report.rows_loaded += 1
        yield record


# --- fields -------------------------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """A value's type in the words of JSON, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, _NUMBER):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _bounded(value: str, name: str, settings: DataSettings) -> str:
    if len(value) > settings.max_field_chars:
        raise _Invalid(
            "field_too_long",
            f"the value is {len(value):,} characters long; the limit is {settings.max_field_chars:,} "
            "(data.max_field_chars)",
            name,
            preview(value),
        )
    return value


def _blank_value(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(value: object, name: str, missing_rule: str, settings: DataSettings) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is not None and not isinstance(value, str):
        raise _Invalid(
            "bad_id", f"{name} must be a string or a whole number, found {_kind(value)}", name, preview(value)
        )
    cleaned = clean_text(_bounded(value, name, settings)) if value is not None else ""
    if not cleaned:
        raise _Invalid(missing_rule, f"the {name} is missing or empty", name)
    return cleaned


def _text(value: object, name: str, settings: DataSettings) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid("bad_text", f"{name} must be a string, found {_kind(value)}", name, preview(value))
    return clean_text(_bounded(value, name, settings))


def _title(value: object, settings: DataSettings) -> str:
    if title := _text(value, "title", settings):
        return title
    raise _Invalid("missing_title", "the title is missing or empty", "title")


def _number(value: object, name: str, rule: str, message: str) -> float | None:
    """A finite number from a number or a numeric string; ``None`` when empty."""
    if _blank_value(value):
        return None
    number = math.nan
    if isinstance(value, _NUMBER | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(value)
    if not math.isfinite(number):
        raise _Invalid(rule, message, name, preview(value))
    return number


def _price(record: Record, settings: DataSettings) -> Price | None:
    value = record.get("price")
    message = "price must be a number >= 0"
    amount = _number(value, "price", "bad_price", message)
    currency = _currency(record.get("currency"), settings)
    if amount is None:
        return None
    if amount < 0:
        raise _Invalid("bad_price", message, "price", preview(value))
    return Price(amount, currency)


def _currency(value: object, settings: DataSettings) -> str:
    if _blank_value(value):
        return settings.default_currency
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.strip()):
        raise _Invalid(
            "bad_currency", "currency must be three capital letters A-Z", "currency", preview(value)
        )
    return sys.intern(value.strip())


def _categories(value: object, settings: DataSettings) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        levels = _json_list(_bounded(value, "categories", settings))
        if levels is None:
            return split_category_path(value)
        value = levels
    if not isinstance(value, list | tuple):
        message = f"categories must be a list of strings or a path string, found {_kind(value)}"
        raise _Invalid("bad_categories", message, "categories", preview(value))
    for position, level in enumerate(value, 1):
        if not isinstance(level, str):
            message = f"categories must be a list of strings, but level {position} is {_kind(level)}"
            raise _Invalid("bad_categories", message, "categories", preview(value))
        _bounded(level, "categories", settings)
    return split_category_path(list(value))


def _json_list(text: str) -> object | None:
    """The list a string holds as JSON (how CSV carries levels that contain a separator), else ``None``."""
    if not text.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, list) else None


def _attributes(value: object, settings: DataSettings) -> tuple[tuple[str, str], ...]:
    if _blank_value(value):
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(_bounded(value, "attributes", settings))
        except (ValueError, RecursionError) as error:
            raise _Invalid(
                "bad_attributes", f"attributes text is not valid JSON ({error})", "attributes", preview(value)
            ) from None
    if not isinstance(value, dict):
        raise _Invalid(
            "bad_attributes",
            f"attributes must be a JSON object, found {_kind(value)}",
            "attributes",
            preview(value),
        )
    pairs: dict[str, str] = {}
    for key, raw in value.items():
        if raw is None:  # a null attribute is an absent one
            continue
        name = clean_text(_bounded(str(key), "attributes", settings))
        if not name or not isinstance(raw, str | _NUMBER) or name in pairs:
            raise _Invalid(
                "bad_attributes", _attribute_problem(name, raw, pairs), "attributes", preview(value)
            )
        pairs[sys.intern(name)] = clean_text(_bounded(str(raw), "attributes", settings))
    return tuple(sorted(pairs.items()))


def _attribute_problem(name: str, raw: object, pairs: Mapping[str, str]) -> str:
    if not name:
        return "an attribute name is empty"
    if name in pairs:
        return f"attribute {name!r} is given twice"
    return f"attribute {name!r} must be a string, a number or a boolean, found {_kind(raw)}"


def _image_url(value: object, settings: DataSettings) -> str:
    url = _text(value, "image_url", settings)
    if url and not url.lower().startswith(("http://", "https://")):
        raise _Invalid(
            "bad_image_url", "image_url must start with http:// or https://", "image_url", preview(value)
        )
    return url


def _item(record: Record, settings: DataSettings) -> Item:
    # Keyword arguments are evaluated in order: a row's first bad field, in this order, is the one reported.
    # Brands and category levels repeat across a catalog: interned, each is held once (a sixth less memory
    # for the catalog of benchmarks/bench_data.py).
    return Item(
        item_id=_id(record.get("item_id"), "item_id", "missing_item_id", settings),
        title=_title(record.get("title"), settings),
        description=_text(record.get("description"), "description", settings),
        brand=sys.intern(_text(record.get("brand"), "brand", settings)),
        categories=tuple(map(sys.intern, _categories(record.get("categories"), settings))),
        price=_price(record, settings),
        attributes=_attributes(record.get("attributes"), settings),
        image_url=_image_url(record.get("image_url"), settings),
    )


_TIMESTAMP_PROBLEM = "timestamp must be seconds since the epoch or an ISO 8601 date and time"


def _timestamp(value: object) -> float | None:
    """Epoch seconds from a number, a numeric or ISO 8601 string, or a datetime (naive ones are UTC)."""
    if isinstance(value, str) and not _blank_value(value):
        value = _parse_time(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return _number(value, "timestamp", "bad_timestamp", _TIMESTAMP_PROBLEM)


def _parse_time(text: str) -> object:
    """Seconds as a float, an ISO 8601 time as a datetime, anything else unchanged (and then rejected)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return text


def _order(value: object) -> int | None:
    if _blank_value(value):
        return None
    order = -1
    if isinstance(value, int) and not isinstance(value, bool):
        order = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            order = int(value)
    if order < 0:
        raise _Invalid("bad_order", "order must be a whole number >= 0", "order", preview(value))
    return order


def _event(value: object) -> Event | None:
    if _blank_value(value):
        return None
    try:
        return Event(clean_text(value) if isinstance(value, str) else value)
    except ValueError:
        raise _Invalid(
            "bad_event", f"event must be one of {', '.join(Event)}", "event", preview(value)
        ) from None


def _interaction(record: Record, settings: DataSettings, known_items: Container[str] | None) -> Interaction:
    # Shoppers and items come back many times in a log: interned, each id is held once.
    interaction = Interaction(
        user_id=sys.intern(_id(record.get("user_id"), "user_id", "missing_user_id", settings)),
        item_id=sys.intern(_id(record.get("item_id"), "item_id", "missing_item_id", settings)),
        timestamp=_timestamp(record.get("timestamp")),
        order=_order(record.get("order")),
        event=_event(record.get("event")),
        value=_number(record.get("value"), "value", "bad_value", "value must be a number"),
    )
    if known_items is not None and interaction.item_id not in known_items:
        raise _Invalid(
            "unknown_item_id", "no item with this id in the catalog", "item_id", preview(interaction.item_id)
        )
    return interaction


# --- loading ------------------------------------------------------------------------------------------------


def iter_items(
    path: PathLike,
    *,
    policy: Policy = Policy.LENIENT,
    settings: DataSettings = _DEFAULT_SETTINGS,
    report: LoadReport | None = None,
) -> Iterator[Item]:
    """Stream the valid items of a catalog file, in file order.

    Memory stays flat apart from the items yielded and one id -> line entry per item, kept to report
    duplicates (the first occurrence of an id is kept).

    Args:
        path: A ``.jsonl``, ``.ndjson``, ``.csv`` or ``.parquet`` file.
        policy: Raise at the first bad row (``STRICT``) or skip and report bad rows (``LENIENT``).
        settings: Limits and the default currency.
        report: Filled in while iterating, when given.

    Raises:
        DataError: While iterating: a whole-file problem, or under ``STRICT`` the first bad row.
    """
    path = Path(path)
    report = report if report is not None else LoadReport(path, _ITEMS.kind)
    unit = "row" if path.suffix.lower() == ".parquet" else "line"
    first_lines: dict[str, int] = {}

    def build(record: Record, line: int) -> Item:
        item = _item(record, settings)
        first = first_lines.setdefault(item.item_id, line)
        if first != line:
            raise _Invalid(
                "duplicate_item_id",
                f"this item id was first seen on {unit} {first}; that first occurrence is kept",
                "item_id",
                preview(item.item_id),
            )
        return item

    return _validated(path, _ITEMS, build, policy, settings, report)


def load_catalog(
    path: PathLike, *, policy: Policy = Policy.LENIENT, settings: DataSettings = _DEFAULT_SETTINGS
) -> tuple[Catalog, LoadReport]:
    """Load a whole catalog; see :func:`iter_items`.

    Raises:
        DataError: A whole-file problem, or under ``STRICT`` the first bad row.
    """
    report = LoadReport(Path(path), _ITEMS.kind)
    items = list(iter_items(path, policy=policy, settings=settings, report=report))
    return Catalog(items), report


def iter_interactions(
    path: PathLike,
    *,
    known_items: Container[str] | None = None,
    policy: Policy = Policy.LENIENT,
    settings: DataSettings = _DEFAULT_SETTINGS,
    report: LoadReport | None = None,
) -> Iterator[Interaction]:
    """Stream the valid interactions of a file, in file order, in constant memory.

    Args:
        path: A ``.jsonl``, ``.ndjson``, ``.csv`` or ``.parquet`` file.
        known_items: When given, an interaction with an item id not in it is a bad row (``unknown_item_id``).
        policy: Raise at the first bad row (``STRICT``) or skip and report bad rows (``LENIENT``).
        settings: Limits.
        report: Filled in while iterating, when given.

    Raises:
        DataError: While iterating: a whole-file problem, or under ``STRICT`` the first bad row.
    """
    path = Path(path)
    report = report if report is not None else LoadReport(path, _INTERACTIONS.kind)
    return _validated(
        path,
        _INTERACTIONS,
        lambda record, _line: _interaction(record, settings, known_items),
        policy,
        settings,
        report,
    )


def load_interactions(
    path: PathLike,
    catalog: Catalog | None = None,
    *,
    policy: Policy = Policy.LENIENT,
    settings: DataSettings = _DEFAULT_SETTINGS,
) -> tuple[Interactions, LoadReport]:
    """Load every interaction of a file; with a catalog, interactions with unknown items are bad rows.

    Raises:
        DataError: A whole-file problem, or under ``STRICT`` the first bad row.
    """
    report = LoadReport(Path(path), _INTERACTIONS.kind)
    events = list(
        iter_interactions(path, known_items=catalog, policy=policy, settings=settings, report=report)
    )
    return Interactions(events), report


# --- writing ------------------------------------------------------------------------------------------------


def write_items(items: Iterable[Item], path: PathLike) -> int:
    """Write items in the standard form, the format chosen by the suffix; returns the count written.

    The file is written under a temporary name and renamed at the end, so a failed write leaves no half file.
    """
    return _write(map(_item_record, items), Path(path), _ITEMS)


def write_interactions(events: Iterable[Interaction], path: PathLike) -> int:
    """Write interactions in the standard form, the format chosen by the suffix; returns the count written.

    The file is written under a temporary name and renamed at the end, so a failed write leaves no half file.
    """
    return _write(map(_interaction_record, events), Path(path), _INTERACTIONS)


def _item_record(item: Item) -> dict[str, object]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "description": item.description,
        "brand": item.brand,
        "categories": list(item.categories),
        "price": item.price.amount if item.price else None,
        "currency": item.price.currency if item.price else None,
        "attributes": dict(item.attributes),
        "image_url": item.image_url,
    }


def _interaction_record(event: Interaction) -> dict[str, object]:
    return {
        "user_id": event.user_id,
        "item_id": event.item_id,
        "timestamp": event.timestamp,
        "order": event.order,
        "event": event.event.value if event.event else None,
        "value": event.value,
    }


def _write(records: Iterator[dict[str, object]], path: Path, layout: _Layout) -> int:
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        known = ", ".join(_READERS)
        raise DataError(
            _Invalid("unknown_suffix", f"unknown file type {suffix!r}; known: {known}").issue(path, 0)
        )
    partial = path.with_name(path.name + ".partial")
    try:
        if suffix == ".parquet":
            count = _write_parquet(records, partial, layout)
        else:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                count = (
                    _write_csv(records, stream, layout) if suffix == ".csv" else _write_jsonl(records, stream)
                )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _write_jsonl(records: Iterator[dict[str, object]], stream: IO[str]) -> int:
    count = 0
    for record in records:
        # Empty optional fields are left out: every reader treats a missing field and an empty one alike.
        present = {key: value for key, value in record.items() if value not in (None, "", [], {})}
        stream.write(json.dumps(present, ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_csv(records: Iterator[dict[str, object]], stream: IO[str], layout: _Layout) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(layout.columns)
    count = 0
    for record in records:
        writer.writerow([_cell(value) for value in record.values()])
        count += 1
    return count


def _cell(value: object) -> str:
    """A CSV cell: lists (categories) as a path, objects (attributes) as JSON, floats exactly."""
    if value is None:
        return ""
    if isinstance(value, list):
        path = " > ".join(value)
        # A level holding a separator, or a path that would read as JSON, is written as a JSON list instead.
        if any(_PATH_SEPARATORS.search(level) for level in value) or path.startswith("["):
            return json.dumps(value, ensure_ascii=False)
        return path
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _arrow_schema(layout: _Layout) -> pa.Schema:
    import pyarrow as pa

    types = {
        "categories": pa.list_(pa.string()),
        "attributes": pa.map_(pa.string(), pa.string()),
        "price": pa.float64(),
        "timestamp": pa.float64(),
        "value": pa.float64(),
        "order": pa.int64(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in layout.columns])


def _write_parquet(records: Iterator[dict[str, object]], path: Path, layout: _Layout) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(layout)
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        while batch := list(itertools.islice(records, _WRITE_BATCH_ROWS)):
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
