"""The simulated shopper of the cold-start benchmark.

An :class:`Episode` is a test shopper and a target item (their last one). The shopper answers from the target's
catalog metadata only and never sees a system, a score or a ranking; every system is asked the same questions
and gets the same answers, as a :class:`retrieval.profile.Profile`.

Answer orders (:class:`Order`, see :func:`question_order`):

- ``facets-first``: the first informative category level (``category_1`` on a usual catalog), the second, ``brand``,
  the need statement (``need``), the third category level, deeper category levels, then ``price_band``, then
  attribute facets (widest coverage first).
- ``need-first`` (the headline: real shoppers open with a need): the same with the need moved to the front.

Facets with fewer than two values are left out of the order. A category answer is the target's own value at
that level, or "no preference" when it has none. The brand answer is the target's maker (its brand, or the known
brand its title opens with: :func:`data.facets.maker_keys`), except "no preference" with probability
``EvalSettings.brand_no_preference`` (drawn once per episode from its seed) or when the target has no maker.
Price band and attributes answer the target's value or "no preference". The conversation engine's question on
title words is answered with the first offered word the target's title has, "no preference" when it has none
(:meth:`SimulatedShopper.pick_word`).

Need statements come in three vocabularies (:class:`Vocabulary`); with no usable word the shopper states no need
("no preference"). Words are the letter runs of :func:`content_words`; brand words (the target's and every catalog
brand's key) and tokens with a digit (model numbers, sizes, counts) never occur.

- ``specific``: 2-5 words of the target's category leaf and title. Up to 3 leaf words, then at most 2 other title
  words that occur in at least :data:`MIN_TITLE_DOCUMENT_FREQUENCY` catalog titles, drawn at random (seeded per
  episode), never as many as the title has content words; when that gives fewer than 2 words, words of the parent
  category levels are added. Title words come first, in title order ("retractable ballpoint pens"). A statement
  that would contain every word of the title (singular and plural alike) loses title words, then category words,
  from the end until it does not.
- ``vague`` (the headline): words many items share: up to 3 words of the leaf (of the nearest parent level
  when the leaf has none) plus at most one title word that occurs in at least :data:`VAGUE_LEAF_SHARE` of the
  titles of the target's leaf category (drawn at random, seeded per episode, when several do).
- ``paraphrased``: the target's stored paraphrase (:mod:`data.paraphrases`): what it is for, in words its own text
  lacks, written once by the packaged language model and checked. A target without one states no need; the
  benchmark runs this vocabulary on the episodes whose target has one and reports how many.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np

from data.facets import PATH_SEPARATOR, Facet, FacetKind, Facets
from data.schema import Catalog, Item
from data.settings import EvalSettings
from data.splits import Split, stable_seed
from retrieval.profile import Constraint, Op, Profile

NEED = "need"
NO_PREFERENCE = "no preference"
MIN_TITLE_DOCUMENT_FREQUENCY = 3
MAX_LEAF_WORDS = 3
MAX_TITLE_WORDS = 2
MIN_NEED_WORDS = 2
VAGUE_LEAF_SHARE = 0.25


class Vocabulary(StrEnum):
    """How the simulated shopper words their need (see the module docstring)."""

    SPECIFIC = "specific"
    VAGUE = "vague"
    PARAPHRASED = "paraphrased"


class Order(StrEnum):
    """Which questions the simulated shopper answers first (see the module docstring)."""

    NEED_FIRST = "need-first"
    FACETS_FIRST = "facets-first"


Reaction = Literal["like", "dislike"]

_RAW_TOKEN_SPLIT = re.compile(r"[\s,;:/()\[\]{}|+*]+")
_LETTERS = re.compile(r"[^\W\d_]+")
_STOP_TEXT = """
    a about above after all also an and any are as at be been but by can each for from has have her his how if
    in into is it its just more most no nor not of off on one only or our out over per so some such than that
    the their them then there these they this those to too two three four five six ten twelve under up very via
    was we were what when which while who will with without you your
    pack packs package packaging count counts piece pieces pcs pc set sets box boxes case item items unit units
    each dozen inch inches yard yards foot feet lbs pound pounds ounce ounces size sizes assorted new may vary
    image shown includes include including use used sale hot free
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())


