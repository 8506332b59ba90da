"""Title words that tell candidates apart: what the question policy can offer when the facets are spent.

Many catalogs keep what sets their items apart (how they work, what they are made of, their shape or colour) in
the titles only, not in any facet. Once a shopper's need has fixed the category, the facets may have nothing left
to ask but the brand. :class:`TitleWords` finds, among the current candidates, the title words that split them
best, so the policy can ask "Anything in particular?" with those words as quick replies; the word picked joins
the shopper's need, where retrieval and the cross-encoder read it, and the items whose titles have it come first
(:meth:`assistant.engine.Engine.rank`).

The words of a title (:func:`title_words`) are its content words (:func:`assistant.simulator.content_words`:
letter runs of tokens without a digit, three letters or more, no function words or packaging words), with a
compound of letters joined by hyphens ("Cross-Cut", "Wall-Mounted") kept as one word, grouped by their singular
form (:func:`assistant.understand.singular`). Never offered: a word of any brand's name, a word fewer than
:data:`MIN_ITEMS` catalog titles use, a word that mostly follows a number (a unit or a count: "12 Sheets"), and a
word mostly written with a capital inside (a brand or product line the catalog names only in titles:
"AmazonBasics"). Nothing here knows what a catalog sells: every word and every rule comes from its titles.

Choosing the options (:meth:`TitleWords.options`): each candidate carries a share of the score mass; a word's
share is the mass of the candidates whose title has it. Words the shopper has said already, words that
almost every or almost no candidate has (share outside :data:`MIN_SHARE` to :data:`MAX_SHARE`), and words of a
single candidate are left out.
Options are added greedily, each time the word that most raises the information an answer brings: a candidate
falls to the first chosen option its title has, and picking option ``i`` (mass ``p_i``) tells ``-log p_i``, so
the expected information is ``-sum(p_i log p_i)`` over the options (an answer "no preference" tells nothing,
so the candidates with none of the words add nothing). The options are offered with the most mass first.

Example:
    >>> import numpy as np
    >>> from data.schema import Catalog, Item
    >>> titles = ["Acme Wireless Mouse"] * 6 + ["Acme Wired Mouse"] * 3 + ["Trackball Mouse"] * 3
    >>> catalog = Catalog([Item(str(n), t, brand="Acme") for n, t in enumerate(titles)])
    >>> words = TitleWords.build(catalog)
    >>> offer = words.options(np.arange(12), np.full(12, 1 / 12), said="a mouse")
    >>> offer.labels, offer.keys, round(offer.information, 3), offer.groups.tolist()
    (('Wireless', 'Trackball', 'Wired'), ('wireless', 'trackball', 'wired'), 1.04, [0, 0, 0, 0, 0, 0, 2, 2, 2, 1, 1, 1])
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from assistant.simulator import content_words, raw_tokens
from assistant.understand import singular, words_of
from data.schema import Catalog

MIN_ITEMS = 3
MIN_SHARE = 0.05
MAX_SHARE = 0.8
# Most quick replies a question offers (the policy's questions on facets offer as many).
MAX_OPTIONS = 5
MAX_ACRONYM = 4
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
_COMPOUND = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")


def title_keys(title: str) -> list[str]:
    """The word keys of a title, in order without repeats (see :func:`title_words`).

    Example:
        >>> title_keys("Ballpoint Pens, Retractable, Black Ink, 12 Pens, Cross-Cut")
        ['ballpoint', 'pen', 'retractable', 'black', 'ink', 'cross-cut']
    """
    return list(dict.fromkeys(key for key, _, _ in title_words(title)))


def title_words(title: str) -> list[tuple[str, str, bool]]:
    """``(key, spelling, after a number)`` for each word of a title, in order: a compound of letters joined by
    hyphens ("Cross-Cut") is one word, any other token gives its content words
    (:func:`assistant.simulator.content_words`); the key is the lower-case singular. A token with a digit gives no
    word, and marks the word after it as following a number ("12 Sheets").

    Example:
        >>> title_words("Shredder, 12 Sheets, Cross-Cut")
        [('shredder', 'Shredder', False), ('sheet', 'Sheets', True), ('cross-cut', 'Cross-Cut', False)]
    """
    out = []
    after_number = False
    for token in raw_tokens(title):
        if any(ch.isdigit() for ch in token):
            after_number = True
            continue
        if _COMPOUND.fullmatch(token) and content_words(token):
            words = [(token.casefold(), token)]
        else:
            written = {run.casefold(): run for run in _LETTER_RUNS.findall(token)}
            words = [(word, written.get(word, word)) for word in content_words(token)]
        out.extend((singular(word), spelling, after_number) for word, spelling in words)
        after_number = False
    return out


@dataclass(frozen=True, eq=False)
class TitleWords:
    """The catalog's offerable title words (see the module docstring).

    Attributes:
        keys: Each word's key (its singular form).
        labels: Each word as shoppers read it (its most common spelling in titles, see :func:`_label`).
        matrix: Items (catalog order) by words, 1 where the item's title has the word.
    """

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    matrix: sparse.csr_matrix

    @functools.cached_property
    def _columns(self) -> dict[str, int]:
        return {key: n for n, key in enumerate(self.keys)}

    @classmethod
    def build(cls, catalog: Catalog, min_items: int = MIN_ITEMS) -> TitleWords:
        """The words of a catalog's titles that at least ``min_items`` titles use, brand words left out."""
        brand_words = {
            singular(word)
            for item in catalog
            if item.brand
            for word in (*words_of(item.brand), item.brand_key, item.brand.casefold())
        }
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        after_number: Counter[str] = Counter()
        per_item = []
        for item in catalog:
            keys = []
            for key, spelling, counted in title_words(item.title):
                if key not in brand_words:
                    spellings[key][spelling] += 1
                    after_number[key] += counted
                    keys.append(key)
            per_item.append(set(keys))
        counts = Counter(key for keys in per_item for key in keys)
        kept = sorted(
            key
            for key, n in counts.items()
            if n >= min_items and not _is_unit(key, spellings, after_number) and not _is_name(spellings[key])
        )
        column = {key: n for n, key in enumerate(kept)}
        rows, cols = [], []
        for position, keys in enumerate(per_item):
            for key in keys:
                if key in column:
                    rows.append(position)
                    cols.append(column[key])
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(catalog), len(kept))
        )
        labels = tuple(_label(spellings[key].most_common(1)[0][0]) for key in kept)
        return cls(tuple(kept), labels, matrix)

    def has_all(self, positions: np.ndarray, keys: tuple[str, ...]) -> np.ndarray:
        """Whether each item (catalog positions) has every one of the words (keys); a key this catalog's words
        do not hold is no requirement."""
        cols = [self._columns[key] for key in dict.fromkeys(keys) if key in self._columns]
        return (self.matrix[np.asarray(positions, dtype=np.int64)][:, cols].toarray() > 0).all(axis=1)

    def options(
        self,
        positions: np.ndarray,
        mass: np.ndarray,
        said: str | Iterable[str] = "",
        limit: int = MAX_OPTIONS,
    ) -> WordOptions:
        """At most ``limit`` words to offer about the candidates (catalog positions with their mass, summing to 1),
        most likely first (see :class:`WordOptions`; none when no word is worth offering). ``said``: the
        shopper's words so far (never offered back)."""
        if not self.keys or not len(positions):
            return WordOptions((), (), 0.0, np.full(len(positions), -1, dtype=np.int64))
        said_words = words_of(said) if isinstance(said, str) else [w for text in said for w in words_of(text)]
        said_keys = {singular(word) for word in said_words}
        has = self.matrix[np.asarray(positions, dtype=np.int64)].toarray() > 0
        shares = mass @ has
        eligible = [
            int(w)
            for w in np.flatnonzero((shares >= MIN_SHARE) & (shares <= MAX_SHARE) & (has.sum(axis=0) >= 2))
            if self.keys[w] not in said_keys
        ]
        chosen: list[tuple[float, int]] = []  # (the mass the word took, the word), in the order chosen
        free = np.ones(len(positions), dtype=bool)  # candidates no chosen word covers yet
        information = 0.0
        while len(chosen) < limit:
            best, best_mass, best_gain = -1, 0.0, 0.0
            for w in eligible:
                p = float(mass[free & has[:, w]].sum())
                gain = -p * np.log(p) if p > 0 else 0.0
                if gain > best_gain + 1e-12:
                    best, best_mass, best_gain = w, p, gain
            if best < 0:
                break
            chosen.append((best_mass, best))
            eligible.remove(best)
            information += float(best_gain)
            free &= ~has[:, best]
        # Most likely first: by the mass each option took (a stable sort keeps the order chosen on ties).
        order = [w for _, w in sorted(chosen, key=lambda pair: -pair[0])]
        offered = has[:, order]
        groups = (
            np.where(offered.any(axis=1), offered.argmax(axis=1), -1)
            if order
            else np.full(len(positions), -1)
        )
        return WordOptions(
            tuple(self.labels[w] for w in order), tuple(self.keys[w] for w in order), information, groups
        )


