"""Validation findings and the errors that carry them.

Every finding names where it happened (file and line or row), the field, the offending value and what to do,
so that a person can fix the source file without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_VALUE_PREVIEW = 80


def preview(value: object) -> str:
    """A short, printable rendering of a bad value (long values are cut, with their full length stated)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _VALUE_PREVIEW:
        return f"{text[:_VALUE_PREVIEW]!r}... ({len(text):,} characters)"
    return repr(text)


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One bad row (or a bad file) found while loading data.

    Attributes:
        rule: A stable identifier of the broken rule (``"missing_title"``), used for counting.
        file: The file the row came from.
        line: 1-based line number (JSONL, CSV) or row number (Parquet); 0 when the whole file is at fault.
        field: The field at fault, or ``""`` when the whole row or file is.
        value: A preview of the offending value (see :func:`preview`), or ``""``.
        message: What is wrong.
        hint: What to do about it.
    """

    rule: str
    file: Path
    line: int
    field: str
    value: str
    message: str
    hint: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        what = f" field '{self.field}'" if self.field else ""
        value = f" value {self.value}" if self.value else ""
        at = f"{what}{value}:" if what or value else ""
        return f"{where}:{at} {self.message}. {self.hint}"


class DataError(Exception):
    """Bad input data. ``str(error)`` is a complete sentence for a person; ``issue`` holds the details."""

    def __init__(self, issue: ValidationIssue):
        super().__init__(str(issue))
        self.issue = issue
