"""The interest profile of one conversation: what the shopper said, slot by slot, with where each slot came from.

An :class:`InterestProfile` holds slots (facet constraints, each with the words and the turn that set it), the
needs said in free text, liked and disliked items, the items already shown and the facets already answered
(``no preference`` included). :meth:`InterestProfile.apply` folds one :class:`assistant.understand.Understanding`
into it; :meth:`InterestProfile.for_ranking` gives the :class:`retrieval.profile.Profile` the ranking layer reads.

How a new edit meets the old slots (the shopper's latest words win):

- ``category = x`` drops the earlier wanted categories that are not above ``x`` (a narrower answer keeps the
  broader one; another category replaces it) and any ``category != x``.
- ``brand = x`` said in a later turn replaces the earlier wanted brands; several in one message are all kept.
  It drops ``brand != x``. ``!=`` drops the ``=`` of the same value.
- A price bound replaces the earlier price bounds.
- ``clear`` drops every slot of the facet (``category``: every level) and counts it as answered.

Profiles are plain data: :meth:`InterestProfile.to_dict` and :meth:`InterestProfile.from_dict` round-trip them
through JSON with a :data:`VERSION`, so sessions can be stored and an agent can edit one.

Example:
    >>> from retrieval.profile import Constraint, Op
    >>> profile = InterestProfile().with_slot(Constraint("brand", Op.EQ, "hp"), said="hp", turn=1)
    >>> profile.with_slot(Constraint("brand", Op.EQ, "canon"), said="canon", turn=2).for_ranking().values()
    {'brand': 'canon'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from assistant.understand import EditKind, Understanding
from data.facets import PATH_SEPARATOR
from retrieval.profile import PRICE, Constraint, Op, Profile

VERSION = 1
# The needs kept for retrieval: the latest few say what the shopper wants now.
MAX_NEEDS = 3
CATEGORY = "category"
# The slot of title words picked in answer to the policy's question on them (no catalog facet).
WORDS = "words"


class ProfileError(ValueError):
    """A stored profile that cannot be read; the message names the field and value."""


@dataclass(frozen=True)
class Slot:
    """One constraint and where it came from.

    Attributes:
        constraint: The facet constraint.
        said: The shopper's words that set it (or ``"agent"``, ``"quick reply"``).
        turn: The turn that set it (1 = the first shopper message).
    """

    constraint: Constraint
    said: str = ""
    turn: int = 0

    @property
    def facet(self) -> str:
        return self.constraint.facet


def is_category(facet: str) -> bool:
    """Whether a facet name is a category level (``category_2``) or the whole category slot."""
    return facet == CATEGORY or facet.startswith(f"{CATEGORY}_")


@dataclass(frozen=True)
class InterestProfile:
    """Everything one shopper has said (see the module docstring)."""

    slots: tuple[Slot, ...] = ()
    needs: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()

    @property
    def need(self) -> str:
        """The needs kept for retrieval, latest first."""
        return " ".join(reversed(self.needs[-MAX_NEEDS:]))

    def with_slot(self, constraint: Constraint, said: str = "", turn: int = 0) -> InterestProfile:
        """The profile with one more constraint (rules in the module docstring)."""
        kept = [slot for slot in self.slots if not _replaced_by(slot, constraint, turn)]
        return replace(
            self,
            slots=(*kept, Slot(constraint, said, turn)),
            answered=_added(self.answered, [constraint.facet]),
        )

    def cleared(self, facet: str) -> InterestProfile:
        """The profile without any slot of ``facet`` (``"category"``: every level), counted as answered."""
        kept = tuple(
            slot
            for slot in self.slots
            if not (slot.facet == facet or (facet == CATEGORY and is_category(slot.facet)))
        )
        return replace(self, slots=kept, answered=_added(self.answered, [_answer_key(facet)]))

    def skipped(self, facet: str) -> InterestProfile:
        """The profile with ``facet`` answered "no preference" (never asked again, nothing constrained)."""
        return replace(self, answered=_added(self.answered, [_answer_key(facet)]))

    def with_words(self, words: str, said: str = "", turn: int = 0) -> InterestProfile:
        """The profile with ``words`` picked in answer to the question on title words: a :data:`WORDS` slot
        (which the ranking layer does not filter on; :class:`assistant.engine.Engine` puts the items whose titles
        have the words first), and the words joined to the needs, for retrieval to read."""
        profile = self.with_slot(Constraint(WORDS, Op.EQ, words), said, turn)
        return replace(profile, needs=(*profile.needs, words))

    @property
    def picked_words(self) -> tuple[str, ...]:
        """The title words picked (the values of the :data:`WORDS` slots), in the order picked."""
        return tuple(str(slot.constraint.value) for slot in self.slots if slot.facet == WORDS)

    def apply(self, understood: Understanding, turn: int) -> InterestProfile:
        """Fold one message's slot edits and need into the profile."""
        profile = self
        for edit in understood.edits:
            if edit.kind is EditKind.CLEAR:
                profile = profile.cleared(edit.facet)
            elif edit.constraint is not None:
                profile = profile.with_slot(edit.constraint, edit.said, turn)
        if understood.need:
            profile = replace(profile, needs=(*profile.needs, understood.need))
        return profile

    def is_new_topic(self, understood: Understanding) -> bool:
        """Whether the message asks for a category unrelated to the one wanted so far (another kind of product:
        neither a narrower nor a broader one)."""
        wanted = [
            str(s.constraint.value) for s in self.slots if is_category(s.facet) and s.constraint.op is Op.EQ
        ]
        asked = [
            str(e.constraint.value)
            for e in understood.edits
            if e.constraint is not None and is_category(e.facet) and e.constraint.op is Op.EQ
        ]
        return bool(wanted and asked) and not any(_related(a, w) for a in asked for w in wanted)

    def fresh(self) -> InterestProfile:
        """A new topic: the slots, needs and answers dropped; likes, dislikes and items shown kept."""
        return InterestProfile(liked=self.liked, disliked=self.disliked, shown=self.shown)

    def without(self, slot: Slot) -> InterestProfile:
        """The profile without one slot."""
        return replace(self, slots=tuple(s for s in self.slots if s != slot))

    def with_feedback(self, liked: Iterable[str] = (), disliked: Iterable[str] = ()) -> InterestProfile:
        """Likes and dislikes added; an item liked after being disliked (or the reverse) moves sides."""
        liked, disliked = list(liked), list(disliked)
        return replace(
            self,
            liked=_added(tuple(i for i in self.liked if i not in disliked), liked),
            disliked=_added(tuple(i for i in self.disliked if i not in liked), disliked),
        )

    def with_shown(self, item_ids: Iterable[str]) -> InterestProfile:
        return replace(self, shown=_added(self.shown, item_ids))

    def is_answered(self, facet: str) -> bool:
        """Whether ``facet`` was answered; ``"category"``: whether the shopper has no category preference."""
        return facet in self.answered or _answer_key(facet) in self.answered

    def for_ranking(self, session_id: str = "") -> Profile:
        """The ranking layer's profile of this one."""
        return Profile(
            constraints=tuple(slot.constraint for slot in self.slots),
            need=self.need,
            liked=self.liked,
            disliked=self.disliked,
            shown=frozenset(self.shown),
            answered=len(self.answered),
            session_id=session_id,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data, with :data:`VERSION`."""
        return {
            "version": VERSION,
            "slots": [
                {
                    "facet": slot.facet,
                    "op": slot.constraint.op.value,
                    "value": list(slot.constraint.value)
                    if isinstance(slot.constraint.value, tuple)
                    else slot.constraint.value,
                    "said": slot.said,
                    "turn": slot.turn,
                }
                for slot in self.slots
            ],
            "needs": list(self.needs),
            "liked": list(self.liked),
            "disliked": list(self.disliked),
            "shown": list(self.shown),
            "answered": list(self.answered),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> InterestProfile:
        """The profile of :meth:`to_dict`'s data.

        Raises:
            ProfileError: Another version, a missing field or a slot that is not a valid constraint.
        """
        if not isinstance(data, Mapping) or data.get("version") != VERSION:
            found = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise ProfileError(f"profile version {found!r}; this Concierge reads version {VERSION}")
        slots = []
        for index, raw in enumerate(_list(data, "slots")):
            try:
                value = raw["value"]
                constraint = Constraint(
                    raw["facet"], Op(raw["op"]), tuple(value) if isinstance(value, list) else value
                )
                slots.append(Slot(constraint, str(raw.get("said", "")), int(raw.get("turn", 0))))
            except (KeyError, TypeError, ValueError) as error:
                raise ProfileError(f"profile slots[{index}] = {raw!r}: {error}") from None
        return cls(
            slots=tuple(slots),
            needs=tuple(str(v) for v in _list(data, "needs")),
            liked=tuple(str(v) for v in _list(data, "liked")),
            disliked=tuple(str(v) for v in _list(data, "disliked")),
            shown=tuple(str(v) for v in _list(data, "shown")),
            answered=tuple(str(v) for v in _list(data, "answered")),
        )


def _related(a: str, b: str) -> bool:
    """Whether two category keys are the same or one lies under the other."""
    return a == b or a.startswith(f"{b}{PATH_SEPARATOR}") or b.startswith(f"{a}{PATH_SEPARATOR}")


def _list(data: Mapping[str, object], name: str) -> list:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ProfileError(f"profile field {name!r} must be a list, got {value!r}")
    return value


def _answer_key(facet: str) -> str:
    return CATEGORY if is_category(facet) and facet != CATEGORY else facet


def _added(existing: tuple[str, ...], more: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*existing, *more)))


def _replaced_by(slot: Slot, new: Constraint, turn: int) -> bool:
    """Whether an existing slot gives way to a new constraint (rules in the module docstring)."""
    old = slot.constraint
    if new.facet == PRICE:
        return old.facet == PRICE
    if is_category(new.facet) and is_category(old.facet):
        if new.op is Op.EQ:
            if old.op is Op.NE:
                return old.value == new.value
            return not str(new.value).startswith(f"{old.value}{PATH_SEPARATOR}")
        return old.op is Op.EQ and old.value == new.value
    if old.facet != new.facet:
        return False
    if new.op is Op.EQ:
        return (old.op is Op.NE and old.value == new.value) or (old.op is Op.EQ and slot.turn != turn)
    return old.op is Op.EQ and old.value == new.value


__all__ = ["CATEGORY", "VERSION", "WORDS", "InterestProfile", "ProfileError", "Slot", "is_category"]
