"""What a shopper's message means: intents, slot edits against the catalog's own vocabulary, references to cards.

:func:`understand` reads one free-text message the way a shopper writes it (lower case, typos, several needs at
once, chit-chat around the need) and returns an :class:`Understanding`: what the shopper wants to do (greet, see
others, start over, skip a question, compare cards, talk to a person ...), how the interest profile changes
(:class:`SlotEdit`: a category, a brand, a price bound, each possibly negated, or a slot cleared), which shown cards
it points at, and the words left over as the need.

Nothing here knows what the store sells. The vocabulary (:class:`CatalogVocabulary`) comes from the catalog:

- **Categories** by their labels at every level. A label is split at ``&`` and commas into alternatives
  (``"Printer Ink & Toner"`` -> ``printer ink``, ``toner``); words are folded to a singular form. A phrase of the
  message names an alternative when it holds the alternative's last word (its head noun) and at least half of its
  words, in any order; the best-covered alternative wins, then the value with the most items (one label can
  sit under several parents).
- **Brands** by their key (:func:`data.normalize.brand_key`: ``"Post-It"`` = ``post it`` = ``postits``), a
  possessive (``Avery's``), or an alias the catalog itself spells: a run of capitalised words that the brand's own
  item texts hold at least twice, no other brand's text holds, and whose initials are the brand (``Hewlett
  Packard`` for ``HP``). A brand spelt with ``&`` or ``+`` is also named with ``and`` in its place or the sign
  left out (``black and decker`` for ``Black+Decker``). A brand whose name more of other brands' titles use
  than it has items (``Compatible``, ``Cross``) is a plain word too, and is only taken with a cue: ``brand``,
  ``by``, ``from``, or a negation.
- **Typos**: a word that no catalog text contains is replaced by the closest vocabulary word of the same first
  letter when they are similar enough (:data:`TYPO_SIMILARITY`); words the catalog uses are never "corrected".

Rules in plain English cover the rest: intents by their common phrasings, negation cues (``not``, ``no more``,
``anything but``, ``except``, ``without``) that turn the next category or brand into an exclusion, price phrases
(``under $30``, ``between 20 and 40``, ``not more than 20``, ``budget 30``, ``cheaper``, ``cheapest``) taken only
with a price cue or a currency sign, so ``pack of 12`` or ``HP 61`` never become prices, and references to cards
(``#2``, ``the second one``, ``compare 1 and 3``). ``for my Canon printer`` says what the shopper owns, not which
brand they want: a brand after ``for my`` or ``compatible with`` stays in the need. A catalog without prices gets
no price edit; :attr:`Understanding.price_asked` lets the reply say so.

Example:
    >>> from data.facets import discover_facets
    >>> from data.schema import Catalog, Item
    >>> catalog = Catalog([
    ...     Item("1", "HP 61 Black Ink", brand="HP", categories=("Supplies", "Printer Ink & Toner")),
    ...     Item("2", "Canon Photo Paper", brand="Canon", categories=("Supplies", "Paper")),
    ... ])
    >>> vocabulary = CatalogVocabulary.build(catalog, discover_facets(catalog))
    >>> understood = understand("hi! i need printer ink, not canon", vocabulary)
    >>> [str(edit) for edit in understood.edits], [intent.value for intent in understood.intents]
    (['category_2 = Supplies > Printer Ink & Toner', 'brand != canon'], ['greeting', 'need'])
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from data.facets import PATH_SEPARATOR, Facets
from data.normalize import brand_key
from data.schema import Catalog
from retrieval.profile import PRICE, Constraint, Op

# How alike a misspelt word and a vocabulary word must be (difflib's ratio) to be read as that word.
TYPO_SIMILARITY = 0.82
# Words shorter than this are never corrected: too many short words are one letter apart.
MIN_TYPO_LENGTH = 5
# The most words a negation cue reaches ("no more of those cheap pens").
NEGATION_REACH = 5
MAX_MESSAGE_CHARS = 2000


class Intent(StrEnum):
    """What a message asks the assistant to do (several may come in one message)."""

    GREETING = "greeting"
    THANKS = "thanks"
    SMALL_TALK = "small_talk"
    NEED = "need"
    START_OVER = "start_over"
    SHOW_MORE = "show_more"
    SHOW_NOW = "show_now"
    NO_PREFERENCE = "no_preference"
    HUMAN = "human"
    COMPARE = "compare"
    MORE_LIKE = "more_like"
    LIKE = "like"
    DISLIKE = "dislike"
    CHOOSE = "choose"
    CHEAPER = "cheaper"
    CHEAPEST = "cheapest"


class EditKind(StrEnum):
    """How a slot edit changes the profile."""

    SET = "set"  # add the constraint (an "=" replaces the facet's earlier "=")
    CLEAR = "clear"  # drop every constraint on the facet ("actually, any brand")


@dataclass(frozen=True)
class SlotEdit:
    """One change a message makes to the interest profile.

    Attributes:
        kind: Add a constraint, or clear a facet.
        facet: The facet (``"brand"``, ``"category_2"``, :data:`retrieval.profile.PRICE`); for a category
            cleared, ``"category"`` (every level).
        constraint: The constraint added, for :attr:`EditKind.SET`.
        said: The words of the message that made it.
    """

    kind: EditKind
    facet: str
    constraint: Constraint | None = None
    said: str = ""

    def __post_init__(self) -> None:
        if (self.kind is EditKind.SET) != (self.constraint is not None):
            raise ValueError(f"slot edit {self.kind} on {self.facet!r}: a constraint goes with 'set' only")

    def __str__(self) -> str:
        if self.constraint is None:
            return f"{self.facet} any"
        value = self.constraint.value
        if isinstance(value, tuple):
            value = f"{value[0]:g}-{value[1]:g}"
        elif isinstance(value, float):
            value = f"{value:g}"
        return f"{self.facet} {self.constraint.op.value} {value}"


@dataclass(frozen=True)
class Understanding:
    """What one message means.

    Attributes:
        intents: What the shopper wants done, in a fixed order (greetings first, the need last).
        edits: Profile changes, in the order their words appear.
        references: 1-based positions of shown cards the message points at, in order, without repeats.
        need: The message's content words that no rule consumed, for retrieval to read ("" when none).
        price_asked: The message says something about price (answered honestly on a catalog without prices).
    """

    intents: tuple[Intent, ...] = ()
    edits: tuple[SlotEdit, ...] = ()
    references: tuple[int, ...] = ()
    need: str = ""
    price_asked: bool = False


# --- words -------------------------------------------------------------------------------------------------

# Function words and chat filler: never a need, never a catalog match on their own.
_STOPWORD_TEXT = """a an the and or but of for to in on at by with from into about as is are was were be been
    being am do does did i me my mine we our us you your it its this that these those there here some any
    something anything
    please pls plz can could would will shall should may might must need needs needed want wanted wants looking
    look find get got getting buy buying show see give have has had also just really very so too maybe kind sort
    like what which who whom how where when why hi hello hey thanks thank yes yeah no ok okay sure well one ones
    im i'm i'd i've i'll id ive ill it's thats that's let lets let's help searching search shopping shop item items
    product products thing things stuff good nice great new other else more less add not never without except instead
    rather than actually either neither nor nothing everything whatever don't dont doesn't isn't aren't won't can't
    cannot"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5,
    "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def singular(word: str) -> str:
    """A plain singular form, enough to match ``pens`` with ``Pen`` and ``boxes`` with ``Box``.

    Example:
        >>> [singular(w) for w in ["pens", "boxes", "batteries", "glasses", "status", "knives", "shelves"]]
        ['pen', 'box', 'battery', 'glass', 'status', 'knife', 'shelf']
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ives"):
        return word[:-3] + "fe"
    if word.endswith(("lves", "eaves")):
        return word[:-3] + "f"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A rough stem for matching category words: the singular, less a common suffix (``sticky`` and ``stick``,
    ``printer`` and ``printing`` meet). Both sides of a match are stemmed alike, so a crude cut does no harm.

    Example:
        >>> [stem(w) for w in ["sticky", "stick", "printers", "printing", "mounted", "notes"]]
        ['stick', 'stick', 'print', 'print', 'mount', 'note']
    """
    word = singular(word)
    for suffix, keep in (("ing", 4), ("ed", 4), ("er", 4), ("y", 4)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep - 1 and word.isalpha():
            return word[: -len(suffix)]
    return word


def words_of(text: str) -> list[str]:
    """Lower-case word tokens of a text (apostrophes kept inside words, possessive ``'s`` dropped)."""
    out = []
    for token in re.findall(r"[^\W_]+(?:['’][^\W_]+)*", text.casefold()):
        token = token.replace("’", "'")
        if token.endswith("'s"):
            token = token[:-2]
        out.append(token)
    return out


# --- the catalog's vocabulary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Alternative:
    words: tuple[str, ...]  # stems, the head last
    facet: str
    key: str
    level: int
    count: int
    label: frozenset[str]  # stems of the whole label's words


@dataclass(frozen=True, eq=False)
class CatalogVocabulary:
    """The words a catalog gives its categories and brands, built once per catalog (see the module docstring).

    Attributes:
        facets: The catalog's facets.
        has_prices: Whether any item has a price (otherwise price phrases make no edit).
    """

    facets: Facets
    has_prices: bool
    _alternatives: tuple[_Alternative, ...] = field(repr=False)
    _brands: dict[str, str] = field(repr=False)  # folded spelling (key, alias) -> brand key
    _brand_lengths: tuple[int, ...] = field(repr=False)  # word counts of the spellings, longest first
    _ambiguous_brands: frozenset[str] = field(repr=False)
    _known_words: frozenset[str] = field(repr=False)  # every word of the catalog's texts
    _fixable: dict[str, tuple[str, ...]] = field(repr=False)  # first letter -> vocabulary words
    _category_brands: dict[str, frozenset[str]] = field(repr=False)  # category key -> brands with items in it

    @classmethod
    def build(cls, catalog: Catalog, facets: Facets) -> CatalogVocabulary:
        alternatives: list[_Alternative] = []
        label_words: set[str] = set()
        for facet in facets.category_levels():
            for value in facet.values:
                label = frozenset(stem(w) for w in words_of(value.label) if w not in STOPWORDS)
                label_words.update(w for w in words_of(value.label) if w not in STOPWORDS)
                for part in label_alternatives(value.label):
                    words = tuple(stem(w) for w in words_of(part) if w not in STOPWORDS)
                    if words:
                        alternatives.append(
                            _Alternative(words, facet.name, value.key, facet.level or 0, value.count, label)
                        )
        brands: dict[str, str] = {}
        by_brand: dict[str, list[int]] = defaultdict(list)
        if "brand" in facets:
            brand_facet = facets["brand"]
            for value in brand_facet.values:
                brands.setdefault(value.key, value.key)
            # After every key, so that a brand's own key wins over another's alias ("ATT" over "AT&T" said bare).
            for value in brand_facet.values:
                for alias in _connector_aliases(value.label):
                    brands.setdefault(alias, value.key)
            for position in range(len(catalog)):
                code = int(brand_facet.codes[position])
                if code >= 0:
                    by_brand[brand_facet.values[code].key].append(position)
        known: set[str] = set()
        texts = []
        for item in catalog:
            words = words_of(f"{item.title} {item.description} {' '.join(item.categories)}")
            known.update(words)
            known.update(singular(w) for w in words)
            texts.append(" ".join(words))
        title_words = [set(words_of(item.title)) for item in catalog]
        ambiguous = set()
        for key, positions in by_brand.items():
            # A brand whose name other brands' titles use more often than it has items is also a plain word.
            others = sum(
                key in words and catalog.items[p].brand_key not in ("", key)
                for p, words in enumerate(title_words)
            )
            if others > len(positions):
                ambiguous.add(key)
            for alias in _initial_aliases(key, [catalog.items[p] for p in positions]):
                pattern = re.compile(rf"(?<!\w){re.escape(alias)}(?!\w)")
                if not any(
                    pattern.search(texts[p])
                    for p in range(len(catalog))
                    if catalog.items[p].brand_key not in ("", key)
                ):
                    brands.setdefault(alias, key)
        vocabulary_words = set(label_words)
        vocabulary_words |= {w for spelling in brands for w in spelling.split() if len(w) >= MIN_TYPO_LENGTH}
        fixable: dict[str, list[str]] = defaultdict(list)
        for word in sorted(vocabulary_words):
            if len(word) >= MIN_TYPO_LENGTH - 1:
                fixable[word[0]].append(word)
        return cls(
            facets=facets,
            has_prices=any(item.price is not None for item in catalog),
            _alternatives=tuple(alternatives),
            _brands=brands,
            _brand_lengths=tuple(sorted({len(s.split()) for s in brands} | {1, 2, 3}, reverse=True)),
            _ambiguous_brands=frozenset(ambiguous),
            _known_words=frozenset(known),
            _fixable={letter: tuple(words) for letter, words in fixable.items()},
            _category_brands=_category_brands(catalog, by_brand),
        )

    def knows(self, text: str) -> bool:
        """Whether any word of ``text`` appears in the catalog's texts."""
        return any(word in self._known_words for word in words_of(text))

    def fix_typo(self, word: str) -> str:
        """``word``, or the vocabulary word it misspells (see the module docstring)."""
        if (
            len(word) < MIN_TYPO_LENGTH
            or word in self._known_words
            or not word.isalpha()
            or word in STOPWORDS
        ):
            return word
        options = self._fixable.get(word[0], ())
        close = difflib.get_close_matches(word, options, n=1, cutoff=TYPO_SIMILARITY)
        if not close:
            close = difflib.get_close_matches(singular(word), options, n=1, cutoff=TYPO_SIMILARITY)
        return close[0] if close else word

    def brand_at(self, words: Sequence[str], start: int) -> tuple[str, int] | None:
        """The brand key named by the words from ``start`` and how many words name it; ``None`` if none."""
        for length in self._brand_lengths:
            if start + length > len(words):
                continue
            run = words[start : start + length]
            if run[0] in STOPWORDS:
                continue
            for spelling in (" ".join(run), brand_key("".join(run))):
                for form in (spelling, spelling[:-1] if spelling.endswith("s") else f"{spelling}s"):
                    if form and (found := self._brands.get(form)):
                        return found, length
        return None

    def is_ambiguous_brand(self, key: str) -> bool:
        return key in self._ambiguous_brands

    def category_at(
        self, words: Sequence[str], start: int, end: int, brands: frozenset[str] = frozenset()
    ) -> tuple[_Alternative, int, int] | None:
        """The category named by the phrase ``words[start:end]``: the alternative and the span it used; ``None``
        if none (rules in the module docstring). ``brands``: the brands the message asks for, whose categories
        win a tie ("acme pet food" is the food Acme Pet makes)."""
        forms = [stem(w) for w in words[start:end]]
        content = [i for i, form in enumerate(forms) if form not in STOPWORDS]
        if not content:
            return None
        # The head of an English noun phrase comes last ("sticky notes" are notes, a "desk lamp" is no desk):
        # when the catalog knows the phrase's last word, only a category with that head will do.
        head_at = content[-1]
        strict = words[start + head_at] in self._known_words
        best = None
        for alternative in self._alternatives:
            head = alternative.words[-1]
            if head not in forms:
                continue
            at = max(i for i, form in enumerate(forms) if form == head)
            if strict and at != head_at:
                continue
            window = set(forms[max(0, at - len(alternative.words) - 1) : at + 1])
            matched = sum(w in window for w in alternative.words)
            if matched * 2 < len(alternative.words):
                continue
            first = min(
                i
                for i in range(max(0, at - len(alternative.words) - 1), at + 1)
                if forms[i] in alternative.words
            )
            named = sum(form in alternative.label for form in set(forms))
            whole = matched == len(alternative.words)
            # More of the label's words said first ("label printer" is Desktop Label Printers, not Printers); then
            # an alternative said whole ("printer ink" is Printer Ink & Toner, not Inkjet Printer Ink); then, said
            # whole, the label said most fully ("tape" is Tape, not Tape, Adhesives & Fasteners), and said in part,
            # the broader category, the safer filter ("ink" is Printer Ink & Toner, not Bottled Ink).
            score = (
                at == head_at,
                named,
                whole,
                bool(brands & self._category_brands.get(alternative.key, frozenset())),
                named / len(alternative.label) if whole else -alternative.level,
                -alternative.level,
                alternative.count,
            )
            if best is None or score > best[0]:
                best = (score, alternative, start + first, start + at + 1)
        return None if best is None else (best[1], best[2], best[3])


def label_alternatives(label: str) -> tuple[str, ...]:
    """The alternatives a category label names, split at ``&``, ``and``, commas and slashes.

    Example:
        >>> label_alternatives("Sheet Protectors, Card & Photo Sleeves")
        ('Sheet Protectors', 'Card', 'Photo Sleeves')
    """
    return tuple(part for part in re.split(r"\s*(?:&|,|/|\band\b)\s*", label) if part.strip())


def _connector_aliases(brand: str) -> set[str]:
    """Spellings of a brand written with ``&`` or ``+`` as shoppers type it: with ``and`` in its place, or the
    sign left out (``Black+Decker`` = ``black and decker`` = ``black decker``)."""
    if not re.search(r"[&+]", brand):
        return set()
    return {brand_key(re.sub(r"\s*[&+]\s*", joint, brand)) for joint in (" and ", " ")} - {brand_key(brand)}


def _category_brands(catalog: Catalog, by_brand: Mapping[str, list[int]]) -> dict[str, frozenset[str]]:
    """Each category key (a path prefix) -> the brand keys of the items under it; ``by_brand``: each brand key's
    item positions, from the brand facet (so by maker: :func:`data.facets.maker_keys`)."""
    found: dict[str, set[str]] = defaultdict(set)
    for key, positions in by_brand.items():
        for position in positions:
            categories = catalog.items[position].categories
            for depth in range(1, len(categories) + 1):
                found[PATH_SEPARATOR.join(categories[:depth])].add(key)
    return {key: frozenset(brands) for key, brands in found.items()}


def _initial_aliases(key: str, items: Iterable) -> set[str]:
    """Runs of words in a brand's own item texts whose initials spell the brand (``hewlett packard`` -> hp)."""
    if not (2 <= len(key) <= 4 and key.isalpha()):
        return set()
    seen: Counter[str] = Counter()
    for item in items:
        # Capitalised runs only: a name, not a phrase that happens to share the initials ("high performance").
        words = re.findall(r"[A-Z][a-z]+", f"{item.title} {item.description}")
        text = f"{item.title} {item.description}"
        for start in range(len(words) - len(key) + 1):
            run = words[start : start + len(key)]
            phrase = r"\W+".join(run)
            if "".join(w[0] for w in run).casefold() == key and re.search(phrase, text):
                seen[" ".join(run).casefold()] += 1
    return {alias for alias, count in seen.items() if count >= 2}


# --- rules in plain English ----------------------------------------------------------------------------------


def _phrases(*texts: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])(?:" + "|".join(texts) + r")(?![\w'])")


_INTENT_PATTERNS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (
        Intent.GREETING,
        _phrases(
            r"hi+", r"hello+", r"hey+", r"hiya", r"howdy", r"good (?:morning|afternoon|evening)", r"greetings"
        ),
    ),
    (
        Intent.THANKS,
        _phrases(r"thanks?(?: you)?(?: so much)?", r"thx", r"ty", r"cheers", r"much appreciated"),
    ),
    (
        Intent.SMALL_TALK,
        _phrases(
            r"how are you(?: doing)?",
            r"how's it going",
            r"who are you",
            r"what can you do",
            r"are you (?:a )?(?:bot|robot|human|real)",
            r"nice weather",
            r"lol",
            r"haha+",
            r"what's up",
            r"whats up",
        ),
    ),
    (
        Intent.START_OVER,
        _phrases(
            r"start (?:over|again)",
            r"restart",
            r"reset",
            r"new search",
            r"from scratch",
            r"begin again",
            r"clear (?:everything|all)",
        ),
    ),
    (
        Intent.HUMAN,
        _phrases(
            r"(?:talk|speak|chat) (?:to|with) (?:a |an |some )?"
            r"(?:person|human|agent|someone|somebody|representative|rep|real person|operator)",
            r"(?:real|live) (?:person|human|agent)",
            r"customer (?:service|support)",
            r"human agent",
            r"(?:a )?human please",
            r"operator",
        ),
    ),
    (
        Intent.SHOW_NOW,
        _phrases(
            r"just show me",
            r"show me (?:now|what you (?:have|got)|products|options|some options|results|them)",
            r"skip (?:the )?questions",
            r"no more questions",
            r"(?:recommend|suggest) (?:something|some)(?: now)?",
            r"(?:let me|can i) see (?:some|them|what you have)",
        ),
    ),
    (
        Intent.SHOW_MORE,
        _phrases(
            r"show (?:me )?(?:some )?others?",
            r"other (?:ones|options|products|choices)",
            r"something else",
            r"anything else",
            r"more (?:options|choices|results|please)",
            r"different ones",
            r"next (?:ones|page|batch)",
            r"show more",
            r"none of (?:these|those|them)",
            r"see more",
        ),
    ),
    (
        Intent.NO_PREFERENCE,
        _phrases(
            r"no preference",
            r"(?:doesn't|doesnt|does not|don't|dont) matter",
            r"(?:i )?(?:don't|dont|do not) care",
            r"(?:any|either) (?:is|one is|would be) fine",
            r"whatever",
            r"either",
            r"skip(?: this| that| it)?",
            r"not sure",
            r"no idea",
            r"(?:i )?(?:don't|dont) know",
            r"any(?:thing)? (?:is|would be) (?:fine|ok|okay|good)",
            r"no pref",
        ),
    ),
    (
        Intent.COMPARE,
        _phrases(
            r"compare",
            r"difference between",
            r"differences between",
            r"vs\.?",
            r"versus",
            r"which is better",
            r"side by side",
        ),
    ),
    (
        Intent.MORE_LIKE,
        _phrases(
            r"more like",
            r"similar to",
            r"something like",
            r"others like",
            r"like (?:#|number |no\.? ?)?\d(?: but| only)",
            r"same as",
        ),
    ),
    (
        Intent.CHOOSE,
        _phrases(
            r"i'?ll take",
            r"i will take",
            r"i'll buy",
            r"i will buy",
            r"(?:to|in|into) (?:my |the )?(?:cart|basket)",
            r"that's the one",
            r"thats the one",
            r"i'?ll go with",
            r"i want (?:that|this) one",
            r"sold",
            r"i'll get",
            r"order (?:it|that|this)",
        ),
    ),
    (
        Intent.DISLIKE,
        _phrases(
            r"(?:don't|dont|do not) like",
            r"not (?:a fan of|keen on|interested in)",
            r"dislike",
            r"thumbs down",
            r"👎",
        ),
    ),
    (
        Intent.LIKE,
        _phrases(
            r"i (?:like|love)",
            r"(?:looks|look|sounds|seems) (?:good|great|nice|perfect)",
            r"thumbs up",
            r"👍",
            r"(?:like|love) (?:the |that |this )?(?:#|number |no\.? ?)?(?:\d|first|second|third|fourth|fifth|last)",
        ),
    ),
    (Intent.CHEAPEST, _phrases(r"cheapest", r"least expensive", r"lowest price", r"most affordable")),
    (
        Intent.CHEAPER,
        _phrases(
            r"cheaper",
            r"less expensive",
            r"lower price",
            r"more affordable",
            r"too expensive",
            r"too pricey",
            r"costs? less",
            r"on a budget",
        ),
    ),
)
_NEGATION = _phrases(
    r"not",
    r"no more",
    r"no",
    r"nothing from",
    r"anything but",
    r"except(?: for)?",
    r"without",
    r"other than",
    r"(?:don't|dont|do not) (?:want|need|like|show me)",
    r"never",
    r"avoid",
    r"excluding",
    r"but not",
    r"instead of",
    r"rather than",
    r"not a fan of",
    r"no thanks to",
    r"hate",
    r"skip",
)
_CLEAR = re.compile(
    r"(?<![\w'])(?:any|whatever|all|every) (brand|category|kind|type|price|budget)s?(?![\w'])"
    r"|(?<![\w'])(brand|category|price|budget)s? (?:doesn't|doesnt|does not|don't|dont) matter(?![\w'])"
    r"|(?<![\w'])(?:don't|dont|do not) care about (?:the )?(brand|category|price)s?(?![\w'])"
)
_NUMBER = r"\$?\s?(\d+(?:[.,]\d{1,2})?)\s?(?:dollars?|bucks|usd|eur|euros?|pounds?|gbp|[$€£])?"
_PRICE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("between", re.compile(r"(?:between|from) " + _NUMBER + r" (?:and|to|-) " + _NUMBER)),
    ("between", re.compile(r"\$\s?(\d+(?:[.,]\d{1,2})?)\s?(?:-|to)\s?\$?\s?(\d+(?:[.,]\d{1,2})?)")),
    (
        "between",
        re.compile(
            r"(\d+(?:[.,]\d{1,2})?)\s?(?:-|to)\s?(\d+(?:[.,]\d{1,2})?) ?(?:dollars|bucks|usd|euros?|pounds)"
        ),
    ),
    (
        "<",
        re.compile(
            r"(?:not (?:more|over|above) than|no more than|not over|at most|under|below|less than|cheaper than"
            r"|max(?:imum)?|up to|within|budget(?: is| of)?|spend(?:ing)? (?:at most |up to )?|<|tops)\s?:?\s?"
            + _NUMBER
        ),
    ),
    (
        ">",
        re.compile(
            r"(?:not (?:less|under|below) than|no less than|at least|over|above|more than|min(?:imum)?"
            r"|starting at|>)\s?:?\s?" + _NUMBER
        ),
    ),
    ("around", re.compile(r"(?:around|about|roughly|approximately|~)\s?" + _NUMBER)),
    ("<", re.compile(r"\$\s?(\d+(?:[.,]\d{1,2})?)|(\d+(?:[.,]\d{1,2})?) ?(?:dollars|bucks)")),
)
_PRICE_WORDS = _phrases(
    r"price[sd]?",
    r"pricing",
    r"cost(?:s|ing)?",
    r"budget",
    r"cheap(?:er|est)?",
    r"expensive",
    r"afford(?:able)?",
    r"how much",
    r"\$",
    r"dollars?",
    r"bucks",
)
_REFERENCE = re.compile(
    r"(?:#|number |no\.? ?|option |item |choice |card )(\d+)"
    r"|(?<![\w'])(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|sixth|6th|last)"
    r"(?: one| option| item| pick)?(?![\w'])"
)
_BARE_NUMBERS = re.compile(r"(?<![\w$#.])(\d)(?![\w.%$])")
_FILLER = _phrases(
    r"i'?m looking for",
    r"i am looking for",
    r"looking for",
    r"i need",
    r"i want",
    r"i'd like",
    r"do you have",
    r"can you (?:help me )?find",
    r"help me find",
    r"show me",
    r"what about",
    r"how about",
    r"please",
)