def raw_tokens(text: str) -> list[str]:
    """A text's tokens: split at spaces and punctuation that never joins a word (hyphens and dots stay)."""
    return [token for token in _RAW_TOKEN_SPLIT.split(text) if token]


def _words(text: str) -> list[str]:
    """Lowercase letter runs of the tokens without a digit (a token with one is a model number or a size)."""
    return [
        word.casefold()
        for token in raw_tokens(text)
        if not any(ch.isdigit() for ch in token)
        for word in _LETTERS.findall(token)
    ]


def same_word(word: str, others: Iterable[str]) -> bool:
    """Whether ``word`` is one of ``others``, singular and plural alike ("pen" is "pens")."""
    stem = word.removesuffix("s")
    return any(stem == other.removesuffix("s") for other in others)


def content_words(text: str) -> list[str]:
    """The content words of a text: lowercase letter runs of tokens without a digit, of 3 letters or more, that
    are not stop words or generic packaging words; in order, repeats kept.

    Example:
        >>> content_words("BIC Round Stic Ball Pens, 12 Count, Red (GSF11)")
        ['bic', 'round', 'stic', 'ball', 'pens', 'red']
    """
    return [word for word in _words(text) if len(word) >= 3 and word not in _STOP_WORDS]


@dataclass(frozen=True)
class Episode:
    """One benchmark episode.

    Attributes:
        episode_id: Unique opaque id (it names neither the user nor the target), the profile's session id.
        user_id: The test shopper.
        target: The item the shopper wants: the last item of their history.
        others: The shopper's other distinct items, oldest first.
        seed: Seeds everything random in this episode (the brand answer, the need statement's title words).
    """

    episode_id: str
    user_id: str
    target: str
    others: tuple[str, ...]
    seed: int


def episodes_from_split(
    split: Split, settings: EvalSettings, max_episodes: int | None = None, *, validation: bool = False
) -> list[Episode]:
    """One episode per test user (sorted by user id); with ``max_episodes``, a seeded sample of them.

    With ``validation``, one per validation user instead: the episodes to tune settings on, so that the test
    episodes stay unseen.

    Example:
        >>> from data.schema import Catalog, Interaction, Interactions, Item
        >>> from data.splits import make_split
        >>> catalog = Catalog([Item(f"i{n}", "x") for n in range(5)])
        >>> events = Interactions([Interaction(f"u{u}", f"i{n}", order=n) for u in range(10) for n in range(u % 5)])
        >>> split = make_split(catalog, events, EvalSettings(test_share=0.5))
        >>> [(e.target, e.others) for e in episodes_from_split(split, EvalSettings(), max_episodes=2)]
        [('i0', ()), ('i1', ('i0',))]
    """
    pool = split.validation_users if validation else split.test_users
    users = [user for user in pool if split.histories.get(user)]
    if max_episodes is not None and max_episodes < len(users):
        rng = np.random.default_rng(stable_seed(settings.seed, "episodes"))
        chosen = set(rng.choice(len(users), size=max_episodes, replace=False).tolist())
        users = [user for position, user in enumerate(users) if position in chosen]
    episodes = []
    for user in users:
        history = split.histories[user]
        target = history[-1]
        others = tuple(item for item in dict.fromkeys(history) if item != target)
        seed = stable_seed(settings.seed, "episode", user)
        episodes.append(Episode(f"episode-{seed:016x}", user, target, others, seed))
    return episodes


