"""Text normalisation shared by every loader and converter.

Catalog text arrives raw: HTML entities (``AT&amp;T``), runs of whitespace, category paths in one string, brands
spelled several ways. Display forms keep their case and punctuation; matching keys are folded.
"""

from __future__ import annotations

import html
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_BRAND_NOISE = re.compile(r"[^\w&+]+")
_PATH_SEPARATOR = re.compile(r"\s*[>|]\s*")


def clean_text(text: str) -> str:
    """Unescape HTML entities (twice, for double-escaped sources), drop control characters, collapse whitespace.

    Example:
        >>> clean_text("AT&amp;amp;T   210\\n phone")
        'AT&T 210 phone'
    """
    for _ in range(2):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


def split_category_path(path: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Turn a category path into its cleaned levels, top first; empty levels are dropped.

    A string is split on ``>`` or ``|``; a list is taken as the levels already.

    Example:
        >>> split_category_path("Office Products > Paper >  Copy Paper")
        ('Office Products', 'Paper', 'Copy Paper')
    """
    levels = _PATH_SEPARATOR.split(path) if isinstance(path, str) else list(path)
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