def understand(message: str, vocabulary: CatalogVocabulary, shown: int = 0) -> Understanding:
    """What one message means (see the module docstring).

    Args:
        message: The shopper's text, as typed.
        vocabulary: The catalog's vocabulary.
        shown: How many cards the shopper sees now; with none shown, ``#2`` or ``the first`` are need words
            (``number 2 pencils``), not references.
    """
    text = " ".join(message.casefold().replace("’", "'").split())[:MAX_MESSAGE_CHARS]
    taken = [False] * len(text)

    def free(match: re.Match[str]) -> bool:
        return not any(taken[match.start() : match.end()])

    def take(match: re.Match[str]) -> None:
        taken[match.start() : match.end()] = [True] * (match.end() - match.start())

    intents: list[Intent] = []
    clears = list(_CLEAR.finditer(text))
    for intent, pattern in _INTENT_PATTERNS:
        for match in pattern.finditer(text):
            if free(match) and not (intent is Intent.NO_PREFERENCE and clears):
                intents.append(intent)
                take(match)
                break

    edits: list[tuple[int, SlotEdit]] = []
    price_asked = bool(_PRICE_WORDS.search(text))
    for match in clears:
        slot = next(group for group in match.groups() if group)
        facet = {"brand": "brand", "price": PRICE, "budget": PRICE}.get(slot, "category")
        price_asked |= facet == PRICE
        if facet != PRICE or vocabulary.has_prices:
            edits.append((match.start(), SlotEdit(EditKind.CLEAR, facet, said=match.group(0))))
        take(match)
    for kind, pattern in _PRICE_PATTERNS:
        for match in pattern.finditer(text):
            if not free(match):
                continue
            take(match)
            price_asked = True
            numbers = [float(group.replace(",", ".")) for group in match.groups() if group]
            constraint = _price_constraint(kind, numbers)
            if constraint is not None and vocabulary.has_prices:
                edits.append((match.start(), SlotEdit(EditKind.SET, PRICE, constraint, match.group(0))))

    references = _references(text, intents, shown, free, take)
    if not references:
        intents = [i for i in intents if i not in (Intent.LIKE, Intent.DISLIKE)]
    for match in _FILLER.finditer(text):
        if free(match):
            take(match)

    # The words left, typos fixed; then brands, then categories phrase by phrase.
    spans = [
        (m.start(), m.end(), m.group(0).removesuffix("'s"))
        for m in re.finditer(r"[^\W_]+(?:'[^\W_]+)*", text)
        if free(m)
    ]
    words = [vocabulary.fix_typo(word) for _, _, word in spans]
    used = [False] * len(words)
    negation_ends = [m.end() for m in _NEGATION.finditer(text)]

    def negated(index: int) -> bool:
        start = spans[index][0]
        for end in negation_ends:
            between = text[end:start]
            if end <= start and len(between.split()) < NEGATION_REACH and not _SEPARATOR.search(between):
                return True
        return False

    openers = _openers(text, spans, words)

    def owned(index: int) -> bool:
        return openers[index] in _OWNER_WORDS

    def said(first: int, last: int) -> str:
        return text[spans[first][0] : spans[last - 1][1]]

    index = 0
    while index < len(words):
        found = vocabulary.brand_at(words, index)
        if found is None:
            index += 1
            continue
        key, length = found
        before = text[max(0, spans[index][0] - 12) : spans[index][0]]
        cued = (
            bool(_BRAND_CUE.search(before))
            or negated(index)
            or words[index + length : index + length + 1] == ["brand"]
        )
        if owned(index) or (vocabulary.is_ambiguous_brand(key) and not cued):
            index += 1
            continue
        op = Op.NE if negated(index) else Op.EQ
        edits.append(
            (
                spans[index][0],
                SlotEdit(EditKind.SET, "brand", Constraint("brand", op, key), said(index, index + length)),
            )
        )
        used[index : index + length] = [True] * length
        index += length

    # One category per phrase; what is left of a phrase on either side of a match is searched again. A category
    # the shopper owns ("ink for my printer") is no edit, and stays in the need.
    wanted_brands = frozenset(
        str(e.constraint.value)
        for _, e in edits
        if e.facet == "brand" and e.constraint and e.constraint.op is Op.EQ
    )
    for segment in _segments(text, spans, words, used):
        if owned(segment[0]):
            continue
        found = vocabulary.category_at(words, segment[0], segment[-1] + 1, wanted_brands)
        if found is None:
            continue
        alternative, first, last = found
        op = Op.NE if negated(first) else Op.EQ
        constraint = Constraint(alternative.facet, op, alternative.key)
        edits.append(
            (spans[first][0], SlotEdit(EditKind.SET, alternative.facet, constraint, said(first, last)))
        )
        used[first:last] = [True] * (last - first)

    edits = _without_ancestors(edits)
    need = " ".join(
        dict.fromkeys(
            word
            for i, word in enumerate(words)
            if not used[i]
            and not negated(i)
            and word not in STOPWORDS
            and not word.isdigit()
            and len(word) > 1
        )
    )
    wants = need or any(e.constraint and e.constraint.op is Op.EQ and e.facet != PRICE for _, e in edits)
    if wants and not any(i in intents for i in (Intent.COMPARE, Intent.CHOOSE)):
        intents.append(Intent.NEED)
    order = {intent: n for n, intent in enumerate(Intent)}
    return Understanding(
        intents=tuple(sorted(dict.fromkeys(intents), key=order.__getitem__)),
        edits=tuple(edit for _, edit in sorted(edits, key=lambda pair: pair[0])),
        references=references,
        need=need,
        price_asked=price_asked or Intent.CHEAPER in intents or Intent.CHEAPEST in intents,
    )