def question_order(facets: Facets, order: Order = Order.NEED_FIRST) -> tuple[str, ...]:
    """The benchmark's answer order over a catalog's informative facets (see the module docstring).

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Item
        >>> paths = [("A", "B", "C"), ("A", "D", "E"), ("F", "G", "H")]
        >>> items = [Item(str(n), "x", brand=str(n), categories=path) for n, path in enumerate(paths)]
        >>> facets = discover_facets(Catalog(items))
        >>> question_order(facets, Order.FACETS_FIRST)
        ('category_1', 'category_2', 'brand', 'need', 'category_3')
        >>> question_order(facets)
        ('need', 'category_1', 'category_2', 'brand', 'category_3')
    """
    informative = [facet for facet in facets if facet.informative]
    categories = [facet.name for facet in informative if facet.kind is FacetKind.CATEGORY]
    brand = [facet.name for facet in informative if facet.kind is FacetKind.BRAND]
    rest = [facet.name for facet in informative if facet.kind in (FacetKind.PRICE_BAND, FacetKind.ATTRIBUTE)]
    facets_first = (*categories[:2], *brand, NEED, *categories[2:], *rest)
    if Order(order) is Order.FACETS_FIRST:
        return facets_first
    return (NEED, *(name for name in facets_first if name != NEED))


@dataclass(frozen=True)
class Answer:
    """One answer of the simulated shopper.

    Attributes:
        question: The facet name, or :data:`NEED`.
        value: The facet value key or the need statement; ``None`` for "no preference".
        text: What the shopper says (the value's label, the statement, or ``"no preference"``).
    """

    question: str
    value: str | None
    text: str

    @property
    def no_preference(self) -> bool:
        return self.value is None


@dataclass(frozen=True, eq=False)
class ShopperWorld:
    """What every simulated shopper of one catalog knows: the catalog, its facets, and word statistics.

    Built once per benchmark run so that each episode's shopper is cheap.

    Attributes:
        catalog: The catalog.
        facets: Its facets.
        settings: The evaluation settings (``brand_no_preference``).
        order: :func:`question_order` of the facets in the run's :class:`Order`.
        brand_keys: Every catalog brand's matching key.
        title_frequency: In how many catalog titles each word occurs.
        leaf_title_frequency: Per category leaf path, in how many of its items' titles each word occurs.
        leaf_sizes: Per category leaf path, how many items it holds.
        paraphrases: Item id -> its stored paraphrase (the ``paraphrased`` vocabulary).
    """

    catalog: Catalog
    facets: Facets
    settings: EvalSettings
    order: tuple[str, ...]
    brand_keys: frozenset[str]
    title_frequency: Counter[str]
    leaf_title_frequency: Mapping[str, Counter[str]]
    leaf_sizes: Counter[str]
    paraphrases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        facets: Facets,
        settings: EvalSettings,
        order: Order = Order.NEED_FIRST,
        paraphrases: Mapping[str, str] | None = None,
    ) -> ShopperWorld:
        frequency: Counter[str] = Counter()
        per_leaf: dict[str, Counter[str]] = {}
        sizes: Counter[str] = Counter()
        for item in catalog:
            words = set(_words(item.title))
            frequency.update(words)
            leaf = PATH_SEPARATOR.join(item.categories)
            per_leaf.setdefault(leaf, Counter()).update(words)
            sizes[leaf] += 1
        keys = frozenset(item.brand_key for item in catalog if item.brand_key)
        return cls(
            catalog,
            facets,
            settings,
            question_order(facets, order),
            keys,
            frequency,
            per_leaf,
            sizes,
            dict(paraphrases or {}),
        )


