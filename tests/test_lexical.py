"""The lexical channel: model codes match however they are typed, filters hold, stale saved indexes rebuild."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.schema import Catalog, Item
from retrieval.lexical import LexicalIndex, catalog_fingerprint, item_document, tokenize, tokenize_many

STORE = Catalog(
    [
        Item(
            "ink-canon", "Canon PG-245 Black Ink Cartridge", brand="Canon", categories=("Ink & Toner", "Ink")
        ),
        Item("ink-hp", "HP 61 Black Original Ink Cartridge", brand="HP", categories=("Ink & Toner", "Ink")),
        Item("ink-hp-xl", "HP 61XL Tri-Color Ink", brand="HP", categories=("Ink & Toner", "Ink")),
        Item("phone", "VTech CS6114 DECT 6.0 Cordless Phone", brand="VTech", categories=("Electronics",)),
        Item("pens", "Ballpoint Pens, Blue, Box of 12", brand="BIC", categories=("Writing", "Pens")),
        Item("bare", "Stapler"),
    ]
)


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(STORE)


@pytest.mark.parametrize("query", ["PG-245", "pg-245", "pg245", "pg 245", "PG245 cartridge"])
def test_a_model_code_is_found_first_however_it_is_typed(index, query):
    ids, scores = index.search(query, k=3)
    assert ids[0] == "ink-canon"
    assert scores[0] > 0 and list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("CS6114", "phone"),
        ("cs 6114", "phone"),
        ("HP 61", "ink-hp"),
        ("hp61 black", "ink-hp"),
        ("61xl", "ink-hp-xl"),
    ],
)
def test_codes_and_brands_find_their_item(index, query, first):
    assert index.search(query, k=3)[0][0] == first


def test_plurals_and_case_match(index):
    assert index.search("BALLPOINT PEN", k=1)[0] == ["pens"]
    assert index.search("boxes", k=1)[0] == ["pens"]


def test_an_item_with_only_a_title_is_found(index):
    assert index.search("stapler", k=5)[0] == ["bare"]


def test_allowed_items_only(index):
    mask = np.array([item.brand != "HP" for item in STORE])
    ids, _ = index.search("hp 61 ink", k=10, allowed=mask)
    assert ids == ["ink-canon"]
    assert index.search("hp 61 ink", k=10, allowed=["ink-hp-xl", "no-such-item"])[0] == ["ink-hp-xl"]
    assert index.search("hp 61 ink", k=10, allowed=[])[0] == []


@pytest.mark.parametrize(
    "query", ["", "   ", "😀🎉", "!!! ??? ...", "مرحبا بالعالم", "黑色墨盒", "nothingmatchesthis"]
)
def test_queries_that_match_nothing_find_nothing(index, query):
    ids, scores = index.search(query, k=5)
    assert ids == [] and len(scores) == 0


def test_k_zero_and_huge_queries(index):
    assert index.search("ink", k=0)[0] == []
    ids, _ = index.search("ink " * 20_000 + "cs6114", k=2)
    assert ids[0] == "phone"


def test_scores_cover_the_catalog(index):
    scores = index.scores("black ink")
    assert scores.shape == (len(STORE),)
    assert set(np.flatnonzero(scores > 0).tolist()) == {0, 1, 2}


def test_cjk_and_arabic_items_are_searchable():
    catalog = Catalog([Item("zh", "黑色墨盒 HP 61"), Item("ar", "قلم حبر أزرق"), Item("en", "Blue pen")])
    index = LexicalIndex.build(catalog)
    assert index.search("墨盒", k=3)[0] == ["zh"]
    assert index.search("قلم", k=3)[0] == ["ar"]


def test_a_catalog_without_any_token_builds_and_matches_nothing():
    index = LexicalIndex.build(Catalog([Item("a", "😀"), Item("b", "!!!")]))
    assert index.search("anything", k=5)[0] == []
    empty = LexicalIndex.build(Catalog([]))
    assert empty.search("anything", k=5)[0] == [] and empty.scores("anything").shape == (0,)


def test_tokenizer_keeps_codes_whole_and_split():
    assert tokenize("PG-245") == ["pg", "245", "pg245"]
    assert tokenize("CS6114") == ["cs6114", "cs", "6114"]
    # Numbers alone are not glued: a decimal is not a model number.
    assert tokenize("1.88 Inches") == ["1", "88", "inch"]
    assert tokenize("Wood-Cased Pencils") == ["wood", "cased", "woodcased", "pencil"]
    assert tokenize("the ink of the pen") == ["ink", "pen"]
    assert tokenize("😀 — !!!") == []


@settings(max_examples=200, deadline=None)
@given(
    letters=st.from_regex(r"[A-Za-z]{1,4}", fullmatch=True),
    digits=st.from_regex(r"[0-9]{1,5}", fullmatch=True),
)
def test_every_spelling_of_a_code_shares_the_glued_and_split_tokens(letters, digits):
    glued = (letters + digits).casefold()
    for spelling in (f"{letters}-{digits}", f"{letters}{digits}", f"{letters.upper()}.{digits}"):
        assert glued in tokenize(spelling)
    assert digits in tokenize(f"{letters} {digits}")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_tokenizer_never_fails_and_gives_clean_tokens(text):
    tokens = tokenize(text)
    assert all(
        token and token == token.casefold() and not any(ch.isspace() for ch in token) for token in tokens
    )
    assert tokenize_many([text, text]) == [tokens, tokens]


def test_save_load_and_stale_rebuild(tmp_path, index):
    directory = tmp_path / "lexical"
    built = LexicalIndex.load_or_build(directory, STORE)
    loaded = LexicalIndex.load_or_build(directory, STORE)
    assert loaded.fingerprint == built.fingerprint == index.fingerprint
    assert loaded.search("pg245", k=3)[0] == index.search("pg245", k=3)[0]
    changed = Catalog([*STORE.items, Item("new", "Epson T0681 Ink")])
    rebuilt = LexicalIndex.load_or_build(directory, changed)
    assert rebuilt.fingerprint != built.fingerprint
    assert LexicalIndex.load(directory).search("t0681", k=1)[0] == ["new"]


def test_a_save_writes_a_whole_folder_then_points_to_it_and_removes_what_it_replaced(tmp_path, index):
    directory = tmp_path / "lexical"
    index.save(directory)
    first = json.loads((directory / "lexical.json").read_text(encoding="utf-8"))["folder"]
    assert (directory / first / "params.index.json").is_file()
    changed = LexicalIndex.build(Catalog([*STORE.items, Item("new", "Epson T0681 Ink")]))
    changed.save(directory)
    second = json.loads((directory / "lexical.json").read_text(encoding="utf-8"))["folder"]
    assert second != first
    # Only the pointer and the current folder are left: no scratch folder, no earlier index.
    assert sorted(path.name for path in directory.iterdir()) == sorted([".lock", "lexical.json", second])
    assert LexicalIndex.load(directory).search("t0681", k=1)[0] == ["new"]


def test_an_index_of_the_layout_before_folders_is_made_again_and_its_files_removed(tmp_path, index):
    directory = tmp_path / "lexical"
    directory.mkdir()
    index._retriever.save(str(directory), show_progress=False)
    meta = {"fingerprint": index.fingerprint, "item_ids": index.item_ids}
    (directory / "lexical.json").write_text(json.dumps(meta), encoding="utf-8")
    loaded = LexicalIndex.load_or_build(directory, STORE)
    assert loaded.search("pg245", k=1)[0] == ["ink-canon"]
    assert json.loads((directory / "lexical.json").read_text(encoding="utf-8"))["folder"]
    assert not list(directory.glob("*.index.*"))


def test_a_save_stopped_before_its_switch_leaves_the_previous_index_current(tmp_path, index, monkeypatch):
    directory = tmp_path / "lexical"
    index.save(directory)
    changed = LexicalIndex.build(Catalog([*STORE.items, Item("new", "Epson T0681 Ink")]))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("retrieval.lexical.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        changed.save(directory)
    monkeypatch.undo()
    loaded = LexicalIndex.load(directory)
    assert loaded.fingerprint == index.fingerprint and loaded.search("t0681", k=1)[0] == []
    assert not list(directory.glob(".writing-*"))


def test_readers_beside_writers_always_load_a_whole_index(tmp_path):
    """Two indexes saved in turn by two threads while two others load: every load is one of the two, whole.
    (Before indexes had folders of their own, a reader could find the pointer of one beside the files of the
    other, or files half written.)"""
    directory = tmp_path / "lexical"
    small = LexicalIndex.build(STORE)
    large = LexicalIndex.build(Catalog([*STORE.items, Item("new", "Epson T0681 Ink")]))
    small.save(directory)
    expected = {small.fingerprint: [], large.fingerprint: ["new"]}
    failures: list[str] = []
    stop = threading.Event()

    def write(first: LexicalIndex, second: LexicalIndex) -> None:
        for _ in range(15):
            first.save(directory)
            second.save(directory)

    def read() -> None:
        while not stop.is_set():
            try:
                loaded = LexicalIndex.load(directory)
                found = loaded.search("t0681", k=1)[0]
                if found != expected[loaded.fingerprint] or len(loaded.item_ids) != len(STORE) + bool(found):
                    failures.append(f"{loaded.fingerprint[:8]}: {found}")
            except Exception as error:  # any failure to load is what this test looks for
                failures.append(repr(error))

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=pair) for pair in ((small, large), (large, small))]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    assert LexicalIndex.load(directory).fingerprint in expected


def test_generated_descriptions_are_indexed():
    catalog = Catalog([Item("1", "Model X100"), Item("2", "Model X200")])
    plain = LexicalIndex.build(catalog)
    described = LexicalIndex.build(catalog, {"2": "A quiet paper shredder for the home office."})
    assert plain.search("shredder", k=2)[0] == []
    assert described.search("shredder", k=2)[0] == ["2"]
    assert catalog_fingerprint(catalog) != described.fingerprint
    assert "shredder" in item_document(catalog["2"], "A paper shredder.")


def test_builds_the_real_sample_fast(office):
    catalog, _ = office
    LexicalIndex.build(catalog)  # imports bm25s once
    started = time.perf_counter()
    index = LexicalIndex.build(catalog)
    assert time.perf_counter() - started < 2.0
    assert catalog[index.search("CS6114", k=1)[0][0]].title.startswith("VTECH CS6114")