# Words that end a noun phrase; after the owner words, the phrase says what the shopper has or what the item is
# for ("ink for my printer", "compatible with hp"), not what they want.
_CLAUSE_WORDS = frozenset(
    {"and", "or", "but", "just", "only", "instead", "for", "with", "to", "from", "of", "in", "on", "at"}
    | {"that", "which", "who", "whose", "without", "except"}
)
_OWNER_WORDS = frozenset({"for", "with", "to"})
_SEPARATOR = re.compile(r"[,;.!?]|(?<![\w'])(?:but|and|or|just|only|instead)(?![\w'])")
_BRAND_CUE = re.compile(r"(?:brand|by|from|make|made by|maker)\W*$")
_POINTING = (Intent.COMPARE, Intent.MORE_LIKE, Intent.LIKE, Intent.DISLIKE, Intent.CHOOSE)


def _references(text: str, intents: list[Intent], shown: int, free, take) -> tuple[int, ...]:
    """1-based card positions the message points at; none while no card is shown."""
    if not shown:
        return ()
    pointing = any(intent in intents for intent in _POINTING)
    found: list[int] = []
    for match in _REFERENCE.finditer(text):
        number, ordinal = match.groups()
        if not free(match) or (
            ordinal and not pointing and not re.search(r" (?:one|option|item|pick)$", match.group(0))
        ):
            continue
        found.append(int(number) if number else shown if ordinal == "last" else _ORDINALS[ordinal])
        take(match)
    if pointing:
        for match in _BARE_NUMBERS.finditer(text):
            if free(match):
                found.append(int(match.group(1)))
                take(match)
    # "#0" points at no card: cards are numbered from 1.
    return tuple(dict.fromkeys(n for n in found if n >= 1))