class SimulatedShopper:
    """A test shopper looking for one target item, answering from its metadata only.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Item
        >>> items = [
        ...     Item("p1", "BIC Round Stic Ball Pens, Medium Point, Red (GSF11)", brand="BIC",
        ...          categories=("Office", "Writing", "Ballpoint Pens")),
        ...     Item("p2", "Retractable Ball Pens, Medium, Blue", brand="Pilot",
        ...          categories=("Office", "Writing", "Gel Pens")),
        ...     Item("p3", "Retractable Round Pens, Medium Point", brand="Zebra", categories=("School", "Paper")),
        ... ]
        >>> catalog = Catalog(items)
        >>> settings = EvalSettings(brand_no_preference=0.0)
        >>> world = ShopperWorld.build(catalog, discover_facets(catalog), settings, Order.FACETS_FIRST)
        >>> episode = Episode("e1", "u1", "p1", ("p2",), seed=7)
        >>> shopper = SimulatedShopper(episode, world, Vocabulary.SPECIFIC)
        >>> for answer in shopper.answers(5):
        ...     print(f"{answer.question}: {answer.text}")
        category_1: Office
        category_2: Writing
        brand: BIC
        need: medium ballpoint pens
        category_3: Ballpoint Pens
        >>> SimulatedShopper(episode, world, Vocabulary.VAGUE).need  # the leaf's only item: any title word is common
        'point ballpoint pens'
        >>> profile = shopper.profile(3, feedback=1)
        >>> profile.values(), profile.need, profile.liked, profile.session_id
        ({'category_1': 'Office', 'category_2': 'Office > Writing', 'brand': 'bic'}, '', ('p2',), 'e1')
        >>> shopper.react(["p1", "p3"])
        {'p1': 'like', 'p3': 'dislike'}
    """

    def __init__(
        self, episode: Episode, world: ShopperWorld, vocabulary: Vocabulary = Vocabulary.VAGUE
    ) -> None:
        self.episode = episode
        self.vocabulary = Vocabulary(vocabulary)
        self._world = world
        self._target = world.catalog[episode.target]
        self._position = world.catalog.position(episode.target)
        rng = np.random.default_rng(episode.seed)
        self._brand_withheld = bool(rng.random() < world.settings.brand_no_preference)
        if self.vocabulary is Vocabulary.SPECIFIC:
            self.need = need_statement(self._target, world, rng)
        elif self.vocabulary is Vocabulary.VAGUE:
            self.need = vague_need_statement(self._target, world, rng)
        else:
            self.need = world.paraphrases.get(episode.target, "")
        self._liked = frozenset((episode.target, *episode.others))

    @property
    def order(self) -> tuple[str, ...]:
        return self._world.order

    def answers(self, k: int) -> list[Answer]:
        """Answers to the first ``k`` questions of the order (fewer when the catalog has fewer facets)."""
        return [self.answer(question) for question in self._world.order[:k]]

    @property
    def target(self) -> Item:
        return self._target

    @property
    def maker(self) -> str:
        """The target's maker as a brand key (:func:`data.facets.maker_keys`), ``""`` when it has none; unlike the
        brand answer, never withheld (the shopper knows whose item it wants even when it says "no preference")."""
        if "brand" not in self._world.facets:
            return self._target.brand_key
        value = self._world.facets["brand"].value_of(self._position)
        return "" if value is None else value.key

    def answer(self, question: str) -> Answer:
        """The answer to one question: a facet name (any facet of the catalog) or :data:`NEED`."""
        if question == NEED:
            return Answer(NEED, self.need, self.need) if self.need else Answer(NEED, None, NO_PREFERENCE)
        facet: Facet = self._world.facets[question]
        value = facet.value_of(self._position)
        if value is None or (facet.kind is FacetKind.BRAND and self._brand_withheld):
            return Answer(question, None, NO_PREFERENCE)
        return Answer(question, value.key, value.label)

    def pick_word(self, keys: Iterable[str]) -> int | None:
        """The answer to a question on title words (:data:`assistant.policy.WORDS`): the position of the first
        offered word key that the target's title has, ``None`` ("no preference") when it has none of them."""
        from assistant.title_words import title_keys

        own = set(title_keys(self._target.title))
        return next((n for n, key in enumerate(keys) if key in own), None)

    def react(self, item_ids: Iterable[str]) -> dict[str, Reaction]:
        """Likes the target and the shopper's other items, dislikes everything else."""
        return {item_id: "like" if item_id in self._liked else "dislike" for item_id in item_ids}

    def profile(self, k: int, feedback: int = 0) -> Profile:
        """The profile a system receives after ``k`` answers.

        Args:
            k: How many questions of the order the shopper has answered.
            feedback: How many of the shopper's own earlier items they have liked before the slate (their
                latest purchases first, as if thumbed up on an earlier card); fewer when they have fewer.
        """
        answers = self.answers(k)
        liked = self.episode.others[::-1][:feedback] if feedback > 0 else ()
        return Profile(
            constraints=tuple(
                Constraint(a.question, Op.EQ, a.value)
                for a in answers
                if a.question != NEED and a.value is not None
            ),
            need=next((a.value for a in answers if a.question == NEED and a.value is not None), ""),
            liked=tuple(liked),
            answered=len(answers),
            session_id=self.episode.episode_id,
        )


