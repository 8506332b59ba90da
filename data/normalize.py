"""Text normalisation shared by every loader and converter.

Catalog text arrives raw: HTML entities (``AT&amp;T``), runs of whitespace, category paths in one string, brands
spelled several ways. Display forms keep their case and punctuation; matching keys are folded.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Container

_BRAND_NOISE = re.compile(r"[^\w&+]+")
_PATH_SEPARATOR = re.compile(r"\s*[>|]\s*")


def clean_text(text: str) -> str:
    """Unescape HTML entities (until none is left), replace control characters by spaces, collapse whitespace.

    Sources are often escaped twice or more (``&amp;amp;``). Unescaping to the end, rather than a fixed number
    of times, makes the function idempotent: cleaned text is cleaned again later (:func:`brand_key` runs on
    the already-cleaned ``Item.brand``) and must not change then.

    Example:
        >>> clean_text("AT&amp;amp;T   210\\n phone")
        'AT&T 210 phone'
    """
    # Every unescape that changes the text makes it shorter, so the loop ends.
    while (unescaped := html.unescape(text)) != text:
        text = unescaped
    # str.split() splits on exactly the characters r"\s" matches, and is several times faster than re.sub.
    text = " ".join(text.split())
    # Once whitespace is collapsed, only control and format characters (category C) are non-printable, so the
    # slow per-character pass runs only for text that has one.
    if not text.isprintable():
        text = " ".join("".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text).split())
    return text


def split_category_path(path: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Turn a category path into its cleaned levels, top first; empty levels are dropped.

    A string is split on ``>`` or ``|``; a list is taken as the levels already.

    Example:
        >>> split_category_path("Office Products > Paper >  Copy Paper")
        ('Office Products', 'Paper', 'Copy Paper')
    """
    # A string is cleaned before it is split: an escaped separator (``&gt;``) separates levels too, and a
    # level never contains a separator, so joining the levels with " > " gives the same levels back.
    levels = _PATH_SEPARATOR.split(clean_text(path)) if isinstance(path, str) else list(path)
    return tuple(cleaned for level in levels if (cleaned := clean_text(str(level))))


def brand_key(brand: str) -> str:
    """The form of a brand used for matching: Unicode-folded, case-folded, punctuation and spacing removed.

    ``"3M"``, ``"3m"`` and ``" 3-M "`` all match; ``"AT&T"`` keeps its ampersand so it stays distinct from ``"ATT"``.

    Example:
        >>> brand_key("Post-it®") == brand_key("POST IT")
        True
    """
    folded = unicodedata.normalize("NFKC", clean_text(brand)).casefold()
    return _BRAND_NOISE.sub("", folded).replace("_", "")


# The longest brand name :func:`leading_brand_key` looks for at the start of a title, in words.
LEADING_BRAND_WORDS = 4


def leading_brand_key(title: str, brand_keys: Container[str]) -> str:
    """The key of the longest brand among ``brand_keys`` that ``title`` opens with, word for word; ``""`` if none.

    Product titles conventionally open with the maker's name, in any domain, so an item the catalog gives no
    brand still names one there when its first words are a brand the catalog knows from other items. A brand
    named later in the title ("toner for HP printers") is not the item's maker and does not count.

    Example:
        >>> leading_brand_key("HP Color LaserJet CP1518ni Printer", {"hp", "canon"})
        'hp'
        >>> leading_brand_key("Toner for HP printers", {"hp"})
        ''
        >>> leading_brand_key("Post-it Super Sticky Notes", {"post", "postit"})
        'postit'
    """
    words = title.split()
    for count in range(min(LEADING_BRAND_WORDS, len(words)), 0, -1):
        key = brand_key(" ".join(words[:count]))
        if key and key in brand_keys:
            return key
    return ""