def _openers(text: str, spans, words: list[str]) -> list[str]:
    """For each word, the clause word before it in its clause (``for`` in "ink for my printer"), or ""."""
    openers, opener = [], ""
    for i, word in enumerate(words):
        gap = text[spans[i - 1][1] : spans[i][0]] if i else ""
        if re.search(r"[,;.!?:]", gap):
            opener = ""
        openers.append(opener)
        if word in _CLAUSE_WORDS:
            opener = word
    return openers


def _segments(text: str, spans, words: list[str], used: list[bool]) -> list[list[int]]:
    """Runs of unused word positions, cut at punctuation, clause words (conjunctions, prepositions) and used
    words: each run is one noun phrase at most."""
    segments: list[list[int]] = []
    current: list[int] = []
    for i, word in enumerate(words):
        gap = text[spans[i - 1][1] : spans[i][0]] if i else ""
        if used[i] or word in _CLAUSE_WORDS or re.search(r"[,;.!?:]", gap):
            if current:
                segments.append(current)
            current = []
            if used[i] or word in _CLAUSE_WORDS:
                continue
        current.append(i)
    if current:
        segments.append(current)
    return segments


def _without_ancestors(edits: list[tuple[int, SlotEdit]]) -> list[tuple[int, SlotEdit]]:
    """Drop a wanted category that another wanted category of the message lies under ("office calendar": the
    calendars say more than the office supplies above them)."""
    wanted = [
        str(e.constraint.value)
        for _, e in edits
        if e.constraint and e.constraint.op is Op.EQ and e.facet.startswith("category_")
    ]
    return [
        (at, e)
        for at, e in edits
        if not (
            e.constraint
            and e.constraint.op is Op.EQ
            and e.facet.startswith("category_")
            and any(other.startswith(f"{e.constraint.value}{PATH_SEPARATOR}") for other in wanted)
        )
    ]


def _price_constraint(kind: str, numbers: list[float]) -> Constraint | None:
    if not numbers:
        return None
    if kind == "between" and len(numbers) >= 2:
        low, high = sorted(numbers[:2])
        return Constraint(PRICE, Op.BETWEEN, (low, high))
    if kind == "around":
        return Constraint(PRICE, Op.BETWEEN, (round(numbers[0] * 0.8, 2), round(numbers[0] * 1.2, 2)))
    if kind == ">":
        return Constraint(PRICE, Op.GT, numbers[0])
    return Constraint(PRICE, Op.LT, numbers[0])