def _usable_word(item: Item, world: ShopperWorld):
    own_brand = {*_words(item.brand), item.brand_key}

    def usable(word: str) -> bool:
        return (
            len(word) >= 3
            and word not in _STOP_WORDS
            and word not in own_brand
            and word not in world.brand_keys
        )

    return usable


def need_statement(item: Item, world: ShopperWorld, rng: np.random.Generator) -> str:
    """The ``specific`` need statement of a shopper looking for ``item`` (rule in the module docstring)."""
    usable = _usable_word(item, world)

    def category_words(level: str) -> list[str]:
        return list(dict.fromkeys(word for word in _words(level) if usable(word)))

    levels = list(item.categories)
    category = category_words(levels.pop())[:MAX_LEAF_WORDS] if levels else []
    title_content = list(
        dict.fromkeys(
            word
            for word in _words(item.title)
            if usable(word) and world.title_frequency[word] >= MIN_TITLE_DOCUMENT_FREQUENCY
        )
    )
    candidates = [word for word in title_content if not same_word(word, category)]
    budget = min(MAX_TITLE_WORDS, len(title_content) - 1, len(candidates))
    chosen = set(rng.choice(len(candidates), size=budget, replace=False).tolist()) if budget > 0 else set()
    from_title = [word for position, word in enumerate(candidates) if position in chosen]
    while levels and len(from_title) + len(category) < MIN_NEED_WORDS:
        extra = [
            word for word in category_words(levels.pop()) if not same_word(word, [*category, *from_title])
        ]
        category = [*category, *extra[: MIN_NEED_WORDS - len(from_title) - len(category)]]
    title_words = set(_LETTERS.findall(item.title.casefold()))
    # Plural-blind, so that "thermal laminators" never restates the title "Thermal Laminator"; title words go
    # before category words, which carry the need.
    while from_title or category:
        words = [*from_title, *category]
        if not all(same_word(word, words) for word in title_words):
            return " ".join(words)
        if from_title:
            from_title.pop()
        else:
            category.pop()
    return ""


def vague_need_statement(item: Item, world: ShopperWorld, rng: np.random.Generator) -> str:
    """The ``vague`` need statement of a shopper looking for ``item`` (rule in the module docstring).

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Item
        >>> titles = ["Gel Pens Blue", "Gel Pens Black", "Fine Gel Pens Red (G2)", "Gel Pens Green", "Gel Pens Pink"]
        >>> catalog = Catalog([Item(str(n), t, categories=("Office", "Pens")) for n, t in enumerate(titles)])
        >>> world = ShopperWorld.build(catalog, discover_facets(catalog), EvalSettings())
        >>> vague_need_statement(catalog["2"], world, np.random.default_rng(0))
        'gel pens'
    """
    usable = _usable_word(item, world)
    levels = list(item.categories)
    category: list[str] = []
    while levels and not category:
        category = list(dict.fromkeys(word for word in _words(levels.pop()) if usable(word)))[:MAX_LEAF_WORDS]
    leaf = PATH_SEPARATOR.join(item.categories)
    shared = world.leaf_title_frequency.get(leaf, Counter())
    size = world.leaf_sizes.get(leaf, 0)
    common = [
        word
        for word in dict.fromkeys(_words(item.title))
        if usable(word) and size and shared[word] >= VAGUE_LEAF_SHARE * size and not same_word(word, category)
    ]
    title = [common[int(rng.integers(len(common)))]] if common else []
    return " ".join([*title, *category])
