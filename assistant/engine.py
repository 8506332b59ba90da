"""One turn of a conversation: understand the message, update the profile, then ask, recommend, compare or hand over.

:class:`Engine` holds what every conversation of one store shares (the catalog, its vocabulary, the ranking
system, the question policy) and no conversation's data: a turn takes a :class:`Conversation` (plain, storable
state) and returns the new state with a typed :class:`Reply`. Nothing is changed in place, so a failing turn
leaves the stored state as it was.

What a turn does, in order:

1. A message that cannot be a request (empty, over :data:`MAX_MESSAGE_CHARS`, no letter or digit at all) gets a
   polite reply and the current question again; the state does not change.
2. A quick reply to the pending question (its label or number, or "No preference") answers it directly;
   anything else goes through :func:`assistant.understand.understand`, and a need it places in no category
   through the shop's :class:`assistant.resolve.CategoryResolver` (the bi-encoder, then optionally the LLM).
3. "Start over" resets the profile; "talk to a person" asks for a hand-over; references to cards that are not on
   screen ("#9" when three are shown) are answered with what is on screen.
4. Slot edits and the need update the profile; likes, dislikes and "more like #2" are folded in (a like moves
   the MF prior); "compare 1 and 3" answers with a side-by-side table of catalog facts, differences first;
   "cheaper" and "cheapest" use prices when the catalog has them and say so when it does not.
5. Then the question policy (:mod:`assistant.policy`) asks the most telling question, or the ranking system
   ranks and the best :data:`SLATE_SIZE` unseen items are shown as cards, each with its score parts and a
   grounded explanation (:mod:`assistant.explain`). Words the shopper picked in answer to a question on title
   words (:data:`assistant.policy.WORDS`) join the need, and the items whose titles have all of them come first,
   in the ranking's order (:meth:`Engine.rank`), in the slates and in the candidates the policy weighs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from assistant.explain import Explanation, explain
from assistant.grounding import catalog_brands
from assistant.policy import NO_PREFERENCE, WORDS, Question, QuestionPolicy
from assistant.profile import InterestProfile, ProfileError
from assistant.resolve import CategoryResolver
from assistant.understand import CatalogVocabulary, Intent, Understanding, understand
from data.facets import Facets
from data.schema import Catalog, Item
from ranking.system import Ranked, RankingSystem, ScoreParts
from retrieval.profile import PRICE, Constraint, Op

SLATE_SIZE = 5
PICKED_DEPTH = 10
MAX_MESSAGE_CHARS = 2000
SHOW_OTHERS = "Show others"
START_OVER = "Start over"
SHOW_NOW = "Show me products"
GREETING = "Hi! Tell me what you are shopping for, or pick one of these."
STATE_VERSION = 1
_CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


@dataclass(frozen=True)
class Card:
    """One recommended item as the shopper sees it.

    Attributes:
        item_id: The catalog id.
        title, brand, category: Catalog facts ("" when the catalog has none).
        price: The price as shown ("$12.99"), "" when the catalog has none.
        image_url: "" when none.
        explanation: Why it was picked (facts and the template sentence).
        parts: The score parts it was ranked by.
    """

    item_id: str
    title: str
    brand: str
    category: str
    price: str
    image_url: str
    explanation: Explanation
    parts: ScoreParts

    def to_dict(self) -> dict[str, object]:
        """The card as plain JSON-ready data (stored with the conversation)."""
        data = asdict(self)
        data["explanation"] |= {
            "facts": list(self.explanation.facts),
            "matched": list(self.explanation.matched),
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Card:
        """The card of :meth:`to_dict`'s data.

        Raises:
            KeyError, TypeError, ValueError: A missing or malformed field.
        """
        explanation = dict(data["explanation"])
        return cls(
            str(data["item_id"]),
            str(data["title"]),
            str(data["brand"]),
            str(data["category"]),
            str(data["price"]),
            str(data["image_url"]),
            Explanation(
                str(explanation["text"]),
                tuple(str(f) for f in explanation["facts"]),
                tuple(str(m) for m in explanation["matched"]),
                str(explanation["sentence"]),
                bool(explanation["generated"]),
            ),
            ScoreParts(**{k: (None if v is None else float(v)) for k, v in dict(data["parts"]).items()}),
        )


@dataclass(frozen=True)
class Comparison:
    """Shown items side by side: one column per item, one row per catalog fact, the facts that differ first."""

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Reply:
    """What the assistant says in one turn.

    Attributes:
        text: The message text.
        options: Quick replies (the question's options, then "No preference"; or follow-ups).
        question: The question asked, ``None`` when none.
        cards: Recommended items.
        comparison: A comparison table, ``None`` when none.
        handover: The shopper asked for a person.
    """

    text: str
    options: tuple[str, ...] = ()
    question: Question | None = None
    cards: tuple[Card, ...] = ()
    comparison: Comparison | None = None
    handover: bool = False


@dataclass(frozen=True)
class Conversation:
    """One conversation's state: plain data, stored between turns (see :meth:`to_dict`).

    Attributes:
        profile: The interest profile.
        turn: Shopper messages so far.
        asked: Questions asked so far.
        pending: The question awaiting an answer, ``None`` when none.
        on_screen: The item ids of the last slate, in card order (what "#2" refers to).
        slate: The cards of the last slate as shown, score parts and explanations included (what a page that is
            reloaded shows again, and what the customer-service console shows).
        handover: A person was asked for and has not handed back yet.
    """

    profile: InterestProfile = field(default_factory=InterestProfile)
    turn: int = 0
    asked: int = 0
    pending: Question | None = None
    on_screen: tuple[str, ...] = ()
    slate: tuple[Card, ...] = ()
    handover: bool = False

    def to_dict(self) -> dict[str, object]:
        pending = self.pending
        return {
            "version": STATE_VERSION,
            "profile": self.profile.to_dict(),
            "turn": self.turn,
            "asked": self.asked,
            "pending": None
            if pending is None
            else {
                "facet": pending.facet,
                "text": pending.text,
                "options": list(pending.options),
                "keys": list(pending.keys),
                "entropy": pending.entropy,
                "reach": pending.reach,
            },
            "on_screen": list(self.on_screen),
            "slate": [card.to_dict() for card in self.slate],
            "handover": self.handover,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Conversation:
        """The state of :meth:`to_dict`'s data.

        Raises:
            ProfileError: Another version or a malformed field (named in the message).
        """
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ProfileError(
                f"conversation state version {data.get('version') if isinstance(data, dict) else None!r}"
            )
        raw = data.get("pending")
        try:
            pending = (
                None
                if raw is None
                else Question(
                    str(raw["facet"]),
                    str(raw["text"]),
                    tuple(raw["options"]),
                    tuple(raw["keys"]),
                    float(raw["entropy"]),
                    float(raw.get("reach", 0.0)),  # states stored before questions had a reach lack it
                )
            )
            return cls(
                profile=InterestProfile.from_dict(data["profile"]),
                turn=int(data["turn"]),
                asked=int(data["asked"]),
                pending=pending,
                on_screen=tuple(str(i) for i in data["on_screen"]),
                slate=tuple(Card.from_dict(card) for card in data.get("slate", ())),
                handover=bool(data["handover"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileError(f"conversation state: {error}") from None


@dataclass
class Shop:
    """What every conversation of one store shares.

    Attributes:
        catalog: The catalog.
        facets: Its facets.
        vocabulary: Its vocabulary for understanding messages.
        system: A fitted ranking system (the blend when the ranking layer is trained).
        policy: The question policy.
        generated: Item id -> generated description, for items that have one.
        chosen_by: Training shoppers per item, in catalog order (``None`` when no history).
        shared: For an item id and the liked item ids, ``(liked title, shoppers who chose both)`` pairs.
        candidates: Catalog positions of the candidates for a ranking profile, best first (the policy's input).
        llm: The chat model that may reword explanations (:func:`assistant.llm.get_chat_model`), ``None``.
        resolver: Names a category for a need the rules could not place (:mod:`assistant.resolve`); ``None``
            for the rules alone.
    """

    catalog: Catalog
    facets: Facets
    vocabulary: CatalogVocabulary
    system: RankingSystem
    policy: QuestionPolicy
    generated: dict[str, str] = field(default_factory=dict)
    chosen_by: np.ndarray | None = None
    shared: Callable[[str, Sequence[str]], list[tuple[str, int]]] | None = None
    candidates: Callable[[object], np.ndarray] | None = None
    slate_size: int = SLATE_SIZE
    llm: object | None = None
    cards_with_questions: bool = False
    rank_question_cards: bool = False
    resolver: CategoryResolver | None = None

    @functools.cached_property
    def brands(self) -> frozenset[str]:
        """The catalog's brands as shown (:func:`assistant.grounding.catalog_brands`), gathered once: the fact
        check of every rewording reads them."""
        return catalog_brands(self.catalog)

    def evidence(self, item_id: str, liked: Sequence[str]) -> list[str]:
        """The store-history facts an explanation of ``item_id`` may state (for :func:`assistant.explain.audit`):
        how many shoppers chose it, and each liked item's title with the shoppers who chose both."""
        position = self.catalog.position(item_id)
        facts = [str(int(self.chosen_by[position]))] if self.chosen_by is not None else []
        if self.shared is not None and liked:
            facts += [f"{title} {count}" for title, count in self.shared(item_id, liked)]
        return facts


class Engine:
    """The turn logic of every conversation of one store (see the module docstring). Holds no session data."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    # --- entry points --------------------------------------------------------------------------------------

    def start(self) -> tuple[Conversation, Reply]:
        """A new conversation and its greeting: shoppers open with their need, so the greeting asks for it and
        offers the catalog's top categories as quick replies (no question of the budget is spent)."""
        question = self.shop.policy.opening()
        if question is None:
            return Conversation(), Reply(GREETING, (SHOW_NOW,))
        return Conversation(pending=question), Reply(question.text, _options(question), question)

    def respond(
        self, state: Conversation, message: object, session_id: str = ""
    ) -> tuple[Conversation, Reply]:
        """One shopper message; returns the new state and the reply (``state`` itself is not changed)."""
        text = message if isinstance(message, str) else ""
        if not text.strip():
            return state, self._again(state, "I didn't get any text.")
        if len(text) > MAX_MESSAGE_CHARS:
            return state, self._again(state, f"That message is longer than {MAX_MESSAGE_CHARS:,} characters.")
        if not re.search(r"\w", text):
            return state, self._again(state, "I can only read words.")
        state = replace(state, turn=state.turn + 1)
        answered = self._quick_reply(state, text)
        if answered is not None:
            return self._next(answered, "", session_id)
        understood = understand(text, self.shop.vocabulary, shown=len(state.on_screen))
        if self.shop.resolver is not None:
            understood = self.shop.resolver.resolve(understood).understanding
        return self._handle(state, understood, session_id)

    def feedback(
        self, state: Conversation, item_id: str, liked: bool, session_id: str = ""
    ) -> tuple[Conversation, Reply]:
        """A thumbs up or down on an item; an item not in the catalog gets a polite refusal."""
        if item_id not in self.shop.catalog:
            return state, Reply(f"I don't know the item {item_id!r}.", self._follow_ups(state))
        profile = state.profile.with_feedback(
            liked=[item_id] if liked else [], disliked=[] if liked else [item_id]
        )
        title = self.shop.catalog[item_id].title
        lead = f'Noted: you like "{title}".' if liked else f'Noted: not "{title}".'
        return self._recommend(replace(state, profile=profile, pending=None), lead, session_id)

    # --- the turn ------------------------------------------------------------------------------------------

    def _quick_reply(self, state: Conversation, text: str) -> Conversation | None:
        question = state.pending
        if question is None:
            return None
        if text.strip().casefold() == NO_PREFERENCE.casefold():
            return replace(state, profile=state.profile.skipped(question.facet), pending=None)
        key = question.key_of(text)
        if key is None:
            return None
        if question.facet == WORDS:
            profile = state.profile.with_words(key, "quick reply", state.turn)
            return replace(state, profile=profile, pending=None)
        profile = state.profile.with_slot(Constraint(question.facet, Op.EQ, key), "quick reply", state.turn)
        return replace(state, profile=profile, pending=None)

    def _handle(
        self, state: Conversation, understood: Understanding, session_id: str
    ) -> tuple[Conversation, Reply]:
        intents = set(understood.intents)
        if Intent.START_OVER in intents:
            fresh, reply = self.start()
            return replace(fresh, turn=state.turn), replace(reply, text=f"Let's start over. {reply.text}")
        if Intent.HUMAN in intents:
            return replace(state, handover=True), Reply(
                "I'm asking a person from our team to join. They will see our conversation so far.",
                handover=True,
            )
        notes: list[str] = []
        if understood.price_asked and not self.shop.vocabulary.has_prices:
            notes.append("I don't have prices for these products.")
        on_screen = state.on_screen
        valid = [n for n in understood.references if 1 <= n <= len(on_screen)]
        invalid = [n for n in understood.references if n not in valid]
        if invalid:
            shown = (
                f"{len(on_screen)} item{'s' if len(on_screen) != 1 else ''}" if on_screen else "no items yet"
            )
            notes.append(f"There is no #{invalid[0]}: I'm showing {shown}.")
        referenced = [on_screen[n - 1] for n in valid]
        if state.profile.is_new_topic(understood):
            # Another kind of product: what was said about the last one (brand, price, words) no longer holds.
            state = replace(state, profile=state.profile.fresh(), asked=0, pending=None)
        profile = state.profile.apply(understood, state.turn)
        pending = state.pending
        if pending is not None and (
            Intent.NO_PREFERENCE in intents
            or any(edit.facet == pending.facet for edit in understood.edits)
            or (pending.facet == WORDS and understood.need and self.shop.vocabulary.knows(understood.need))
        ):
            if Intent.NO_PREFERENCE in intents or pending.facet == WORDS:
                # Words typed in answer to the question on title words answer it too (they joined the need).
                profile = profile.skipped(pending.facet)
            pending = None
        state = replace(state, profile=profile, pending=pending)

        if Intent.COMPARE in intents:
            if len(referenced) >= 2:
                return state, self._compare(state, referenced, notes)
            return state, Reply(
                _say(notes, 'Which ones should I compare? Say for example "compare 1 and 2".'),
                self._follow_ups(state),
            )
        if Intent.DISLIKE in intents and referenced:
            state = replace(state, profile=state.profile.with_feedback(disliked=referenced))
            return self._recommend(state, _say(notes, "Noted, I'll leave that out."), session_id)
        if (Intent.LIKE in intents or Intent.MORE_LIKE in intents) and referenced:
            state = replace(state, profile=state.profile.with_feedback(liked=referenced))
            lead = (
                "More like that one:" if Intent.MORE_LIKE in intents else "Noted. Here is more in that line:"
            )
            return self._recommend(state, _say(notes, lead), session_id)
        if Intent.CHOOSE in intents:
            chosen = referenced[:1] or on_screen[:1]
            if chosen:
                item = self.shop.catalog[chosen[0]]
                state = replace(state, profile=state.profile.with_feedback(liked=chosen))
                return state, Reply(
                    _say(notes, f'Good choice: "{item.title}". Anything else I can help you find?'),
                    (SHOW_OTHERS, START_OVER),
                )
        if Intent.CHEAPER in intents or Intent.CHEAPEST in intents:
            if self.shop.vocabulary.has_prices:
                if Intent.CHEAPEST in intents:
                    return self._recommend(
                        state, _say(notes, "The cheapest first:"), session_id, by_price=True
                    )
                state = self._cheaper(state)
                return self._recommend(state, _say(notes, "Here are cheaper ones:"), session_id)
            return state, Reply(_say(notes, "I can show you others instead."), self._follow_ups(state))
        if Intent.SHOW_MORE in intents or Intent.SHOW_NOW in intents:
            return self._recommend(replace(state, pending=None), _say(notes, "Here you go:"), session_id)
        if understood.need and not understood.edits and not self.shop.vocabulary.knows(understood.need):
            # Words the catalog never uses: searching them would show noise, so say so and keep the profile. The words
            # are not repeated back: a reply never says what it was told to say.
            state = replace(state, profile=replace(state.profile, needs=state.profile.needs[:-1]))
            lead = "I couldn't match that to anything in this store."
            return state, self._again(state, _say(notes, lead))
        if understood.edits or understood.need or Intent.NO_PREFERENCE in intents:
            return self._next(state, _say(notes, ""), session_id)
        if intents & {Intent.GREETING, Intent.THANKS, Intent.SMALL_TALK}:
            lead = (
                "You're welcome!"
                if Intent.THANKS in intents
                else "Hello! I'm the store's shopping assistant."
            )
            return state, self._again(state, _say(notes, lead))
        if referenced:
            item = self.shop.catalog[referenced[0]]
            return state, Reply(
                _say(
                    notes,
                    f'#{valid[0]} is "{item.title}". You can like it, compare it or ask for more like it.',
                ),
                self._follow_ups(state),
            )
        if notes:
            return state, self._again(state, _say(notes, ""))
        return state, self._again(state, "Sorry, I didn't understand that. What are you looking for?")

    def _next(self, state: Conversation, lead: str, session_id: str) -> tuple[Conversation, Reply]:
        """Ask the next question, or recommend. With ``cards_with_questions`` the question comes with cards: the
        candidates' first items in the candidate generator's order (no reranking, so a question turn stays fast),
        or with ``rank_question_cards`` the ranking system's best unseen items, as a recommendation shows them."""
        question, positions = self._question(state)
        if question is None:
            return self._recommend(replace(state, pending=None), lead, session_id)
        state = replace(state, pending=question, asked=state.asked + 1)
        cards = self._question_cards(state.profile, positions, session_id)
        if not cards:
            return state, Reply(_say([lead], question.text), _options(question), question)
        ids = tuple(card.item_id for card in cards)
        state = replace(state, profile=state.profile.with_shown(ids), on_screen=ids, slate=cards)
        text = _say([lead, "A few to start with."], question.text)
        return state, Reply(text, _options(question), question, cards=cards)

    def _question_cards(
        self, profile: InterestProfile, positions: np.ndarray, session_id: str
    ) -> tuple[Card, ...]:
        """The cards beside a question (none without ``cards_with_questions``): the candidates' first items, or
        the ranking system's best unseen items with ``rank_question_cards``."""
        if not self.shop.cards_with_questions or not len(positions):
            return ()
        if self.shop.rank_question_cards:
            ranked = self.rank(profile, session_id, self.shop.slate_size)
            return tuple(self._card(r.item_id, r.parts, profile) for r in ranked)
        ids = (self.shop.catalog.items[int(p)].item_id for p in positions[: self.shop.slate_size])
        return tuple(self._card(item_id, ScoreParts(), profile) for item_id in ids)

    def _question(self, state: Conversation) -> tuple[Question | None, np.ndarray]:
        """The question to ask now, and the candidates it was chosen on (catalog positions, best first)."""
        if state.asked >= self.shop.policy.budget or self.shop.candidates is None:
            return None, np.empty(0, dtype=np.int64)
        positions = self._picked_first(self.shop.candidates(state.profile.for_ranking()), state.profile)
        return self.shop.policy.question(positions, state.profile, state.asked), positions

    def _recommend(
        self, state: Conversation, lead: str, session_id: str, by_price: bool = False
    ) -> tuple[Conversation, Reply]:
        """The next slate; ``by_price``: the cheapest of the best candidates first."""
        profile = state.profile
        ranked = self._rank(profile, session_id, by_price)
        dropped: list[str] = []
        if not ranked:
            # Nothing meets every wish, seen or not: let go of the least telling ones (a brand, then a price,
            # then the oldest wish; an exclusion last) until something does.
            probe = replace(profile, shown=())
            while profile.slots and not self._rank(probe, session_id):
                slot = min(profile.slots, key=_relax_order)
                profile, probe = profile.without(slot), probe.without(slot)
                dropped.append(slot.said or slot.facet)
            ranked = self._rank(profile, session_id, by_price) if dropped else []
        let_go = f"Nothing matches all of that, so I let go of {_quoted(dropped)}." if dropped else ""
        if not ranked:
            if profile.shown and self._rank(replace(profile, shown=()), session_id):
                text = _say(
                    [let_go],
                    "I've shown you everything that matches what you told me. Tell me what to change.",
                )
            else:
                text = "I have nothing to show for that. Tell me what you are looking for, or start over."
            return replace(state, profile=profile, on_screen=(), slate=()), Reply(text, (START_OVER,))
        lead = _say([lead, let_go], "")
        cards = tuple(self._card(r.item_id, r.parts, profile) for r in ranked)
        ids = tuple(card.item_id for card in cards)
        state = replace(state, profile=profile.with_shown(ids), on_screen=ids, slate=cards, pending=None)
        text = _say([lead], "Here is what I'd pick for you:" if not lead else "")
        return state, Reply(text, (SHOW_OTHERS, START_OVER), cards=cards)

    def _picked_first(self, positions: np.ndarray, profile: InterestProfile) -> np.ndarray:
        """Catalog positions, best first, with the items whose titles have every word the shopper picked
        (:attr:`InterestProfile.picked_words`) moved ahead of the others, in their order."""
        words = self.shop.policy.words
        if words is None or not profile.picked_words or not len(positions):
            return positions
        has = words.has_all(positions, profile.picked_words)
        return np.concatenate([positions[has], positions[~has]])

    def rank(self, profile: InterestProfile, session_id: str, k: int) -> list[Ranked]:
        """The ``k`` best unseen items for a profile, as the ranking system orders them, except that the items
        whose titles have every word the shopper picked come first (ranked :data:`PICKED_DEPTH` times deeper)."""
        if self.shop.policy.words is None or not profile.picked_words:
            return self.shop.system.rank(profile.for_ranking(session_id), k=k)
        ranked = self.shop.system.rank(profile.for_ranking(session_id), k=k * PICKED_DEPTH)
        positions = np.array([r.position for r in ranked], dtype=np.int64)
        by_position = {r.position: r for r in ranked}
        return [by_position[int(p)] for p in self._picked_first(positions, profile)[:k]]

    def _rank(self, profile: InterestProfile, session_id: str, by_price: bool = False):
        size = self.shop.slate_size
        if not by_price:
            return self.rank(profile, session_id, size)
        ranked = self.rank(profile, session_id, size * 10)
        catalog = self.shop.catalog
        priced = [r for r in ranked if catalog.items[r.position].price is not None]
        return sorted(priced, key=lambda r: catalog.items[r.position].price.amount)[:size]

    def card(self, item_id: str, profile: InterestProfile, note: str = "") -> Card:
        """The card of a catalog item that no ranking picked (a customer-service agent pushes it): no score
        parts, and the explanation of catalog facts after ``note`` ("Recommended by Maria from our team.").

        Raises:
            KeyError: An item the catalog does not have.
        """
        card = self._card(item_id, ScoreParts(), profile)
        text = " ".join(part for part in (note, card.explanation.text) if part)
        return replace(card, explanation=replace(card.explanation, text=text))

    def _card(self, item_id: str, parts: ScoreParts, profile: InterestProfile) -> Card:
        shop = self.shop
        item = shop.catalog[item_id]
        position = shop.catalog.position(item_id)
        liked = [i for i in profile.liked if i in shop.catalog]
        explanation = explain(
            item,
            profile,
            generated_description=shop.generated.get(item_id, ""),
            shared_with=(lambda i: shop.shared(i, liked)) if shop.shared and liked else None,
            chosen_by=int(shop.chosen_by[position]) if shop.chosen_by is not None else None,
        )
        return Card(
            item_id,
            item.title,
            item.brand,
            item.categories[-1] if item.categories else "",
            _price(item),
            item.image_url,
            explanation,
            parts,
        )

    def _compare(self, state: Conversation, item_ids: Sequence[str], notes: list[str]) -> Reply:
        items = [self.shop.catalog[i] for i in dict.fromkeys(item_ids)]
        facts = {
            "Brand": [item.brand or "-" for item in items],
            "Category": [" > ".join(item.categories[-2:]) or "-" for item in items],
        }
        if any(item.price is not None for item in items):
            facts["Price"] = [_price(item) or "-" for item in items]
        for key in dict.fromkeys(k for item in items for k, _ in item.attributes):
            facts[key.capitalize()] = [dict(item.attributes).get(key, "-") for item in items]
        facts["Description"] = [
            (item.description[:160] + ("..." if len(item.description) > 160 else ""))
            if item.description
            else "-"
            for item in items
        ]
        differ = [(name, tuple(values)) for name, values in facts.items() if len(set(values)) > 1]
        same = [(name, tuple(values)) for name, values in facts.items() if len(set(values)) == 1]
        table = Comparison(
            tuple(i.item_id for i in items), tuple(i.title for i in items), tuple(differ + same)
        )
        return Reply(
            _say(notes, "Side by side, the differences first:"), self._follow_ups(state), comparison=table
        )

    def _cheaper(self, state: Conversation) -> Conversation:
        """A price bound under the cheapest item on screen (none when nothing priced is on screen)."""
        catalog = self.shop.catalog
        prices = [catalog[i].price.amount for i in state.on_screen if catalog[i].price is not None]
        if not prices:
            return state
        bound = Constraint(PRICE, Op.LT, max(0.0, min(prices) - 0.01))
        return replace(state, profile=state.profile.with_slot(bound, "cheaper", state.turn))

    def _again(self, state: Conversation, lead: str) -> Reply:
        """The pending question again (or the follow-ups), after ``lead``."""
        if state.pending is not None:
            return Reply(_say([lead], state.pending.text), _options(state.pending), state.pending)
        if not state.on_screen:
            return Reply(_say([lead], "What are you shopping for?"), (SHOW_NOW,))
        return Reply(_say([lead], "Want to see others, or tell me more?"), self._follow_ups(state))

    def _follow_ups(self, state: Conversation) -> tuple[str, ...]:
        return quick_replies(replace(state, pending=None))


def quick_replies(state: Conversation) -> tuple[str, ...]:
    """The quick replies that go with a conversation's state: the pending question's options, else the
    follow-ups of what is on screen (what a reloaded page offers again)."""
    if state.pending is not None:
        return _options(state.pending)
    return (SHOW_OTHERS, START_OVER) if state.on_screen else (SHOW_NOW,)


def _relax_order(slot) -> tuple[int, int]:
    if slot.constraint.op is Op.NE:
        return (3, slot.turn)
    return ({"brand": 0, PRICE: 1}.get(slot.facet, 2), slot.turn)


def _quoted(words: Sequence[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _options(question: Question) -> tuple[str, ...]:
    return (*question.options, NO_PREFERENCE)


def _say(parts: Sequence[str], last: str) -> str:
    return " ".join(p for p in (*parts, last) if p)


def _price(item: Item) -> str:
    if item.price is None:
        return ""
    symbol = _CURRENCY.get(item.price.currency)
    amount = f"{item.price.amount:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {item.price.currency}"
