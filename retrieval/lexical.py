"""The lexical channel: BM25 (bm25s) over item text, for exact brands, product words and model numbers.

Vector search finds "something like a cordless phone"; it does not reliably find "CS6114" or "PG-245". This
channel does, because its tokenizer keeps model codes intact and split (see :func:`tokenize`).

What one item's document holds (see :func:`item_document`): the title twice (a word in the title says more
about the product than the same word deep in a description, and BM25 has no fields), the brand, every
category level, the seller description cut to :data:`MAX_DESCRIPTION_CHARS`, and the generated description
when one is given, appended as more text. Appending rather than a separate field keeps one index and one score
per item; a generated description exists only for items whose own description is thin, so it fills a gap rather
than doubling text.

A built index is saved under the artifacts directory with a fingerprint of every document it was built from
and of the tokenizer; :meth:`LexicalIndex.load_or_build` rebuilds it when the catalog, the descriptions or the
tokenizer changed. Several processes may share the directory (server processes starting together, a build beside
a running server): an index is written whole into a folder of its own and then named current by one atomic
rename of the small file that points to it, so a reader always loads one whole index, never one half written.

Example:
    >>> from data.schema import Catalog, Item
    >>> catalog = Catalog([
    ...     Item("1", "Canon PG-245 Black Ink Cartridge", brand="Canon"),
    ...     Item("2", "VTech CS6114 Cordless Phone", brand="VTech"),
    ... ])
    >>> index = LexicalIndex.build(catalog)
    >>> index.search("pg245 ink", k=5)[0], index.search("cs 6114", k=5)[0]
    (['1'], ['2'])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.schema import Catalog, Item

# Bumped whenever tokenize() or item_document() changes what is indexed, so saved indexes are rebuilt.
TOKENIZER_VERSION = "1"
# Long seller descriptions are mostly boilerplate after the first paragraphs; the cut bounds build time on
# large catalogs (a few items carry 40,000 characters).
MAX_DESCRIPTION_CHARS = 2_000
# Function words only (bm25s.stopwords.STOPWORDS_EN): a word like "pack" or "set" can name the product, so
# everything else is left to BM25's idf.
_STOP_TEXT = """
    a an and are as at be but by for if in into is it no not of on or such that the their then there these they
    this to was will with
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())
# Scripts written without spaces between words: each run becomes character unigrams and bigrams.
_NO_SPACE = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"(?P<cjk>[{_NO_SPACE}]+)|(?P<word>[^\W_{_NO_SPACE}]+(?:[-./'][^\W_{_NO_SPACE}]+)*)")
_CONNECTOR = re.compile(r"[-./']")
_RUN = re.compile(r"\d+|[^\W\d_]+")


def _stem(word: str) -> str:
    """Harman's S-stemmer, with "-ches", "-xes"... as in "boxes": plural to singular, nothing more.

    A full Snowball stemmer would need PyStemmer; plurals are what separate a shopper's words from a title's.
    """
    if len(word) < 4 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _expand(word: str) -> list[str]:
    """The tokens of one folded word-like run (rules in :func:`tokenize`)."""
    if word.isalpha():
        return [] if word in _STOP_WORDS else [_stem(word)]
    tokens = []
    parts = _CONNECTOR.split(word)
    for part in parts:
        if part in _STOP_WORDS:
            continue
        tokens.append(_stem(part))
        if not part.isalpha() and not part.isdigit():
            tokens.extend(run for run in _RUN.findall(part) if len(run) > 1 or run.isdigit())
    if len(parts) > 1 and not all(part.isdigit() for part in parts):
        tokens.append("".join(parts))
    return tokens


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    """:func:`tokenize` for many texts at once, about twice as fast: each distinct word is expanded once."""
    seen: dict[str, list[str]] = {}
    result = []
    for text in texts:
        tokens: list[str] = []
        for run, word in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()):
            if run:
                tokens.extend(run)
                tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
                continue
            expanded = seen.get(word)
            if expanded is None:
                expanded = seen[word] = _expand(word)
            tokens.extend(expanded)
        result.append(tokens)
    return result


