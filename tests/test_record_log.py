"""The generic record log behind the descriptions and paraphrases files: lock, truncated line, append, load."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from data import record_log
from data.errors import DataError


@dataclass(frozen=True)
class Note(record_log.Record):
    item_id: str
    text: str

    def to_json(self) -> str:
        return json.dumps({"item_id": self.item_id, "text": self.text})


def parse_note(line: str) -> Note:
    record = json.loads(line)
    if not isinstance(record.get("text"), str):
        raise record_log.BadRecordError("'text' must be a string", "text", record.get("text"))
    return Note(record["item_id"], record["text"])


class NotesLockedError(record_log.RecordLogLockedError):
    """Another process is writing the same notes file."""


NOTES = record_log.RecordFormat("note", parse_note, ("note", "build"), NotesLockedError)


def test_a_second_writer_is_refused_naming_the_file_and_the_lock(tmp_path):
    path = tmp_path / "notes.jsonl"
    with record_log.RecordLog(path, NOTES) as log:
        log.append(Note("1", "first"))
        with pytest.raises(NotesLockedError) as error, record_log.RecordLog(path, NOTES):
            pass
    assert str(error.value) == (
        f"{path} is being written by another process (lock file {path}.lock). "
        "Wait for that `concierge note` or `concierge build` to finish, or stop it, then try again."
    )
    assert isinstance(error.value, RuntimeError)
    assert path.read_text(encoding="utf-8") == '{"item_id": "1", "text": "first"}\n'
    with record_log.RecordLog(path, NOTES) as log:  # the lock went with the first writer
        log.append(Note("2", "second"))
    assert path.read_text(encoding="utf-8").count("\n") == 2


def test_a_truncated_last_line_is_cut_and_its_number_kept(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text(
        '{"item_id": "1", "text": "a"}\n{"item_id": "2", "text": "b"}\n{"item_id": "3", "te', "utf-8"
    )
    assert record_log.StoredRecords.read(path, NOTES).truncated_line == 3
    with record_log.RecordLog(path, NOTES) as log:
        assert log.truncated_line == 3
        log.append(Note("4", "d"))
    assert path.read_text(encoding="utf-8") == (
        '{"item_id": "1", "text": "a"}\n{"item_id": "2", "text": "b"}\n{"item_id": "4", "text": "d"}\n'
    )


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"item_id": "1", "text": "a"}', encoding="utf-8")
    with record_log.RecordLog(path, NOTES) as log:
        assert log.truncated_line is None
        log.append(Note("2", "b"))
    assert (
        path.read_text(encoding="utf-8") == '{"item_id": "1", "text": "a"}\n{"item_id": "2", "text": "b"}\n'
    )


def test_each_record_is_flushed_as_it_is_appended(tmp_path):
    path = tmp_path / "new" / "notes.jsonl"
    with record_log.RecordLog(path, NOTES) as log:
        log.append(Note("1", "a"))
        assert path.read_text(encoding="utf-8") == '{"item_id": "1", "text": "a"}\n'
        log.append(Note("1", "b"))
        assert list(record_log.StoredRecords.read(path, NOTES).records.values()) == [Note("1", "b")]
    with pytest.raises(
        RuntimeError,
        match=r"^RecordLog\.append outside a `with RecordLog\(path\)` block$",
    ):
        log.append(Note("2", "c"))


def test_loading_keeps_the_last_record_of_an_item_where_it_was_first_seen(tmp_path):
    path = tmp_path / "notes.jsonl"
    notes = [Note("1", "a"), Note("2", "b"), Note("1", "c")]
    record_log.write_records(notes, path)
    stored = record_log.StoredRecords.read(path, NOTES)
    assert (stored.records, stored.lines, stored.truncated_line) == (
        {"1": Note("1", "c"), "2": Note("2", "b")},
        3,
        None,
    )
    assert record_log.write_records(stored.records.values(), path) == 2
    assert [entry.name for entry in tmp_path.iterdir()] == ["notes.jsonl"]
    assert record_log.StoredRecords.read(tmp_path / "missing.jsonl", NOTES).records == {}


def test_a_bad_line_names_the_file_the_line_and_the_field_when_one_is_at_fault(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"item_id": "1", "text": "a"}\n{"item_id": "2", "text": 7}\n', encoding="utf-8")
    with pytest.raises(DataError) as error:
        record_log.StoredRecords.read(path, NOTES)
    assert str(error.value) == (
        f"{path}:2: field 'text' value '7': not a note record ('text' must be a string). "
        "Delete the line (or the file) and run `concierge note` to write it again."
    )
    path.write_text('{"item_id": "1", "text": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError) as error:
        record_log.StoredRecords.read(path, NOTES)
    assert (error.value.issue.rule, error.value.issue.line, error.value.issue.field) == ("bad_note", 2, "")
    assert error.value.issue.value == "'not json'"
