"""Ask or recommend: the question whose answer is expected to narrow the candidates most, or the picks now.

The candidates are the ranking layer's best items for the profile so far (``policy_candidates``, 50). Each gets a
share of the score mass by rank (``1 / (rank + 1)``: scale-free, so it works for any system's scores). For every
facet the shopper has not answered yet, the mass is spread over the facet's values; the entropy of that spread
is what an answer is expected to tell (an answer that splits the candidates evenly tells the most). A facet is
skipped when too little of the mass has a value for it (``min_coverage``) or when its entropy is below
``min_entropy`` (a single value holds almost all of it). When no question is left, or the question budget
(``question_budget``) is spent, the assistant recommends. A question offers its values of most mass as quick
replies plus "No preference".

Beside the facets, the policy may ask about title words (:data:`WORDS`, once a conversation): the words of the
candidates' titles that split them best (:class:`assistant.title_words.TitleWords`), offered as quick replies. Its
entropy is the expected information of an answer, ``-sum(p_i log p_i)`` over the options (a "no preference" tells
nothing), under the same ``min_entropy``. The word picked joins the shopper's need, and the items whose titles
have it come first (:class:`assistant.engine.Engine`).

Which of the questions worth asking is asked (``question_choice``): by default the one of highest **reach**, the
expected share of the candidates' mass on the next cards after the answer. For each answer, its first ``horizon``
candidates (the slate size) are what the shopper would see next; for "no preference" (no value, or none of the
words), the first ``horizon`` of them all; the reach sums that mass over the answers. An answer that narrows the
candidates to small groups each shown whole reaches most. With ``"entropy"`` the question of highest entropy is
asked instead. Reach was chosen on validation conversations (``docs/benchmarks.md``): it asked about as well as
entropy within three turns and needed fewer turns on average.

Category levels are asked top-down (a level below an unanswered one would offer values from several branches).

Example:
    >>> import numpy as np
    >>> from data.facets import discover_facets
    >>> from data.schema import Catalog, Item
    >>> catalog = Catalog([Item(str(n), f"Pen {n}", brand="AB"[n % 2], categories=("Pens",)) for n in range(6)])
    >>> policy = QuestionPolicy(discover_facets(catalog), budget=3)
    >>> question = policy.question(np.arange(6), InterestProfile(), asked=0)
    >>> question.facet, question.options
    ('brand', ('A', 'B'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.grounding import is_placeholder_brand
from assistant.profile import WORDS, InterestProfile, is_category
from assistant.title_words import MAX_OPTIONS, TitleWords
from data.facets import Facet, FacetKind, Facets
from data.settings import QUESTION_CHOICES

NO_PREFERENCE = "No preference"


@dataclass(frozen=True)
class Question:
    """A question to the shopper.

    Attributes:
        facet: The facet asked about.
        text: What the assistant says.
        options: Quick replies: value labels, most likely first ("No preference" is offered beside them).
        keys: The value key of each option.
        entropy: The entropy (nats) of the candidates' mass over the facet's values: what an answer may tell.
        reach: The expected share of the candidates' mass on the next cards after the answer (module docstring).
    """

    facet: str
    text: str
    options: tuple[str, ...]
    keys: tuple[str, ...]
    entropy: float
    reach: float = 0.0

    def key_of(self, label: str) -> str | None:
        """The value key of an offered option, by label (case-insensitive) or 1-based number."""
        text = label.strip().casefold()
        if text.isdigit() and 1 <= int(text) <= len(self.options):
            return self.keys[int(text) - 1]
        for option, key in zip(self.options, self.keys, strict=True):
            if option.casefold() == text:
                return key
        return None


class QuestionPolicy:
    """Chooses the next question (see the module docstring).

    Args:
        facets: The catalog's facets.
        budget: Most questions asked in a conversation.
        min_entropy: Below this (nats), asking tells too little: recommend.
        min_coverage: Least share of the candidates' mass that must have a value for a facet to be asked.
        words: The catalog's title words, to ask about when they split the candidates (``None``: facets only).
        horizon: Cards shown after an answer (the slate size), for a question's reach.
        choice: ``"reach"`` or ``"entropy"``: which of the questions worth asking is asked (module docstring).
        min_reach_gain: A question is worth asking only when its reach exceeds the reach of recommending now (the
            share of the mass on the first ``horizon`` candidates) by at least this much; 0: any question is.
    """

    def __init__(
        self,
        facets: Facets,
        budget: int = 3,
        min_entropy: float = 0.5,
        min_coverage: float = 0.6,
        words: TitleWords | None = None,
        horizon: int = 5,
        choice: str = "reach",
        min_reach_gain: float = 0.0,
    ):
        if budget < 0:
            raise ValueError(f"question budget must be 0 or more, got {budget}")
        self.facets = facets
        self.words = words
        self.horizon = horizon
        if choice not in QUESTION_CHOICES:
            raise ValueError(f"question choice must be one of {', '.join(QUESTION_CHOICES)}, got {choice!r}")
        self.choice = choice
        self.budget = budget
        self.min_entropy = min_entropy
        self.min_coverage = min_coverage
        if not 0.0 <= min_reach_gain <= 1.0:
            raise ValueError(f"min_reach_gain must be in [0, 1], got {min_reach_gain}")
        self.min_reach_gain = min_reach_gain
        brands = facets["brand"].values if "brand" in facets else ()
        self._placeholder = np.array([is_placeholder_brand(v.label) for v in brands] or [False], dtype=bool)

    def question(self, positions: np.ndarray, profile: InterestProfile, asked: int) -> Question | None:
        """The question to ask about the ranked candidates (catalog positions, best first), or ``None`` to
        recommend."""
        if asked >= self.budget or len(positions) < 2:
            return None
        return self.choose(self.questions(positions, profile))

    def choose(self, questions: list[Question]) -> Question | None:
        """The question of highest reach (ties: of highest entropy), or of highest entropy with ``choice=
        "entropy"``; ``None`` when there is none."""
        if self.choice == "entropy":
            return max(questions, key=lambda q: q.entropy, default=None)
        return max(questions, key=lambda q: (q.reach, q.entropy), default=None)

    def questions(self, positions: np.ndarray, profile: InterestProfile) -> list[Question]:
        """Every question worth asking about the candidates (enough coverage and entropy, two options or more),
        in the catalog's facet order."""
        mass = 1.0 / (np.arange(len(positions)) + 1.0)
        mass /= mass.sum()
        now = float(mass[: self.horizon].sum())
        out = []
        for facet in self._askable(profile):
            codes = facet.codes[np.asarray(positions, dtype=np.int64)]
            known = codes >= 0
            if facet.kind is FacetKind.BRAND:
                # A placeholder ("Generic", "Unknown") names no brand: no option, and no evidence either way.
                known &= ~self._placeholder[codes.clip(0)]
            if mass[known].sum() < self.min_coverage:
                continue
            shares = np.bincount(codes[known], weights=mass[known], minlength=len(facet.values))
            shares = shares / shares.sum()
            entropy = float(-sum(p * math.log(p) for p in shares if p > 0))
            order = [int(code) for code in np.argsort(-shares, kind="stable") if shares[code] > 0][
                :MAX_OPTIONS
            ]
            if entropy < self.min_entropy or len(order) < 2:
                continue
            reach = _reach(np.where(known, codes, -1), mass, self.horizon)
            if not self._gains(reach, now):
                continue
            out.append(
                Question(
                    facet.name,
                    _wording(facet),
                    tuple(facet.values[code].label for code in order),
                    tuple(facet.values[code].key for code in order),
                    entropy,
                    reach,
                )
            )
        if self.words is not None and not profile.is_answered(WORDS):
            # Words already said (in the need, or behind a slot: "kettle" set the category) are not offered back.
            said = (*profile.needs, *(slot.said for slot in profile.slots))
            offer = self.words.options(positions, mass, said)
            if offer.information >= self.min_entropy and len(offer.labels) >= 2:
                reach = _reach(offer.groups, mass, self.horizon)
                if self._gains(reach, now):
                    out.append(
                        Question(
                            WORDS,
                            "Anything in particular?",
                            offer.labels,
                            offer.keys,
                            offer.information,
                            reach,
                        )
                    )
        return out

    def _gains(self, reach: float, now: float) -> bool:
        """Whether a question of this reach gains enough over recommending now (``min_reach_gain``)."""
        return self.min_reach_gain <= 0.0 or reach - now >= self.min_reach_gain

    def opening(self) -> Question | None:
        """The greeting's question: what the shopper is after, with the broadest categories that tell items
        apart (most items first) as quick replies; ``None`` for a catalog without categories."""
        for facet in self.facets.category_levels():
            if facet.informative:
                values = facet.values[:MAX_OPTIONS]
                return Question(
                    facet.name,
                    "Hi! What are you shopping for? Tell me in your own words, or pick one.",
                    tuple(v.label for v in values),
                    tuple(v.key for v in values),
                    0.0,
                )
        return None

    def _askable(self, profile: InterestProfile) -> list[Facet]:
        wanted = {slot.facet for slot in profile.slots}
        out = []
        levels = self.facets.category_levels()
        if not profile.is_answered("category"):
            deepest = max((f.level or 0 for f in levels if f.name in wanted), default=0)
            below = [f for f in levels if (f.level or 0) == deepest + 1 and f.informative]
            out.extend(below[:1])
        for facet in self.facets:
            if is_category(facet.name) or not facet.informative or facet.name in wanted:
                continue
            if not profile.is_answered(facet.name):
                out.append(facet)
        return out


