"""The channel-agnostic assistant service: sessions keyed by id, safe with concurrent shoppers.

The Gradio chat, the HTTP API and every channel adapter are thin clients of this class. It holds each
conversation's state under the session id, turns one message at a time per session (messages of different
sessions run in parallel), and never lets a failure in a turn reach the shopper as a traceback.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field

from assistant.conversation import ConversationState, FacetedConversation, Reply

log = logging.getLogger(__name__)

FAILURE_TEXT = "Sorry, something went wrong on my side. Your conversation is kept; please try again."


@dataclass
class _Session:
    state: ConversationState = field(default_factory=ConversationState)
    lock: threading.Lock = field(default_factory=threading.Lock)
    transcript: list[tuple[str, str]] = field(default_factory=list)


class AssistantService:
    """Start sessions, send messages, read a session's state.

    Example:
        >>> service = AssistantService(conversation)  # doctest: +SKIP
        >>> service.start("web-42").options  # doctest: +SKIP
        ('Office & School Supplies', 'Office Electronics', ..., 'No preference')
    """

    def __init__(self, conversation: FacetedConversation):
        self.conversation = conversation
        self._sessions: dict[str, _Session] = {}
        self._registry_lock = threading.Lock()

    def _session(self, session_id: str) -> _Session:
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session id must be a non-empty string, got {session_id!r}")
        with self._registry_lock:
            return self._sessions.setdefault(session_id, _Session())

    def start(self, session_id: str) -> Reply:
        """Open (or restart) a session and return the first question."""
        session = self._session(session_id)
        with session.lock:
            reply = self.conversation.start(session.state)
            session.transcript.append(("assistant", reply.text))
            return reply

    def send(self, session_id: str, message: str) -> Reply:
        """Handle one shopper message. A failing turn leaves the session's state as it was before the message."""
        session = self._session(session_id)
        with session.lock:
            if not session.transcript:
                self.conversation.start(session.state)
            before = copy.deepcopy(session.state)
            try:
                reply = self.conversation.respond(session.state, message if isinstance(message, str) else "")
            except Exception:
                log.exception("turn failed in session %s", session_id)
                session.state = before
                reply = Reply(FAILURE_TEXT, before.offered)
            session.transcript.extend((("shopper", str(message)), ("assistant", reply.text)))
            return reply

    def state(self, session_id: str) -> ConversationState:
        """A copy of a session's state (for an agent console, tests and debugging)."""
        session = self._session(session_id)
        with session.lock:
            return copy.deepcopy(session.state)

    def transcript(self, session_id: str) -> list[tuple[str, str]]:
        session = self._session(session_id)
        with session.lock:
            return list(session.transcript)