@dataclass(frozen=True, eq=False)
class WordOptions:
    """The title words offered about some candidates.

    Attributes:
        labels: The words as shown, most likely first.
        keys: Their keys, in the same order.
        information: The expected information of an answer (nats; see the module docstring).
        groups: Per candidate, the position of the first offered word its title has (the one a shopper who wants
            it picks first), ``-1`` for none.
    """

    labels: tuple[str, ...]
    keys: tuple[str, ...]
    information: float
    groups: np.ndarray


def _is_unit(key: str, spellings: dict[str, Counter[str]], after_number: Counter[str]) -> bool:
    """Whether a word mostly follows a number ("12 Sheets", "3 Drawer"): a unit or a count, not a feature."""
    return after_number[key] * 2 >= sum(spellings[key].values())


def _is_name(spellings: Counter[str]) -> bool:
    """Whether a word is mostly written with a capital inside ("AmazonBasics", "iPhone", "LaserJet"): the name of
    a brand or a product line, which a catalog without that brand names only in its titles."""
    spelling = spellings.most_common(1)[0][0]
    return any(a.islower() and b.isupper() for a, b in itertools.pairwise(spelling))


def _label(spelling: str) -> str:
    """A word as titles write it most often: capitalised when written in lower case or shouted ("BLACK"); an
    acronym ("DVD", "LED") or a word with inner capitals ("iPhone") kept."""
    if spelling.islower() or (spelling.isupper() and len(spelling) > MAX_ACRONYM):
        return spelling.capitalize()
    return spelling


__all__ = [
    "MAX_OPTIONS",
    "MAX_SHARE",
    "MIN_ITEMS",
    "MIN_SHARE",
    "TitleWords",
    "WordOptions",
    "title_keys",
    "title_words",
]
