"""Properties of clean_text, split_category_path and brand_key, checked with Hypothesis."""

from __future__ import annotations

import html
import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from data.normalize import brand_key, clean_text, split_category_path

# Pieces that make the interesting cases likely: entities (escaped once or more, with and without ';', in
# either case), control and format characters, odd spaces, path separators.
PIECES = [
    "&amp;", "&amp;amp;", "&lt;", "&gt;", "&nbsp;", "&NBSP;", "&AMP;", "&#38;", "&#x26;", "&#0;", "&#x1;",
    "&amp", "&lt", "amp;", "lt;", "gt;", "&", "#", ";", "\x00", "\x07", "\t", "\n", "\r\n", "\u200b",
    "\u2028", "\xa0", "\u3000", " ", "  ", ">", "|", "é", "e\u0301", "ß", "3M", "AT&T",
]  # fmt: skip
texts = st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3))).map("".join))


def reference_clean_text(text: str) -> str:
    """The definition clean_text must match: unescape to the end, control characters to spaces, collapse."""
    while (unescaped := html.unescape(text)) != text:
        text = unescaped
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


@given(texts)
@example("&amp;amp;amp;")
def test_clean_text_matches_its_definition(text: str) -> None:
    assert clean_text(text) == reference_clean_text(text)


@given(texts)
@example("&amp;amp;amp;lt;")  # escaped three times and more: the old fixed two passes left an entity behind
def test_clean_text_is_idempotent(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned


@given(texts)
def test_clean_text_leaves_no_entity(text: str) -> None:
    cleaned = clean_text(text)
    assert html.unescape(cleaned) == cleaned


@given(texts)
def test_clean_text_spacing(text: str) -> None:
    cleaned = clean_text(text)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    # The only whitespace left is the plain space, and no control or format character is left.
    assert all(ch == " " or not ch.isspace() for ch in cleaned)
    assert not any(unicodedata.category(ch).startswith("C") for ch in cleaned)


@given(texts)
def test_clean_text_ignores_html_escaping(text: str) -> None:
    assert clean_text(html.escape(text)) == clean_text(text)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("AT&amp;amp;T   210\n phone", "AT&T 210 phone"),
        ("&amp;amp;amp;", "&"),
        ("Caf&eacute;\u200bCup", "Café Cup"),
        (" \t\r\n ", ""),
        ("a&#0;b", "a\ufffdb"),
    ],
)
def test_clean_text_examples(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


# --- split_category_path ------------------------------------------------------------------------------------

clean_levels = st.lists(
    texts.map(clean_text).filter(lambda level: level and not re.search(r"[>|]", level)),
    min_size=1,
    max_size=5,
)


@given(st.one_of(texts, st.lists(texts)))
def test_split_category_path_levels_are_clean_and_not_empty(path: str | list[str]) -> None:
    for level in split_category_path(path):
        assert level
        assert clean_text(level) == level


@given(texts)
@example("Office &gt; Paper")  # an escaped separator separates too
def test_split_category_path_string_levels_hold_no_separator(path: str) -> None:
    levels = split_category_path(path)
    assert not any(re.search(r"[>|]", level) for level in levels)
    assert split_category_path(" > ".join(levels)) == levels


@given(clean_levels, st.sampled_from([" > ", ">", " | ", "  >\t"]))
def test_split_category_path_round_trips_joined_levels(levels: list[str], separator: str) -> None:
    assert split_category_path(separator.join(levels)) == tuple(levels)
    assert split_category_path(levels) == tuple(levels)


def test_split_category_path_examples() -> None:
    assert split_category_path("Office Products > Paper >  Copy Paper") == (
        "Office Products",
        "Paper",
        "Copy Paper",
    )
    assert split_category_path("A > > B |") == ("A", "B")
    assert split_category_path(["A > B", " C "]) == ("A > B", "C")


# --- brand_key ----------------------------------------------------------------------------------------------

# Characters whose upper- and lower-case forms fold to different keys: the dotless i (its capital is I) and
# Greek letters that carry two accents, which NFKC-then-casefold leaves decomposed in one case and not in the
# other. Brands using them match only in the case they are written in.
CASE_EXCEPTIONS = "\u0131\u0390\u03b0\u1fd2\u1fd3\u1fd7\u1fe2\u1fe3\u1fe7"
spaces = st.text(alphabet=" \t\n\r\xa0\u3000", max_size=3)


@given(texts, spaces, spaces)
def test_brand_key_ignores_surrounding_whitespace(brand: str, before: str, after: str) -> None:
    assert brand_key(before + brand + after) == brand_key(brand)


@given(texts)
def test_brand_key_ignores_html_escaping_and_cleaning(brand: str) -> None:
    assert brand_key(html.escape(brand)) == brand_key(brand)
    assert brand_key(html.escape(html.escape(brand))) == brand_key(brand)
    # Item.brand_key runs on the brand already cleaned by the loader.
    assert brand_key(clean_text(brand)) == brand_key(brand)


@given(st.text(st.characters(blacklist_characters="&" + CASE_EXCEPTIONS)))
@example("Post-it®")
def test_brand_key_ignores_case(brand: str) -> None:
    key = brand_key(brand)
    assert brand_key(brand.upper()) == key
    assert brand_key(brand.lower()) == key
    assert brand_key(brand.title()) == key


def test_brand_key_case_needs_entities_spelt_right() -> None:
    # '&' is left out above because entity names are case-sensitive: "&nbsp" is a space, "&NBSP" is text.
    assert brand_key("&nbsp;X") == "x"
    assert brand_key("&NBSP;X") == "&nbspx"


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("3M", " 3-m ", True),
        ("Post-it®", "POST IT", True),
        ("AT&amp;T", "at&t", True),
        ("AT&T", "ATT", False),
        ("C++", "C", False),
    ],
)
def test_brand_key_examples(one: str, other: str, same: bool) -> None:
    assert (brand_key(one) == brand_key(other)) is same