def tokenize(text: str) -> list[str]:
    """Lower-cased search tokens of a text, model codes kept both whole and split.

    A run of letters and digits joined by ``-``, ``.``, ``/`` or ``'`` gives its parts and, when it has a
    letter, the parts glued together: ``"PG-245"`` -> ``pg``, ``245``, ``pg245``. A part that mixes letters and
    digits also gives its letter and digit runs (letter runs of one letter are dropped as noise):
    ``"CS6114"`` -> ``cs6114``, ``cs``, ``6114``. So ``"PG-245"``, ``"pg245"`` and ``"pg 245"`` share tokens, and a
    glued token rewards the exact code. Numbers alone are not glued (``"1.88"`` is ``1``, ``88``), so a
    decimal never turns into a false model number. Words are folded (NFKC, case-folded) and plurals stemmed;
    function words are dropped. Chinese, Japanese and Thai runs give their characters and character pairs;
    other scripts (Arabic, Cyrillic, ...) are words like Latin ones; emoji and punctuation give nothing.

    Example:
        >>> tokenize("Canon PG-245 ink, HP61 cartridges")
        ['canon', 'pg', '245', 'pg245', 'ink', 'hp61', 'hp', '61', 'cartridge']
        >>> tokenize("黑色墨盒")
        ['黑', '色', '墨', '盒', '黑色', '色墨', '墨盒']
    """
    return tokenize_many([text])[0]


def item_document(item: Item, generated: str = "") -> str:
    """The text indexed for one item (the layout is in the module docstring)."""
    fields = (
        item.title,
        item.title,
        item.brand,
        " ".join(item.categories),
        item.description[:MAX_DESCRIPTION_CHARS],
        generated,
    )
    return "\n".join(field for field in fields if field)