class FixedOrderPolicy(QuestionPolicy):
    """The same policy asking in a fixed facet order (the conversation benchmark's baseline): the first facet of
    ``order`` worth asking, whatever its entropy against the others.

    Args:
        order: Facet names, first asked first (for example :func:`assistant.simulator.question_order`).
    """

    def __init__(self, facets: Facets, order: tuple[str, ...], **options) -> None:
        super().__init__(facets, **options)
        self.order = tuple(order)

    def choose(self, questions: list[Question]) -> Question | None:
        rank = {name: n for n, name in enumerate(self.order)}
        listed = [q for q in questions if q.facet in rank]
        return min(listed, key=lambda q: rank[q.facet], default=None)


def _reach(buckets: np.ndarray, mass: np.ndarray, horizon: int) -> float:
    """The expected share of the candidates' mass on the next ``horizon`` cards after the answer: for each answer
    (bucket ``>= 0``, candidates best first) its first ``horizon`` candidates; for "no preference" (``-1``) the
    first ``horizon`` of them all."""
    reach = float(mass[:horizon][buckets[:horizon] < 0].sum())
    for bucket in np.unique(buckets[buckets >= 0]):
        reach += float(mass[np.flatnonzero(buckets == bucket)[:horizon]].sum())
    return reach


def _wording(facet: Facet) -> str:
    if facet.kind is FacetKind.CATEGORY:
        return "Which kind are you after?"
    if facet.kind is FacetKind.BRAND:
        return "Any brand you prefer?"
    if facet.kind is FacetKind.PRICE_BAND:
        return "What price range suits you?"
    return f"Which {facet.label.lower()}?"
