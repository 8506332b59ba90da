"""Catalog loading: one test per validation rule (exact messages), formats, streaming, writing."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.errors import DataError
from data.load import RULES, LoadReport, Policy, iter_items, load_catalog, write_items
from data.normalize import clean_text
from data.schema import Item, Price
from data.settings import DataSettings

FIRST = '{"item_id": "A1", "title": "Stapler"}'
LAST = '{"item_id": "A3", "title": "Paper"}'
DEFAULTS = DataSettings()


def jsonl(tmp_path: Path, middle: str | bytes, name: str = "items.jsonl") -> Path:
    """A three-line catalog whose second line is `middle`."""
    path = tmp_path / name
    middle = middle if isinstance(middle, bytes) else middle.encode()
    path.write_bytes(FIRST.encode() + b"\n" + middle + b"\n" + LAST.encode() + b"\n")
    return path


def ids(catalog: object) -> list[str]:
    return [item.item_id for item in catalog]


def assert_rule(path: Path, rule: str, expected: str, data_settings: DataSettings = DEFAULTS) -> None:
    """Strict raises `expected` (after the file name); lenient skips the one bad row and loads the others."""
    with pytest.raises(DataError) as raised:
        load_catalog(path, policy=Policy.STRICT, settings=data_settings)
    assert str(raised.value) == f"{path}:{expected}"
    assert raised.value.issue.rule == rule
    catalog, report = load_catalog(path, settings=data_settings)
    assert ids(catalog) == ["A1", "A3"]
    assert (report.rows_read, report.rows_loaded, report.rows_skipped) == (3, 2, 1)
    assert report.issue_counts == {rule: 1}
    assert [str(issue) for issue in report.issues] == [f"{path}:{expected}"]


JSONL_RULES = [
    pytest.param(
        "missing_title",
        '{"item_id": "A2"}',
        "2: field 'title': the title is missing or empty. Give every item a title.",
        id="title-missing",
    ),
    pytest.param(
        "missing_title",
        '{"item_id": "A2", "title": " &nbsp; \\n"}',
        "2: field 'title': the title is missing or empty. Give every item a title.",
        id="title-blank-after-cleaning",
    ),
    pytest.param(
        "missing_item_id",
        '{"item_id": "", "title": "Pen"}',
        "2: field 'item_id': the item_id is missing or empty. Give every row an item_id.",
        id="item-id-empty",
    ),
    pytest.param(
        "missing_item_id",
        '{"title": "Pen"}',
        "2: field 'item_id': the item_id is missing or empty. Give every row an item_id.",
        id="item-id-missing",
    ),
    pytest.param(
        "bad_id",
        '{"item_id": 2.5, "title": "Pen"}',
        "2: field 'item_id' value '2.5': item_id must be a string or a whole number, found a number. "
        "Write the id as a string or a whole number.",
        id="item-id-float",
    ),
    pytest.param(
        "duplicate_item_id",
        '{"item_id": "A1", "title": "Another stapler"}',
        "2: field 'item_id' value 'A1': this item id was first seen on line 1; that first occurrence is "
        "kept. Give each item its own id, or remove the repeated row.",
        id="duplicate-id",
    ),
    pytest.param(
        "bad_text",
        '{"item_id": "A2", "title": "Pen", "brand": ["Bic"]}',
        "2: field 'brand' value \"['Bic']\": brand must be a string, found a list. "
        "Write the value as a string, or leave it empty.",
        id="brand-not-text",
    ),
    pytest.param(
        "bad_price",
        '{"item_id": "A2", "title": "Pen", "price": -4.5}',
        "2: field 'price' value '-4.5': price must be a number >= 0. Fix the price or leave it empty.",
        id="price-negative",
    ),
    pytest.param(
        "bad_price",
        '{"item_id": "A2", "title": "Pen", "price": "4,50 EUR"}',
        "2: field 'price' value '4,50 EUR': price must be a number >= 0. Fix the price or leave it empty.",
        id="price-not-numeric",
    ),
    pytest.param(
        "bad_price",
        '{"item_id": "A2", "title": "Pen", "price": NaN}',
        "2: field 'price' value 'nan': price must be a number >= 0. Fix the price or leave it empty.",
        id="price-nan",
    ),
    pytest.param(
        "bad_price",
        '{"item_id": "A2", "title": "Pen", "price": true}',
        "2: field 'price' value 'True': price must be a number >= 0. Fix the price or leave it empty.",
        id="price-boolean",
    ),
    pytest.param(
        "bad_currency",
        '{"item_id": "A2", "title": "Pen", "price": 1, "currency": "usd"}',
        "2: field 'currency' value 'usd': currency must be three capital letters A-Z. "
        "Use a three-letter ISO 4217 code in capitals, such as USD or EUR, or leave it empty.",
        id="currency",
    ),
    pytest.param(
        "bad_categories",
        '{"item_id": "A2", "title": "Pen", "categories": {"top": "Office"}}',
        "2: field 'categories' value \"{'top': 'Office'}\": categories must be a list of strings or a path "
        "string, found an object. Give the categories as a list of strings or as a path like "
        "'Office Products > Paper'.",
        id="categories-object",
    ),
    pytest.param(
        "bad_categories",
        '{"item_id": "A2", "title": "Pen", "categories": [["Office", "Pens"]]}',
        "2: field 'categories' value \"[['Office', 'Pens']]\": categories must be a list of strings, but "
        "level 1 is a list. Give the categories as a list of strings or as a path like "
        "'Office Products > Paper'.",
        id="categories-nested",
    ),
    pytest.param(
        "bad_attributes",
        '{"item_id": "A2", "title": "Pen", "attributes": ["blue"]}',
        "2: field 'attributes' value \"['blue']\": attributes must be a JSON object, found a list. "
        "Give the attributes as a JSON object of names to strings, numbers or booleans.",
        id="attributes-list",
    ),
    pytest.param(
        "bad_attributes",
        '{"item_id": "A2", "title": "Pen", "attributes": {"ink": {"color": "blue"}}}',
        "2: field 'attributes' value \"{'ink': {'color': 'blue'}}\": attribute 'ink' must be a string, a "
        "number or a boolean, found an object. Give the attributes as a JSON object of names to strings, "
        "numbers or booleans.",
        id="attributes-nested",
    ),
    pytest.param(
        "bad_attributes",
        '{"item_id": "A2", "title": "Pen", "attributes": {"Color": "blue", "Color ": "red"}}',
        "2: field 'attributes' value \"{'Color': 'blue', 'Color ': 'red'}\": attribute 'Color' is given "
        "twice. Give the attributes as a JSON object of names to strings, numbers or booleans.",
        id="attributes-same-name-after-cleaning",
    ),
    pytest.param(
        "bad_image_url",
        '{"item_id": "A2", "title": "Pen", "image_url": "ftp://img/pen.jpg"}',
        "2: field 'image_url' value 'ftp://img/pen.jpg': image_url must start with http:// or https://. "
        "Use a full http:// or https:// address, or leave it empty.",
        id="image-url",
    ),
    pytest.param(
        "malformed_json",
        '{"item_id": "A2", "title": }',
        '2: value \'{"item_id": "A2", "title": }\': not valid JSON: Expecting value at column 28. '
        "Fix the JSON on that line: each line holds one complete JSON object.",
        id="malformed-json",
    ),
    pytest.param(
        "malformed_json",
        '{"item_id": "A2", "title": "Pen"} trailing',
        '2: value \'{"item_id": "A2", "title": "Pen"} trailing\': not valid JSON: Extra data at column 35. '
        "Fix the JSON on that line: each line holds one complete JSON object.",
        id="json-extra-data",
    ),
    pytest.param(
        "not_an_object",
        '["A2", "Pen"]',
        '2: value \'["A2", "Pen"]\': a row must be a JSON object, found a list. '
        'Write each row as a JSON object, like {"item_id": "A1", "title": "Stapler"}.',
        id="not-an-object",
    ),
    pytest.param(
        "not_utf8",
        b'{"item_id": "A2", "title": "Caf\xe9 cup"}',
        '2: value \'"item_id": "A2", "title": "Caf\ufffd cup"}\': the line is not valid UTF-8: byte 0xe9 '
        "at offset 31 (invalid continuation byte). Save the file as UTF-8, or fix the bytes on that line.",
        id="not-utf8",
    ),
]


@pytest.mark.parametrize(("rule", "line", "expected"), JSONL_RULES)
def test_jsonl_rule(tmp_path: Path, rule: str, line: str | bytes, expected: str) -> None:
    assert_rule(jsonl(tmp_path, line), rule, expected)


def test_field_too_long(tmp_path: Path) -> None:
    path = jsonl(tmp_path, '{"item_id": "A2", "title": "Pen", "description": "' + "x" * 101 + '"}')
    expected = (
        f"2: field 'description' value '{'x' * 80}'... (101 characters): the value is 101 characters long; "
        "the limit is 100 (data.max_field_chars). Shorten the value, or raise data.max_field_chars in the "
        "settings."
    )
    assert_rule(path, "field_too_long", expected, DataSettings(max_field_chars=100))


def test_line_too_long_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    line = '{"item_id": "A2", "title": "' + "y" * 3_000_000 + '"}'
    path = jsonl(tmp_path, line)
    expected = (
        '2: value \'{"item_id": "A2", "title": "yyyyyyyyyyyy\': the line is 3,000,030 bytes long; the limit '
        "is 1,000 (data.max_line_bytes). Shorten or split the line, or raise data.max_line_bytes in the "
        "settings."
    )
    small = DataSettings(max_line_bytes=1_000)
    assert_rule(path, "line_too_long", expected, small)
    tracemalloc.start()
    try:
        load_catalog(path, settings=small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The 3 MB line is skipped in 1 MiB pieces: never held whole.
    assert peak < 1_000_000


def test_line_at_the_limit_is_fine(tmp_path: Path) -> None:
    line = '{"item_id": "A2", "title": "' + "z" * 100 + '"}'
    catalog, report = load_catalog(jsonl(tmp_path, line), settings=DataSettings(max_line_bytes=len(line)))
    assert ids(catalog) == ["A1", "A2", "A3"]
    assert not report.issue_counts


def test_byte_order_mark_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + FIRST.encode() + b"\n")
    catalog, report = load_catalog(path, policy=Policy.STRICT)
    assert ids(catalog) == ["A1"]
    assert report.notes == ["a UTF-8 byte-order mark at the start of the file was removed"]


def test_blank_lines_are_ignored_and_text_is_cleaned(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "   \r")
    path.write_text(
        path.read_text()
        + '\n{"item_id": " A4 ", "title": "AT&amp;amp;T\\tphone ", "brand": "AT&amp;T", "categories": '
        '"Electronics &gt; Phones | Cordless", "price": "12.50", "attributes": {" color ": " black ", '
        '"cordless": true, "handsets": 2, "weight": null}, "image_url": "https://x/4.jpg", "asin": "B0"}\n'
    )
    catalog, report = load_catalog(path, policy=Policy.STRICT)
    assert ids(catalog) == ["A1", "A3", "A4"]
    assert catalog["A4"] == Item(
        item_id="A4",
        title="AT&T phone",
        brand="AT&T",
        categories=("Electronics", "Phones", "Cordless"),
        price=Price(12.5, "USD"),
        attributes=(("color", "black"), ("cordless", "True"), ("handsets", "2")),
        image_url="https://x/4.jpg",
    )
    assert report.notes == ["unknown field 'asin' is ignored (first seen on line 5)"]


def test_integer_ids_and_other_currency(tmp_path: Path) -> None:
    path = jsonl(tmp_path, '{"item_id": 2, "title": "Pen", "price": 0, "currency": "EUR"}')
    catalog, _ = load_catalog(path, policy=Policy.STRICT, settings=DataSettings(default_currency="GBP"))
    assert catalog["2"].price == Price(0.0, "EUR")
    assert catalog["A1"].price is None


WHOLE_FILE = [
    pytest.param(
        "items.jsonl",
        b"",
        "the file is empty. Point to a file that holds data; docs/formats.md describes the fields.",
        id="empty",
    ),
    pytest.param(
        "items.jsonl",
        b"\n  \n\r\n",
        "the file has no data rows. Add rows to the file: blank lines, or a CSV header alone, hold no data.",
        id="blank-lines",
    ),
    pytest.param(
        "items.csv",
        b"item_id,title\n\n",
        "the file has no data rows. Add rows to the file: blank lines, or a CSV header alone, hold no data.",
        id="csv-header-only",
    ),
    pytest.param(
        "items.csv",
        b"\n\n",
        "the file has no header and no data rows, only blank lines. Add rows to the file: blank lines, or a "
        "CSV header alone, hold no data.",
        id="csv-blank",
    ),
    pytest.param(
        "items.csv",
        b"id,name,price\nA1,Stapler,3\n",
        "no column 'item_id' or 'title'; the columns are 'id', 'name', 'price'. Add or rename the column; "
        "docs/formats.md lists the field names.",
        id="missing-column",
    ),
    pytest.param(
        "items.csv",
        b"item_id,title,title\nA1,Stapler,3\n",
        "column 'title' appears twice. Give each column its own name.",
        id="duplicate-column",
    ),
    pytest.param(
        "items.xlsx",
        b"PK",
        "unknown file type '.xlsx'; known: .jsonl, .ndjson, .csv, .parquet. Name the file .jsonl, .ndjson, "
        ".csv or .parquet after its format.",
        id="unknown-suffix",
    ),
    pytest.param(
        "items.parquet",
        b"not parquet",
        "not a readable Parquet file (Parquet magic bytes not found in footer. Either the file is corrupted "
        "or this is not a parquet file.). Check that the file is readable and in the format its suffix says.",
        id="not-parquet",
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), WHOLE_FILE)
@pytest.mark.parametrize("policy", list(Policy))
def test_whole_file_problems_raise_whatever_the_policy(
    tmp_path: Path, name: str, content: bytes, expected: str, policy: Policy
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        load_catalog(path, policy=policy)
    assert str(raised.value) == f"{path}: {expected}"
    assert raised.value.issue.line == 0


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(DataError) as raised:
        load_catalog(path)
    assert str(raised.value) == (
        f"{path}: the file does not exist. Check the path (or the paths section of the settings)."
    )
    assert raised.value.issue.rule == "file_not_found"


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "folder.jsonl"
    path.mkdir()
    with pytest.raises(DataError) as raised:
        load_catalog(path)
    assert raised.value.issue.rule == "unreadable_file"


def test_lenient_keeps_the_first_findings_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([FIRST, *(f'{{"item_id": "B{n}"}}' for n in range(5)), "oops", LAST]) + "\n")
    catalog, report = load_catalog(path, settings=DataSettings(max_reported_issues=2))
    assert ids(catalog) == ["A1", "A3"]
    assert report.issue_counts == {"missing_title": 5, "malformed_json": 1}
    assert [issue.line for issue in report.issues] == [2, 3]
    assert report.summary() == "\n".join(
        [
            f"{path}: 8 rows read, 2 loaded, 6 skipped",
            "findings by rule:",
            "  malformed_json: 1",
            "  missing_title: 5",
            "findings:",
            f"  {path}:2: field 'title': the title is missing or empty. Give every item a title.",
            f"  {path}:3: field 'title': the title is missing or empty. Give every item a title.",
            "  ... and 4 more",
        ]
    )


def test_summary_of_a_clean_load(tmp_path: Path) -> None:
    path = jsonl(tmp_path, FIRST.replace("A1", "A2"))
    _, report = load_catalog(path)
    assert report.summary() == f"{path}: 3 rows read, 3 loaded, 0 skipped"


def test_iter_items_streams_and_fills_a_report(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "oops")
    report = LoadReport(path, "catalog")
    items = iter_items(path, policy=Policy.STRICT, report=report)
    # Rows are read as they are asked for: the bad second line is not met yet.
    assert next(items).item_id == "A1"
    assert (report.rows_read, report.rows_loaded) == (1, 1)
    with pytest.raises(DataError):
        next(items)
    assert report.issue_counts == {"malformed_json": 1}


def test_unknown_fields_are_noted_once_up_to_a_cap(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(f'{{"item_id": "A{n}", "title": "T", "extra{n % 30}": 1, "asin": "x"}}' for n in range(60))
    )
    _, report = load_catalog(path)
    assert report.notes[:2] == [
        "unknown field 'asin' is ignored (first seen on line 1)",
        "unknown field 'extra0' is ignored (first seen on line 1)",
    ]
    assert len(report.notes) == 21
    assert report.notes[-1] == "more unknown fields are ignored but not listed"


def test_every_rule_has_a_hint() -> None:
    assert all(hint.endswith(".") and hint[0].isupper() for hint in RULES.values())


# --- CSV ----------------------------------------------------------------------------------------------------


def csv_file(tmp_path: Path, middle: bytes | str) -> Path:
    path = tmp_path / "items.csv"
    middle = middle if isinstance(middle, bytes) else middle.encode()
    path.write_bytes(
        b"item_id,title,price,categories,attributes\nA1,Stapler,,,\n" + middle + b"\nA3,Paper,,,\n"
    )
    return path


CSV_RULES = [
    pytest.param(
        "missing_title",
        "A2,  ,1,,",
        "3: field 'title': the title is missing or empty. Give every item a title.",
    ),
    pytest.param(
        "bad_price",
        "A2,Pen,-4.5,,",
        "3: field 'price' value '-4.5': price must be a number >= 0. Fix the price or leave it empty.",
    ),
    pytest.param(
        "duplicate_item_id",
        "A1,Pen,,,",
        "3: field 'item_id' value 'A1': this item id was first seen on line 2; that first occurrence is "
        "kept. Give each item its own id, or remove the repeated row.",
    ),
    pytest.param(
        "bad_attributes",
        'A2,Pen,,,"{color: blue}"',
        "3: field 'attributes' value '{color: blue}': attributes text is not valid JSON (Expecting property "
        "name enclosed in double quotes: line 1 column 2 (char 1)). Give the attributes as a JSON object of "
        "names to strings, numbers or booleans.",
    ),
    pytest.param(
        "column_count",
        "A2,Pen,1,2,3,4",
        "3: the row has 6 values but the header has 5 columns. Make the row match the header; quote values "
        "that hold commas.",
    ),
    pytest.param(
        "malformed_csv",
        "A2,Pen\rx,,,",
        "3: a carriage return (\\r) inside a value that is not quoted. Quote values that hold commas, "
        "quotes or line breaks; double the quotes inside them.",
    ),
    pytest.param(
        "not_utf8",
        b"A2,Caf\xe9,,,",
        "3: value 'A2,Caf\ufffd,,,': the line is not valid UTF-8: byte 0xe9 at offset 6 (invalid "
        "continuation byte). Save the file as UTF-8, or fix the bytes on that line.",
    ),
    pytest.param(
        "not_utf8",
        b'A2,"Two-line\nCaf\xe9 title",,,',
        "4: value 'Caf\ufffd title\",,': the line is not valid UTF-8: byte 0xe9 at offset 3 (invalid "
        "continuation byte). Save the file as UTF-8, or fix the bytes on that line.",
        id="not-utf8-inside-a-quoted-value",
    ),
]


@pytest.mark.parametrize(("rule", "row", "expected"), CSV_RULES)
def test_csv_rule(tmp_path: Path, rule: str, row: str | bytes, expected: str) -> None:
    path = csv_file(tmp_path, row)
    with pytest.raises(DataError) as raised:
        load_catalog(path, policy=Policy.STRICT)
    assert str(raised.value) == f"{path}:{expected}"
    catalog, report = load_catalog(path)
    assert ids(catalog) == ["A1", "A3"]
    assert report.issue_counts == {rule: 1}
    assert report.rows_skipped == 1


def test_csv_value_beyond_the_csv_module_limit(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "A2," + "w" * 140_000 + ",,,")
    catalog, report = load_catalog(path)
    assert ids(catalog) == ["A1", "A3"]
    assert [str(issue) for issue in report.issues] == [
        f"{path}:3: a value is longer than the CSV limit of 131,072 characters. Shorten the value, or raise "
        "data.max_field_chars in the settings."
    ]


def test_csv_quoting_bom_blank_rows_and_paths(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(
        b'\xef\xbb\xbf item_id ,title,description,categories,attributes,price,currency,colour\r\n'
        b'A1,"Stapler, heavy duty","Line one\r\nline ""two""",Office Products > Staplers,'
        b'"{""n"": 1}",3.5,EUR,red\r\n'
        b",,,,,,,\r\n"
        b'A2,Pen,,"[""A > B"", ""C""]",,,,,\r\n'
    )  # fmt: skip
    catalog, report = load_catalog(path, policy=Policy.STRICT)
    assert list(catalog) == [
        Item(
            item_id="A1",
            title="Stapler, heavy duty",
            description='Line one line "two"',
            categories=("Office Products", "Staplers"),
            price=Price(3.5, "EUR"),
            attributes=(("n", "1"),),
        ),
        Item(item_id="A2", title="Pen", categories=("A > B", "C")),
    ]
    assert report.notes == [
        "a UTF-8 byte-order mark at the start of the file was removed",
        "unknown field 'colour' is ignored",
    ]
    assert report.rows_read == 2


