"""The channel-agnostic assistant service: sessions keyed by id, safe with concurrent shoppers and processes.

The Gradio chat, the terminal chat, the HTTP API and every channel adapter are thin clients of this class. A
turn loads the session from the store, lets the engine compute the new state on a copy, and saves it under the
version it loaded (:mod:`assistant.sessions`): turns of one session run one at a time in a process (a lock per
session), and when another process saved the same session meanwhile, the turn is run again on the fresh state.
A failing turn never reaches the shopper as a traceback and never changes what is stored.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from assistant.engine import Card, Conversation, Engine, Reply
from assistant.profile import InterestProfile
from assistant.sessions import SessionConflict, SessionRecord, SessionStore
from retrieval.profile import Constraint, Op

if TYPE_CHECKING:
    # langchain is imported only when a model rewords something, not when the service is built.
    from assistant.llm import Streamed

log = logging.getLogger(__name__)

FAILURE_TEXT = "Sorry, something went wrong on my side. Your conversation is kept; please try again."
WAITING_TEXT = "A person from our team has your conversation and will answer you here."
MAX_SESSION_ID = 200
_RETRIES = 3


class ActionFailed(RuntimeError):
    """An agent action that could not be saved (the turn failed, or the session kept changing under it); the
    session is as it was."""


class _Locks:
    """One lock per session id, dropped when no turn holds it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def __call__(self, session_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(session_id)
            if lock is None:
                lock = threading.Lock()
                self._locks[session_id] = lock
            return lock


@dataclass(frozen=True)
class SessionView:
    """A session as the console and tests read it."""

    session_id: str
    conversation: Conversation
    transcript: tuple[tuple[str, str], ...]
    events: tuple[dict[str, object], ...]
    version: int


class AssistantService:
    """Start sessions, send messages and feedback, read a session.

    Example:
        >>> service = AssistantService(engine, MemoryStore())  # doctest: +SKIP
        >>> service.send("web-42", "printer ink under $30").cards  # doctest: +SKIP
    """

    def __init__(self, engine: Engine, store: SessionStore, ttl_hours: float = 72.0) -> None:
        self.engine = engine
        self.store = store
        self.ttl_seconds = ttl_hours * 3600.0
        self._locks = _Locks()
        self._next_expiry = 0.0
        self._expiry_lock = threading.Lock()

    def expire(self, now: float | None = None) -> int:
        """Delete the sessions untouched for longer than the time to live; how many. Turns call it at most
        once a minute."""
        now = time.time() if now is None else now
        with self._expiry_lock:
            self._next_expiry = now + 60.0
        return self.store.expire(now - self.ttl_seconds)

    def start(self, session_id: str) -> Reply:
        """Open a session (or start an existing one over) and return the greeting."""
        _check_id(session_id)

        def turn(record: SessionRecord) -> tuple[SessionRecord, Reply]:
            state, reply = self.engine.start()
            return replace(record, state=state.to_dict()).said("assistant", reply.text), reply

        return self._turn(session_id, turn)

    def send(self, session_id: str, message: object) -> Reply:
        """Handle one shopper message (a new session is started first when there is none)."""
        _check_id(session_id)
        text = message if isinstance(message, str) else ""

        def turn(record: SessionRecord) -> tuple[SessionRecord, Reply]:
            if _conversation(record).handover:
                # A person has the conversation: the message waits for them, the assistant does not answer.
                reply = Reply(WAITING_TEXT, handover=True)
                return record.said("shopper", text), reply
            state, reply = self.engine.respond(_conversation(record), text, session_id)
            record = (
                replace(record, state=state.to_dict()).said("shopper", text).said("assistant", reply.text)
            )
            if reply.handover:
                record = replace(record, events=(*record.events, {"what": "handover requested"}))
            return record, reply

        return self._turn(session_id, turn)

    def feedback(self, session_id: str, item_id: str, liked: bool) -> Reply:
        """A thumbs up (``liked``) or down on an item."""
        _check_id(session_id)

        def turn(record: SessionRecord) -> tuple[SessionRecord, Reply]:
            state, reply = self.engine.feedback(_conversation(record), str(item_id), liked, session_id)
            said = f"{'thumbs up' if liked else 'thumbs down'} on {item_id}"
            return replace(record, state=state.to_dict()).said("shopper", said).said(
                "assistant", reply.text
            ), reply

        return self._turn(session_id, turn)

    # --- what a customer-service agent does (every action is one save, recorded in the session's events; one
    # that cannot be saved raises ActionFailed) --------------------------------------------------------------

    def take_over(self, session_id: str, agent: str) -> str:
        """An agent takes the conversation (the shopper reads that they joined); returns the summary they read
        first."""
        joined = f"{agent} from our team has joined the conversation."
        self._agent_turn(session_id, agent, "took over", lambda c: replace(c, handover=True), said=joined)
        return self.summary(session_id)

    def hand_back(self, session_id: str, agent: str) -> None:
        """The agent hands the conversation back to the assistant (and the shopper reads so)."""
        left = f"{agent} has handed you back to the assistant."
        self._agent_turn(session_id, agent, "handed back", lambda c: replace(c, handover=False), said=left)

    def agent_say(self, session_id: str, agent: str, text: str) -> None:
        """The agent writes to the shopper (shown as a person's message)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("an agent message needs some text")
        self._agent_turn(session_id, agent, "wrote", lambda c: c, said=text)

    def agent_edit(self, session_id: str, agent: str, constraint: Constraint | None, facet: str = "") -> None:
        """The agent adds a constraint to the profile, or with ``constraint=None`` clears ``facet``. An agent's
        ``=`` replaces the facet's earlier ``=`` wishes, even those of the shopper's latest message (which the
        profile would keep beside it, as several values said in one message)."""

        def edit(conversation: Conversation) -> Conversation:
            profile = conversation.profile
            if constraint is None:
                return replace(conversation, profile=profile.cleared(facet))
            if constraint.op is Op.EQ:
                for slot in profile.slots:
                    if slot.facet == constraint.facet and slot.constraint.op is Op.EQ:
                        profile = profile.without(slot)
            profile = profile.with_slot(constraint, f"agent {agent}", conversation.turn)
            return replace(conversation, profile=profile)

        what = (
            f"cleared {facet}"
            if constraint is None
            else f"set {constraint.facet} {constraint.op.value} {constraint.value}"
        )
        self._agent_turn(session_id, agent, what, edit)

    def agent_push(self, session_id: str, agent: str, item_id: str) -> Card:
        """The agent shows the shopper a catalog item: it joins the cards on screen (so "#n" can name it), counts
        as shown, and the shopper reads who recommends it; returns its card.

        Raises:
            ValueError: An item the catalog does not have.
        """
        catalog = self.engine.shop.catalog
        if not isinstance(item_id, str) or item_id not in catalog:
            raise ValueError(f"no item {item_id!r} in the catalog")
        note = f"Recommended by {agent} from our team."
        pushed: list[Card] = []

        def push(conversation: Conversation) -> Conversation:
            card = self.engine.card(item_id, conversation.profile, note)
            pushed.append(card)
            slate, on_screen = conversation.slate, conversation.on_screen
            if item_id in on_screen:
                # Already on screen: its card says now who recommends it, and "#n" keeps naming it.
                slate = tuple(card if c.item_id == item_id else c for c in slate)
            else:
                slate, on_screen = (*slate, card), (*on_screen, item_id)
            profile = conversation.profile.with_shown([item_id])
            return replace(conversation, slate=slate, on_screen=on_screen, profile=profile)

        said = f"{agent} recommends {catalog[item_id].title}."
        self._agent_turn(session_id, agent, f"pushed {item_id}", push, said=said)
        return pushed[-1]

    def summary(self, session_id: str) -> str:
        """A short summary of the conversation for the agent who joins: built from the profile and transcript."""
        view = self.view(session_id)
        if view is None:
            return "No conversation yet."
        catalog = self.engine.shop.catalog
        profile = view.conversation.profile
        wants = [f"{s.facet} {s.constraint.op.value} {s.constraint.value}" for s in profile.slots]
        liked = [catalog[i].title for i in profile.liked if i in catalog]
        lines = [
            f"{view.conversation.turn} shopper messages; {len(profile.shown)} items shown.",
            f"Looking for: {profile.need or 'not said in words'}.",
            f"Wishes: {'; '.join(wants) if wants else 'none'}.",
            f"Liked: {'; '.join(liked) if liked else 'nothing yet'}.",
        ]
        last = [text for role, text in view.transcript if role == "shopper"][-1:]
        if last:
            lines.append(f"Last message: {last[0]}")
        return "\n".join(lines)

    def _agent_turn(self, session_id: str, agent: str, what: str, change, said: str = "") -> None:
        _check_id(session_id)
        if not isinstance(agent, str) or not agent.strip():
            raise ValueError("an agent action needs the agent's name")

        def turn(record: SessionRecord) -> tuple[SessionRecord, Reply]:
            conversation = change(_conversation(record))
            record = replace(
                record,
                state=conversation.to_dict(),
                events=(*record.events, {"at": time.time(), "agent": agent, "what": what}),
            )
            return (record.said("agent", said) if said else record), Reply(said)

        self._turn(session_id, turn, raising=True)

    @property
    def rewords(self) -> bool:
        """Whether a language model is configured to reword explanations (without one, :meth:`reword` only gives
        each card's template back)."""
        return self.engine.shop.llm is not None

    def reword(self, session_id: str, cards: Sequence[Card]) -> Iterator[tuple[str, Streamed]]:
        """The language model's wording of each card's explanation, streamed: steps of ``(item id, text so far)``
        card after card, each text checked against the catalog before it comes (:func:`assistant.explain.
        stream_explanation`); a card's last step carries the outcome, and its text is the template when there is no
        model or nothing the model wrote passed. Channels show the cards first, each with its template, and replace
        a card's explanation with the steps as they come; cards never wait for the model."""
        from assistant.explain import stream_explanation

        shop = self.engine.shop
        view = self.view(session_id)
        profile = view.conversation.profile if view else InterestProfile()
        brands = shop.brands
        for card in cards:
            item = shop.catalog[card.item_id]
            evidence = shop.evidence(card.item_id, profile.liked)
            generated = shop.generated.get(card.item_id, "")
            steps = stream_explanation(shop.llm, card.explanation, item, profile, brands, evidence, generated)
            for step in steps:
                yield card.item_id, step

    def explanation_updates(self, session_id: str, cards: Sequence[Card]) -> Iterator[tuple[str, str]]:
        """:meth:`reword`'s steps as a channel that replaces a card's shown explanation needs them: ``(item id,
        text)`` only where the text differs from what that card shows so far (its template first), so a card whose
        wording did not pass, or that has no model, gets no update."""
        shown = {card.item_id: card.explanation.text for card in cards}
        for item_id, step in self.reword(session_id, cards):
            if step.text != shown[item_id]:
                shown[item_id] = step.text
                yield item_id, step.text

    def view(self, session_id: str) -> SessionView | None:
        """The stored session, ``None`` when there is none."""
        _check_id(session_id)
        record = self.store.load(session_id)
        if record is None:
            return None
        return SessionView(
            session_id, _conversation(record), record.transcript, record.events, record.version
        )

    def transcript(self, session_id: str) -> list[tuple[str, str]]:
        view = self.view(session_id)
        return list(view.transcript) if view else []

    def _turn(
        self,
        session_id: str,
        turn: Callable[[SessionRecord], tuple[SessionRecord, Reply]],
        raising: bool = False,
    ) -> Reply:
        """Run ``turn`` on the stored session and save it under the version it loaded (again on a conflict). A
        shopper's failed turn gives :data:`FAILURE_TEXT`; with ``raising`` (an agent's action) it raises
        :class:`ActionFailed`, so the console never shows an action as done that was not."""
        if time.time() >= self._next_expiry:
            try:
                self.expire()
            except Exception:  # an expiry that fails must not fail the turn
                log.exception("expiring old sessions failed")
        with self._locks(session_id):
            for _ in range(_RETRIES):
                record = self.store.load(session_id)
                if record is None:
                    state, _ = self.engine.start()
                    record = SessionRecord(session_id, state.to_dict())
                try:
                    updated, reply = turn(record)
                except Exception as error:
                    log.exception("turn failed in session %s", session_id)
                    if raising:
                        raise ActionFailed(f"the action failed in session {session_id!r}") from error
                    return Reply(FAILURE_TEXT, _conversation_options(record))
                try:
                    self.store.save(updated, record.version)
                    return reply
                except SessionConflict:
                    continue
            log.error(
                "session %s kept changing under this turn; gave up after %d tries", session_id, _RETRIES
            )
            if raising:
                raise ActionFailed(f"session {session_id!r} kept changing; try again")
            return Reply(FAILURE_TEXT)


def _conversation(record: SessionRecord) -> Conversation:
    return Conversation.from_dict(record.state) if record.state else Conversation()


def _conversation_options(record: SessionRecord) -> tuple[str, ...]:
    try:
        pending = _conversation(record).pending
    except ValueError:
        return ()
    return () if pending is None else pending.options


def _check_id(session_id: object) -> None:
    if not isinstance(session_id, str) or not session_id.strip() or len(session_id) > MAX_SESSION_ID:
        raise ValueError(
            f"session id must be a non-empty string of at most {MAX_SESSION_ID} characters, got {session_id!r}"
        )
