import json
from pathlib import Path

import pytest

from data.convert import read_lcrec, split_lcrec_categories
from data.errors import DataError
from data.settings import SAMPLE_DIR

LCREC = SAMPLE_DIR / "lcrec"


@pytest.fixture(scope="module")
def sample():
    return read_lcrec(LCREC / "Office.item.json", LCREC / "Office.inter.json")


def test_ambiguous_commas_are_decided_from_the_tree():
    paths = [
        "Office & School Supplies, Tape, Adhesives & Fasteners, Tape, Transparent Tape",
        "Office & School Supplies, Envelopes, Mailers & Shipping Supplies, Envelopes, Business Envelopes",
        "Office & School Supplies, Envelopes, Mailers & Shipping Supplies, Envelopes, Booklet & Catalog Envelopes",
        "Office Electronics, Printers & Accessories, Printers",
        "Office & School Supplies, Paper, Cards & Card Stock",
        "Office & School Supplies, Paper",
        "Office Electronics",
    ]
    levels = split_lcrec_categories(paths)
    assert levels[paths[0]] == (
        "Office & School Supplies",
        "Tape, Adhesives & Fasteners",
        "Tape",
        "Transparent Tape",
    )
    assert levels[paths[1]] == (
        "Office & School Supplies",
        "Envelopes, Mailers & Shipping Supplies",
        "Envelopes",
        "Business Envelopes",
    )
    assert levels[paths[2]][-2:] == ("Envelopes", "Booklet & Catalog Envelopes")
    # "Office Electronics" is a whole path elsewhere, so it is a level of its own.
    assert levels[paths[3]] == ("Office Electronics", "Printers & Accessories", "Printers")
    assert split_lcrec_categories(paths[3:4])[paths[3]][0] == "Office Electronics, Printers & Accessories"
    # "Paper" ends another path, so it is a level of its own, not the start of "Paper, Cards & Card Stock".
    assert levels[paths[4]] == ("Office & School Supplies", "Paper", "Cards & Card Stock")


def test_real_sample_converts_with_every_skip_reported(sample):
    assert len(sample.items) == 2417
    assert len(sample.interactions) == 53201
    rules = [issue.rule for issue in sample.issues]
    assert rules.count("missing_title") == 3
    assert rules.count("unknown_item_id") == 57
    assert len(rules) == 60
    first = sample.issues[0]
    assert str(first) == (
        f"{LCREC / 'Office.item.json'}: field '[\"828\"].title' value '': every item needs a title. "
        "Add a title or remove the item."
    )


def test_real_sample_text_is_normalised(sample):
    by_id = {item.item_id: item for item in sample.items}
    assert by_id["2"].title == "AT&T 210 Corded Phone, Black, 1 Handset"
    assert by_id["2"].brand == "AT&T"
    assert by_id["0"].categories == ("Office Electronics", "Telephones & Accessories", "Cordless Telephones")
    assert not any("&amp;" in item.title or "  " in item.description for item in sample.items)


def test_histories_keep_review_order(sample):
    first_user = [event for event in sample.interactions if event.user_id == "0"]
    assert [event.item_id for event in first_user] == ["0", "1", "2", "3", "4"]
    assert [event.order for event in first_user] == [0, 1, 2, 3, 4]


def test_strict_stops_at_the_first_bad_record(tmp_path: Path):
    items = tmp_path / "x.item.json"
    items.write_text(json.dumps({"1": {"title": "Pen"}, "2": {"title": "  "}}), encoding="utf-8")
    inter = tmp_path / "x.inter.json"
    inter.write_text(json.dumps({"u": [1, 2]}), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_lcrec(items, inter, strict=True)
    assert str(caught.value) == (
        f"{items}: field '[\"2\"].title' value '  ': every item needs a title. Add a title or remove the item."
    )
    lenient = read_lcrec(items, inter)
    assert [item.item_id for item in lenient.items] == ["1"]
    assert [issue.rule for issue in lenient.issues] == ["missing_title", "unknown_item_id"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not valid JSON"),
        ("[1, 2]", "expected a non-empty JSON object"),
        ("{}", "expected a non-empty JSON object"),
        ('{"1": ', "not valid JSON"),
    ],
)
def test_unusable_files_are_whole_file_errors(tmp_path: Path, content: str, message: str):
    items = tmp_path / "x.item.json"
    items.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_lcrec(items, tmp_path / "absent.json")


def test_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match="file not found"):
        read_lcrec(tmp_path / "absent.item.json", tmp_path / "absent.inter.json")
