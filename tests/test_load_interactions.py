"""Interaction loading: one test per validation rule (exact messages), timestamps, formats, writing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.errors import DataError
from data.load import (
    LoadReport,
    Policy,
    iter_interactions,
    load_catalog,
    load_interactions,
    write_interactions,
)
from data.schema import Event, Interaction

FIRST = '{"user_id": "u1", "item_id": "A1"}'
LAST = '{"user_id": "u1", "item_id": "A3"}'


def jsonl(tmp_path: Path, middle: str) -> Path:
    path = tmp_path / "interactions.jsonl"
    path.write_text(f"{FIRST}\n{middle}\n{LAST}\n")
    return path


RULES = [
    pytest.param(
        "missing_user_id",
        '{"item_id": "A2"}',
        "2: field 'user_id': the user_id is missing or empty. Give every row a user_id.",
        id="user-missing",
    ),
    pytest.param(
        "missing_item_id",
        '{"user_id": "u1", "item_id": null}',
        "2: field 'item_id': the item_id is missing or empty. Give every row an item_id.",
        id="item-missing",
    ),
    pytest.param(
        "bad_id",
        '{"user_id": {"id": 1}, "item_id": "A2"}',
        "2: field 'user_id' value \"{'id': 1}\": user_id must be a string or a whole number, found an "
        "object. Write the id as a string or a whole number.",
        id="user-id-object",
    ),
    pytest.param(
        "bad_timestamp",
        '{"user_id": "u1", "item_id": "A2", "timestamp": "yesterday"}',
        "2: field 'timestamp' value 'yesterday': timestamp must be seconds since the epoch or an ISO 8601 "
        "date and time. Use epoch seconds or an ISO 8601 time like 2014-03-01T12:00:00Z, or leave it empty.",
        id="timestamp-text",
    ),
    pytest.param(
        "bad_timestamp",
        '{"user_id": "u1", "item_id": "A2", "timestamp": [2014]}',
        "2: field 'timestamp' value '[2014]': timestamp must be seconds since the epoch or an ISO 8601 date "
        "and time. Use epoch seconds or an ISO 8601 time like 2014-03-01T12:00:00Z, or leave it empty.",
        id="timestamp-list",
    ),
    pytest.param(
        "bad_order",
        '{"user_id": "u1", "item_id": "A2", "order": -1}',
        "2: field 'order' value '-1': order must be a whole number >= 0. Use a whole number >= 0, or leave "
        "it empty.",
        id="order-negative",
    ),
    pytest.param(
        "bad_order",
        '{"user_id": "u1", "item_id": "A2", "order": 1.5}',
        "2: field 'order' value '1.5': order must be a whole number >= 0. Use a whole number >= 0, or leave "
        "it empty.",
        id="order-fraction",
    ),
    pytest.param(
        "bad_event",
        '{"user_id": "u1", "item_id": "A2", "event": "click"}',
        "2: field 'event' value 'click': event must be one of view, cart, purchase, review, rating. Use one "
        "of view, cart, purchase, review, rating, or leave it empty.",
        id="event",
    ),
    pytest.param(
        "bad_value",
        '{"user_id": "u1", "item_id": "A2", "value": "five stars"}',
        "2: field 'value' value 'five stars': value must be a number. Use a number, or leave it empty.",
        id="value",
    ),
    pytest.param(
        "unknown_item_id",
        '{"user_id": "u1", "item_id": "Z9"}',
        "2: field 'item_id' value 'Z9': no item with this id in the catalog. Add the item to the catalog, or "
        "remove the interaction.",
        id="unknown-item",
    ),
    pytest.param(
        "malformed_json",
        '{"user_id": "u1", "item_id": "A2"',
        '2: value \'{"user_id": "u1", "item_id": "A2"\': not valid JSON: Expecting \',\' delimiter at column '
        "35. Fix the JSON on that line: each line holds one complete JSON object.",
        id="malformed-json",
    ),
]


@pytest.mark.parametrize(("rule", "line", "expected"), RULES)
def test_rule(tmp_path: Path, rule: str, line: str, expected: str) -> None:
    path = jsonl(tmp_path, line)
    known = {"A1", "A2", "A3"}
    with pytest.raises(DataError) as raised:
        list(iter_interactions(path, known_items=known, policy=Policy.STRICT))
    assert str(raised.value) == f"{path}:{expected}"
    report = LoadReport(path, "interactions")
    events = list(iter_interactions(path, known_items=known, report=report))
    assert [event.item_id for event in events] == ["A1", "A3"]
    assert (report.rows_read, report.rows_loaded, report.rows_skipped) == (3, 2, 1)
    assert report.issue_counts == {rule: 1}


def test_unknown_items_are_only_checked_against_a_catalog(tmp_path: Path) -> None:
    catalog_path = tmp_path / "items.jsonl"
    catalog_path.write_text('{"item_id": "A1", "title": "Stapler"}\n{"item_id": "A3", "title": "Paper"}\n')
    catalog, _ = load_catalog(catalog_path)
    path = jsonl(tmp_path, '{"user_id": "u2", "item_id": "A2"}')
    interactions, report = load_interactions(path, catalog)
    assert [event.user_id for event in interactions.events] == ["u1", "u1"]
    assert report.issue_counts == {"unknown_item_id": 1}
    assert report.kind == "interactions"
    unchecked, report = load_interactions(path, policy=Policy.STRICT)
    assert len(unchecked) == 3
    assert not report.issue_counts


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (1_390_000_000, 1_390_000_000.0),
        (1_390_000_000.25, 1_390_000_000.25),
        ("1390000000", 1_390_000_000.0),
        ("2014-01-17T23:06:40Z", 1_390_000_000.0),
        ("2014-01-18T00:06:40+01:00", 1_390_000_000.0),
        ("2014-01-17 23:06:40", 1_390_000_000.0),  # naive times are UTC
        ("2014-01-17", 1_389_916_800.0),
        ("", None),
        (None, None),
    ],
)
def test_timestamps(tmp_path: Path, given: object, seconds: float | None) -> None:
    path = tmp_path / "interactions.jsonl"
    path.write_text(f'{{"user_id": "u1", "item_id": "A1", "timestamp": {json_value(given)}}}\n')
    interactions, _ = load_interactions(path, policy=Policy.STRICT)
    assert interactions.events[0].timestamp == seconds


def json_value(value: object) -> str:
    if value is None:
        return "null"
    return f'"{value}"' if isinstance(value, str) else str(value)


def test_all_fields_and_histories(tmp_path: Path) -> None:
    path = tmp_path / "interactions.jsonl"
    path.write_text(
        '{"user_id": 7, "item_id": "A2", "timestamp": 20, "event": "rating", "value": 4.5}\n'
        '{"user_id": 7, "item_id": "A1", "timestamp": 10, "event": "view", "extra": 1}\n'
        '{"user_id": "u2", "item_id": "A1", "order": "3", "event": " purchase "}\n'
    )
    interactions, report = load_interactions(path, policy=Policy.STRICT)
    assert interactions.events == [
        Interaction("7", "A2", timestamp=20.0, event=Event.RATING, value=4.5),
        Interaction("7", "A1", timestamp=10.0, event=Event.VIEW),
        Interaction("u2", "A1", order=3, event=Event.PURCHASE),
    ]
    assert interactions.histories() == {"7": ["A1", "A2"], "u2": ["A1"]}
    assert report.notes == ["unknown field 'extra' is ignored (first seen on line 2)"]


def test_csv_interactions(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,timestamp,order,event,value\n"
        "u1,A1,2014-01-17T23:06:40Z,,view,\n"
        "u1,A2,,x,cart,\n"
        "u2,A1,1390000000,2,,5\n"
    )
    interactions, report = load_interactions(path)
    assert interactions.events == [
        Interaction("u1", "A1", timestamp=1_390_000_000.0, event=Event.VIEW),
        Interaction("u2", "A1", timestamp=1_390_000_000.0, order=2, value=5.0),
    ]
    assert [str(issue) for issue in report.issues] == [
        f"{path}:3: field 'order' value 'x': order must be a whole number >= 0. Use a whole number >= 0, or "
        "leave it empty."
    ]


def test_csv_without_a_user_column(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text("customer,item_id\nu1,A1\n")
    with pytest.raises(DataError) as raised:
        load_interactions(path)
    assert str(raised.value) == (
        f"{path}: no column 'user_id'; the columns are 'customer', 'item_id'. Add or rename the column; "
        "docs/formats.md lists the field names."
    )


def test_parquet_timestamps_and_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "interactions.parquet"
    when = dt.datetime(2014, 1, 17, 23, 6, 40)
    pq.write_table(
        pa.table(
            {
                "user_id": [1, 2],
                "item_id": ["A1", "A2"],
                "timestamp": pa.array([when, None], pa.timestamp("s")),
            }
        ),
        path,
    )
    interactions, _ = load_interactions(path, policy=Policy.STRICT)
    assert interactions.events == [Interaction("1", "A1", timestamp=1_390_000_000.0), Interaction("2", "A2")]


EVENTS = [
    Interaction("u1", "A1", timestamp=1_390_000_000.5, event=Event.VIEW),
    Interaction("u1", "A2", order=0, event=Event.PURCHASE, value=1.0),
    Interaction("u, 2", 'A"3', timestamp=0.0, order=12, event=Event.RATING, value=4.5),
    Interaction("u3", "A1"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_write_then_read_gives_the_same_interactions(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"interactions{suffix}"
    assert write_interactions(iter(EVENTS), path) == len(EVENTS)
    interactions, report = load_interactions(path, policy=Policy.STRICT)
    assert interactions.events == EVENTS
    assert report.rows_loaded == len(EVENTS)