def test_csv_over_long_line_is_skipped(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "A2," + "v" * 5_000 + ",,,")
    catalog, report = load_catalog(path, settings=DataSettings(max_line_bytes=1_000))
    assert ids(catalog) == ["A1", "A3"]
    assert report.issue_counts == {"line_too_long": 1}
    assert report.issues[0].line == 3


# --- Parquet ------------------------------------------------------------------------------------------------


def test_parquet_rows_are_numbered_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    table = pa.table(
        {
            "item_id": pa.array([1, 2, 1, 4], pa.int64()),
            "title": ["Stapler", None, "Again", "Paper"],
            "price": ["3.5", "1", "2", "abc"],
            "categories": [["Office", "Staplers"], None, None, []],
            "attributes": pa.array([[("n", "1")], None, None, None], pa.map_(pa.string(), pa.string())),
            "sku": ["s1", "s2", "s3", "s4"],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    with pytest.raises(DataError) as raised:
        load_catalog(path, policy=Policy.STRICT)
    assert (
        str(raised.value)
        == f"{path}:2: field 'title': the title is missing or empty. Give every item a title."
    )
    catalog, report = load_catalog(path)
    assert list(catalog) == [
        Item(
            "1",
            "Stapler",
            categories=("Office", "Staplers"),
            price=Price(3.5, "USD"),
            attributes=(("n", "1"),),
        )
    ]
    assert [str(issue) for issue in report.issues[1:]] == [
        f"{path}:3: field 'item_id' value '1': this item id was first seen on row 1; that first "
        "occurrence is kept. Give each item its own id, or remove the repeated row.",
        f"{path}:4: field 'price' value 'abc': price must be a number >= 0. Fix the price or leave it empty.",
    ]
    assert report.notes == ["unknown field 'sku' is ignored"]


def test_parquet_without_rows_or_required_column(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(
        pa.table({"item_id": pa.array([], pa.string()), "title": pa.array([], pa.string())}), empty
    )
    with pytest.raises(DataError, match="the file has no data rows"):
        load_catalog(empty)
    untitled = tmp_path / "untitled.parquet"
    pq.write_table(pa.table({"item_id": ["A1"], "name": ["Stapler"]}), untitled)
    with pytest.raises(DataError) as raised:
        load_catalog(untitled)
    assert str(raised.value) == (
        f"{untitled}: no column 'title'; the columns are 'item_id', 'name'. Add or rename the column; "
        "docs/formats.md lists the field names."
    )


# --- writing and round trips --------------------------------------------------------------------------------

SAMPLE = [
    Item(
        item_id="A1",
        title='Stapler, "heavy" duty',
        description="Staples up to 20 sheets; ships with 1,000 staples.",
        brand="Swingline",
        categories=("Office Products", "Staplers"),
        price=Price(12.99, "USD"),
        attributes=(("color", "black"), ("weight", "1.5 lb")),
        image_url="https://example.com/a1.jpg",
    ),
    Item(item_id="A2", title="Café crème mug", categories=("Kitchen | Dining", "Mugs > Cups")),
    Item(item_id="A3", title="[Sale] Paper", categories=("[Sale]", "Paper"), price=Price(0.0, "EUR")),
    Item(item_id="42", title="AT&T phone", brand="AT&T", attributes=(("note", ""),)),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".csv", ".parquet"])
def test_write_then_read_gives_the_same_items(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"items{suffix}"
    assert write_items(iter(SAMPLE), path) == len(SAMPLE)
    catalog, report = load_catalog(path, policy=Policy.STRICT)
    assert list(catalog) == SAMPLE
    assert not report.notes
    assert not list(tmp_path.glob("*.partial"))


def test_the_three_formats_read_one_messy_source_alike(tmp_path: Path) -> None:
    source = tmp_path / "raw.jsonl"
    source.write_text(
        '{"item_id": "R1", "title": " Desk&amp;amp;lamp ", "categories": ["Home", " Lamps "], "price": "7"}\n'
        '{"item_id": 2, "title": "Pen\\u00a0set", "attributes": {"pack": 10, "refill": false}}\n'
    )
    original, _ = load_catalog(source, policy=Policy.STRICT)
    for suffix in (".jsonl", ".csv", ".parquet"):
        copy = tmp_path / f"copy{suffix}"
        write_items(original, copy)
        assert list(load_catalog(copy, policy=Policy.STRICT)[0]) == list(original), suffix


def test_writing_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown file type '\.txt'"):
        write_items(SAMPLE, tmp_path / "items.txt")


def test_jsonl_output_is_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    write_items(SAMPLE[:1], path)
    assert json.loads(path.read_text()) == {
        "item_id": "A1",
        "title": 'Stapler, "heavy" duty',
        "description": "Staples up to 20 sheets; ships with 1,000 staples.",
        "brand": "Swingline",
        "categories": ["Office Products", "Staplers"],
        "price": 12.99,
        "currency": "USD",
        "attributes": {"color": "black", "weight": "1.5 lb"},
        "image_url": "https://example.com/a1.jpg",
    }


clean = st.text(max_size=30).map(clean_text)
currencies = st.from_regex(r"[A-Z]{3}", fullmatch=True)
items = st.builds(
    Item,
    item_id=clean.filter(bool),
    title=clean.filter(bool),
    description=clean,
    brand=clean,
    categories=st.lists(clean.filter(bool), max_size=4).map(tuple),
    price=st.none() | st.builds(Price, st.floats(min_value=0, allow_infinity=False), currencies),
    attributes=st.dictionaries(clean.filter(bool), clean, max_size=3).map(lambda d: tuple(sorted(d.items()))),
    image_url=st.just("") | clean.map(lambda path: "https://example.com/" + path.replace(" ", "")),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=items)
def test_any_clean_item_survives_every_format(tmp_path: Path, item: Item) -> None:
    for suffix in (".jsonl", ".csv", ".parquet"):
        path = tmp_path / f"one{suffix}"
        write_items([item], path)
        assert list(load_catalog(path, policy=Policy.STRICT)[0]) == [item], suffix


fragments = st.sampled_from(
    [
        b'{"item_id": "A',
        b'", "title": "T',
        b'"}',
        b'"price": ',
        b"-1",
        b"1e999",
        b",",
        b'"',
        b"\n",
        b"\r",
        b"[",
        b"{",
    ]
)
lines = st.lists(fragments | st.binary(max_size=20), max_size=8).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(lines, max_size=6).map(b"\n".join), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_any_bytes_load_or_raise_data_error(tmp_path: Path, body: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes((b"item_id,title,price\n" if suffix == ".csv" else b"") + body)
    try:
        _, report = load_catalog(path, settings=DataSettings(max_line_bytes=64, max_field_chars=16))
    except DataError as error:
        assert error.issue.rule in RULES
        return
    assert report.rows_read == report.rows_loaded + report.rows_skipped
    assert report.issue_counts.total() == report.rows_skipped