@contextlib.contextmanager
def _locked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the lock of a saved index's directory (``flock`` on its ``.lock`` file: between processes and
    threads alike), exclusive for a writer's switch, shared for a reader's load."""
    import fcntl

    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def catalog_fingerprint(catalog: Catalog, descriptions: Mapping[str, str] | None = None) -> str:
    """A digest of every indexed document and the tokenizer version: equal digests index the same text.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("1", "Pen")])
        >>> catalog_fingerprint(catalog) == catalog_fingerprint(catalog, {"1": "A blue pen."})
        False
    """
    digest = hashlib.sha256(f"lexical {TOKENIZER_VERSION}".encode())
    descriptions = descriptions or {}
    for item in catalog:
        digest.update(b"\0" + item.item_id.encode() + b"\0")
        digest.update(item_document(item, descriptions.get(item.item_id, "")).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class LexicalHits:
    """Matching items, best first.

    Attributes:
        positions: Catalog positions.
        scores: BM25 scores, all positive (an item sharing no token with the query is not a hit).
    """

    positions: np.ndarray
    scores: np.ndarray


class LexicalIndex:
    """A BM25 index over a catalog's item documents.

    Build it with :meth:`build` (about half a second for the 2,417 items of the sample on 2 cores) or
    :meth:`load_or_build`.

    Example:
        >>> from data.schema import Item
        >>> catalog = Catalog([Item("a", "HP 61 Black Ink"), Item("b", "HP 62 Color Ink"), Item("c", "Stapler")])
        >>> index = LexicalIndex.build(catalog)
        >>> index.search("hp61", k=3)[0]
        ['a', 'b']
        >>> index.search("hp61", k=3, allowed=["b", "c"])[0]
        ['b']
    """

    _META = "lexical.json"
    _FOLDER = "index-"
    _IDS = "item_ids.json"

    def __init__(self, retriever: object, item_ids: list[str], fingerprint: str) -> None:
        self._retriever = retriever
        self.item_ids = item_ids
        self.fingerprint = fingerprint
        self._positions = {item_id: i for i, item_id in enumerate(item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def build(cls, catalog: Catalog, descriptions: Mapping[str, str] | None = None) -> LexicalIndex:
        """Index a catalog, with generated description text per item id when given."""
        import bm25s

        descriptions = descriptions or {}
        corpus = tokenize_many(item_document(item, descriptions.get(item.item_id, "")) for item in catalog)
        # bm25s cannot index a corpus without a single token (an empty catalog, or one of emoji titles): a
        # placeholder token, which no query can contain, lets it build an index that never matches.
        if not any(corpus):
            corpus = [["\0"]] * max(1, len(corpus))
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        return cls(retriever, [item.item_id for item in catalog], catalog_fingerprint(catalog, descriptions))

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` (created if needed) and make it the one :meth:`load` reads.

        The index (BM25 arrays and item ids) is written into a new folder of ``directory``, which then becomes
        current by an atomic rename of the small file naming it (:data:`_META`: the folder and the fingerprint);
        the folders of earlier indexes are removed after. A save stopped part-way, or one running beside readers and
        other writers, never leaves a reader an incomplete index.
        """
        directory.mkdir(parents=True, exist_ok=True)
        folder = f"{self._FOLDER}{self.fingerprint[:16]}"
        scratch = Path(tempfile.mkdtemp(dir=directory, prefix=".writing-"))
        pointer = scratch.with_suffix(".json")
        try:
            self._retriever.save(str(scratch), show_progress=False)
            (scratch / self._IDS).write_text(json.dumps(self.item_ids), encoding="utf-8")
            pointer.write_text(
                json.dumps({"fingerprint": self.fingerprint, "folder": folder}), encoding="utf-8"
            )
            # The switch, under the directory's lock: readers load under it too, so none finds its index gone.
            with _locked(directory, exclusive=True):
                if not (directory / folder).is_dir():
                    scratch.rename(directory / folder)
                # else another process saved the same index first: its folder is whole, and the same.
                os.replace(pointer, directory / self._META)
                # Earlier indexes go, and so do the files of the layout before folders (in the directory itself).
                for stale in directory.glob(f"{self._FOLDER}*"):
                    if stale.name != folder:
                        shutil.rmtree(stale, ignore_errors=True)
                for old in [*directory.glob("*.index.npy"), *directory.glob("*.index.json")]:
                    old.unlink(missing_ok=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            pointer.unlink(missing_ok=True)

    @classmethod
    def _read_meta(cls, directory: Path) -> dict:
        """The current index's metadata; empty when there is none or it cannot be read."""
        try:
            meta = json.loads((directory / cls._META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read the index :meth:`save` last made current in ``directory``.

        Raises:
            FileNotFoundError: ``directory`` holds no saved index.
        """
        import bm25s

        if not cls._read_meta(directory).get("folder"):
            raise FileNotFoundError(f"{directory}: no saved lexical index of this version (see {cls._META})")
        with _locked(directory, exclusive=False):
            meta = cls._read_meta(directory)
            folder = directory / meta["folder"]
            retriever = bm25s.BM25.load(str(folder), show_progress=False)
            item_ids = json.loads((folder / cls._IDS).read_text(encoding="utf-8"))
        return cls(retriever, item_ids, meta["fingerprint"])

    @classmethod
    def load_or_build(
        cls, directory: Path, catalog: Catalog, descriptions: Mapping[str, str] | None = None
    ) -> LexicalIndex:
        """The saved index in ``directory`` when it was built from the same text, else a new one, saved there."""
        fingerprint = catalog_fingerprint(catalog, descriptions)
        # An index of an earlier layout (written into the directory itself, without "folder") is made again.
        if cls._read_meta(directory).get("fingerprint") == fingerprint:
            with contextlib.suppress(OSError, ValueError):
                return cls.load(directory)
        index = cls.build(catalog, descriptions)
        index.save(directory)
        return index

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every item for ``query``, in catalog order (0 where no token matches)."""
        retriever = self._retriever
        ids = retriever.get_tokens_ids(tokenize(query))
        if not ids:
            return np.zeros(len(self.item_ids), dtype=np.float32)
        # Repeated query tokens would count twice; a shopper repeating a word does not mean it twice as much.
        return retriever.get_scores_from_ids(sorted(set(ids)))

    def hits(self, query: str, k: int, allowed: np.ndarray | None = None) -> LexicalHits:
        """The ``k`` best matching items, optionally only among ``allowed`` (a boolean mask in catalog order)."""
        if k <= 0:
            return LexicalHits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        scores = self.scores(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        # Stable order on ties: equal scores keep catalog order, so results are reproducible.
        best = matched[np.lexsort((matched, -scores[matched]))]
        return LexicalHits(best, scores[best].astype(np.float32))

    def search(
        self, query: str, k: int, allowed: np.ndarray | list[str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Item ids and BM25 scores of the ``k`` best matching items, best first.

        Args:
            query: Any text; one that shares no token with the catalog finds nothing.
            k: How many at most.
            allowed: Only these items: a boolean mask in catalog order, or item ids (unknown ids are ignored).
        """
        if allowed is not None and not isinstance(allowed, np.ndarray):
            mask = np.zeros(len(self.item_ids), dtype=bool)
            mask[[self._positions[i] for i in allowed if i in self._positions]] = True
            allowed = mask
        found = self.hits(query, k, allowed)
        return [self.item_ids[p] for p in found.positions], found.scores
