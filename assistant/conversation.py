"""One shopper's conversation with the faceted assistant: ask, understand the answer, recommend.

The assistant asks about the informative facets in a fixed order (the broad category, the narrower one, the
brand), offering as quick replies the values that items matching the answers so far actually have, then shows
the best sellers among the items that match every answer. Every fact in a reply is computed here from the
catalog and the interaction counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from data.facets import Facet, Facets
from data.schema import Catalog

MAX_OPTIONS = 6
SLATE_SIZE = 5
MAX_MESSAGE_CHARS = 2000
NO_PREFERENCE = "No preference"
SHOW_MORE = "Show others"
START_OVER = "Start over"

_NO_PREFERENCE_WORDS = {
    "no preference",
    "any",
    "anything",
    "skip",
    "don't care",
    "dont care",
    "either",
    "none",
}
_START_OVER_WORDS = {"start over", "restart", "reset", "new search"}
_MORE_WORDS = {"show others", "more", "others", "show more", "next"}


@dataclass(frozen=True)
class Pick:
    """A recommended item and the facts that explain it."""

    item_id: str
    title: str
    reason: str


@dataclass(frozen=True)
class Reply:
    """What the assistant says in one turn: text, quick replies and picks."""

    text: str
    options: tuple[str, ...] = ()
    picks: tuple[Pick, ...] = ()


@dataclass
class ConversationState:
    """Everything one conversation has established. Plain data: safe to inspect or copy."""

    answers: dict[str, str | None] = field(default_factory=dict)
    asked: str | None = None
    offered: tuple[str, ...] = ()
    shown: list[str] = field(default_factory=list)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().casefold())


class FacetedConversation:
    """The turn logic, shared by every session; it holds no per-session data.

    Args:
        catalog: The catalog being sold.
        facets: Its facets (:func:`data.facets.discover_facets`).
        rank: Scores every catalog item for the answers so far (``facet name -> value key``), higher first.
        popularity: How many shoppers interacted with each item, in catalog order (a fact shown in reasons).
    """

    def __init__(
        self,
        catalog: Catalog,
        facets: Facets,
        rank: Callable[[dict[str, str], frozenset[str]], np.ndarray],
        popularity: np.ndarray,
    ):
        self.catalog = catalog
        self.facets = facets
        self.rank = rank
        self.popularity = popularity
        levels = [f for f in facets.category_levels() if f.informative][:2]
        self.questions: tuple[Facet, ...] = tuple(
            [*levels, *([facets["brand"]] if "brand" in facets and facets["brand"].informative else [])]
        )

    def start(self, state: ConversationState) -> Reply:
        state.answers.clear()
        state.shown.clear()
        return self._next(state, greeting="Hi! I can help you find the right product. ")

    def respond(self, state: ConversationState, message: str) -> Reply:
        text = _norm(message)
        if not text:
            return self._repeat(state, "I didn't get any text. ")
        if len(message) > MAX_MESSAGE_CHARS:
            return self._repeat(state, f"That message is longer than {MAX_MESSAGE_CHARS:,} characters. ")
        if text in _START_OVER_WORDS:
            return self.start(state)
        if state.asked is None:
            if text in _MORE_WORDS:
                return self._recommend(state)
            return Reply(
                "I can show other products that match, or we can start over.", (SHOW_MORE, START_OVER)
            )
        facet = self.facets[state.asked]
        if text in _NO_PREFERENCE_WORDS:
            state.answers[facet.name] = None
            return self._next(state)
        chosen = self._match(facet, state, text)
        if chosen is None:
            return self._repeat(
                state, f'Sorry, I don\'t know "{message.strip()[:60]}" as a {self._noun(facet)}. '
            )
        if not np.any(self._matching_mask({**state.answers, facet.name: chosen})):
            label = facet.values[facet.code(chosen)].label
            return self._repeat(state, f"No {label} product matches what you told me so far. ")
        state.answers[facet.name] = chosen
        return self._next(state)

    def _noun(self, facet: Facet) -> str:
        return "brand" if facet.name == "brand" else "category"

    def _match(self, facet: Facet, state: ConversationState, text: str) -> str | None:
        """The value key a message names: an offered option by number or name, else any value of the facet."""
        offered = [label for label in state.offered if label != NO_PREFERENCE]
        if text.isdigit() and 1 <= int(text) <= len(offered):
            return self._key_of(facet, offered[int(text) - 1], state.answers)
        exact = [value.label for value in facet.values if _norm(value.label) == text]
        partial = [label for label in offered if text in _norm(label)]
        label = exact[0] if exact else partial[0] if len(partial) == 1 else None
        return self._key_of(facet, label, state.answers) if label else None

    def _key_of(self, facet: Facet, label: str, answers: dict[str, str | None]) -> str | None:
        """The value with this label; several categories share a name, so prefer one under the answers so far."""
        matching = self._matching_mask(answers)
        candidates = [value for value in facet.values if value.label == label]
        consistent = [value for value in candidates if np.any(matching & facet.mask(value.key))]
        return (consistent or candidates)[0].key if candidates else None

    def _matching_mask(self, answers: dict[str, str | None]) -> np.ndarray:
        mask = np.ones(len(self.catalog), dtype=bool)
        for name, key in answers.items():
            if key is not None:
                mask &= self.facets[name].mask(key)
        return mask

    def _options(self, facet: Facet, answers: dict[str, str | None]) -> tuple[str, ...]:
        codes = facet.codes[self._matching_mask(answers)]
        counts = np.bincount(codes[codes >= 0], minlength=len(facet.values))
        top = [code for code in np.argsort(-counts, kind="stable") if counts[code] > 0][:MAX_OPTIONS]
        return tuple(facet.values[code].label for code in top)

    def _next(self, state: ConversationState, greeting: str = "") -> Reply:
        for facet in self.questions:
            if facet.name in state.answers:
                continue
            options = self._options(facet, state.answers)
            if len(options) < 2:
                # Only one value is left: the answers already decide it, so asking would waste a turn.
                state.answers[facet.name] = None
                continue
            state.asked, state.offered = facet.name, (*options, NO_PREFERENCE)
            question = (
                "Which brand do you prefer?"
                if facet.name == "brand"
                else "What are you shopping for?"
                if facet is self.questions[0]
                else "Which of these fits best?"
            )
            return Reply(greeting + question, state.offered)
        state.asked, state.offered = None, ()
        return self._recommend(state, intro=greeting)

    def _repeat(self, state: ConversationState, prefix: str) -> Reply:
        if state.asked is None:
            return Reply(
                prefix + "I can show other products that match, or we can start over.",
                (SHOW_MORE, START_OVER),
            )
        return Reply(prefix + 'Please pick one of the options, or say "no preference".', state.offered)

    def _recommend(self, state: ConversationState, intro: str = "") -> Reply:
        answered = {name: key for name, key in state.answers.items() if key is not None}
        scores = self.rank(answered, frozenset(state.shown))
        # Answers are hard filters here: a pick that contradicts one would make "match" a false claim.
        matching = self._matching_mask(state.answers)
        order = np.argsort(-np.where(matching, scores, -np.inf), kind="stable")[: int(matching.sum())]
        shown = set(state.shown)
        positions = [int(p) for p in order if self.catalog.items[p].item_id not in shown][:SLATE_SIZE]
        picks = tuple(self._pick(position) for position in positions)
        state.shown.extend(pick.item_id for pick in picks)
        if not picks:
            return Reply(intro + "I have shown every matching product. Shall we start over?", (START_OVER,))
        return Reply(
            intro + "Here are the best sellers that match what you told me:", (SHOW_MORE, START_OVER), picks
        )

    def _pick(self, position: int) -> Pick:
        item = self.catalog.items[position]
        facts = []
        if item.categories:
            facts.append(" > ".join(item.categories[-2:]))
        if item.brand:
            facts.append(f"brand {item.brand}")
        shoppers = int(self.popularity[position])
        facts.append(f"chosen by {shoppers:,} shopper{'s' if shoppers != 1 else ''} in this store's history")
        return Pick(item.item_id, item.title, "; ".join(facts) + ".")
