"""Messaging channels under ``/v1/channels``: a signed JSON webhook and Telegram, served by the API's process.

Each channel is off, and its path answers 404, while its secret in ``[server]`` is empty. Both are thin clients
of :class:`assistant.service.AssistantService` with the API's body-size and rate limits and JSON errors
(:mod:`ui.api`); a refused request never reaches the service, so it changes no session.

The signed webhook, ``POST /v1/channels/webhook`` (``[server] webhook_secret``), for a bridge to any channel::

    {"channel_user": "whatsapp:+15550100", "text": "printer ink under $30"}
    {"channel_user": "whatsapp:+15550100", "feedback": {"item_id": "B00AZ1J3S4", "liked": true}}

``channel_user`` (letters, digits and ``. _ : @ + -``) names the shopper; the session is
``webhook:<channel_user>``, started by the first text. Exactly one of ``text`` (a message, or a quick reply's
label) and ``feedback`` (a thumbs up or down on an item of the catalog; the session must exist). The headers
sign the exact bytes of the body::

    X-Concierge-Timestamp: 1764562800            (unix seconds, now)
    X-Concierge-Signature: sha256=<hex HMAC-SHA256(webhook_secret, f"{timestamp}.".encode() + body)>

A missing or wrong signature, a timestamp over ``[server] webhook_tolerance_s`` from the server's clock and a
signature seen before (within that time) are 401. The answer is ``{"session_id", "reply"}``, the reply as the
API's (:func:`ui.replies.reply_to_json`); the errors are the API's, with 404 ``unknown_session`` for feedback
before any text.

Example (signing a request)::

    body = json.dumps({"channel_user": "sms:+15550100", "text": "pens"}).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    httpx.post(url, content=body, headers={"Content-Type": "application/json",
               "X-Concierge-Timestamp": timestamp, "X-Concierge-Signature": f"sha256={digest}"})

Telegram, ``POST /v1/channels/telegram`` (``[server] telegram_secret``, given to the Bot API's ``setWebhook`` as
``secret_token``): an update whose ``X-Telegram-Bot-Api-Secret-Token`` is not the secret is 401; any other is
answered 200, because Telegram sends a refused update again and again. The answer is a ``sendMessage`` method
call in the response body (:mod:`ui.telegram`), or an empty body for an update that asks for nothing. A chat
over ``requests_per_minute_per_session`` is asked to wait instead of getting a 429. Telegram's servers are one
client to ``requests_per_minute_per_client``, which therefore limits the whole bot.
"""

# No `from __future__ import annotations`: FastAPI must read the annotations naming the local `verified`.
import hashlib
import hmac
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.service import MAX_SESSION_ID, AssistantService
from data.settings import ServerSettings
from ui import telegram
from ui.api import PREFIX, ApiError, client_limit, take_or_refuse, validation_error
from ui.api_models import WEBHOOK_SESSION_PREFIX
from ui.replies import reply_to_json

log = logging.getLogger(__name__)

# Signatures remembered against replays; when this many are live at once, new requests get 429 until some expire
# (forgetting one early would let it be replayed).
MAX_REMEMBERED_SIGNATURES = 100_000
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHANNEL_USER = r"^[A-Za-z0-9._:@+-]+$"


class WebhookFeedback(BaseModel):
    model_config = ConfigDict(strict=True)

    item_id: str = Field(min_length=1)
    liked: bool


class WebhookEvent(BaseModel):
    """What a signed webhook request carries (see the module docstring)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    channel_user: str = Field(
        min_length=1, max_length=MAX_SESSION_ID - len(WEBHOOK_SESSION_PREFIX), pattern=_CHANNEL_USER
    )
    text: str | None = None
    feedback: WebhookFeedback | None = None

    @property
    def session_id(self) -> str:
        return f"{WEBHOOK_SESSION_PREFIX}{self.channel_user}"


class ReplayGuard:
    """The signatures accepted recently, each until its timestamp leaves the tolerance window; thread-safe.

    ``shared`` (``(signature, until) -> whether it is new``) also claims each signature where every server process
    sees it (:meth:`assistant.sessions.SessionStore.claim`), so a request replayed to another process is refused
    too; the process's own memory answers first and bounds what one process keeps.

    Example:
        >>> guard = ReplayGuard(2, clock=lambda: 100.0)
        >>> guard.admit("a", until=110.0), guard.admit("a", until=110.0), guard.admit("b", until=90.0)
        ('new', 'replay', 'new')
        >>> guard.admit("c", until=110.0)  # "b" has expired, so there is room
        'new'
        >>> guard.admit("d", until=110.0)
        'full'
    """

    def __init__(
        self,
        capacity: int = MAX_REMEMBERED_SIGNATURES,
        clock: Callable[[], float] = time.time,
        shared: Callable[[str, float], bool] | None = None,
    ):
        self.capacity, self._clock, self._shared = capacity, clock, shared
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def admit(self, signature: str, until: float) -> Literal["new", "replay", "full"]:
        """Remember ``signature`` until ``until`` (unix seconds) unless it is remembered already or no room is
        left."""
        with self._lock:
            now = self._clock()
            if signature in self._until and self._until[signature] >= now:
                return "replay"
            if len(self._until) >= self.capacity:
                self._until = {key: end for key, end in self._until.items() if end >= now}
                if len(self._until) >= self.capacity:
                    return "full"
            self._until[signature] = until
        if self._shared is not None and not self._shared(signature, until):
            return "replay"
        return "new"

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)


async def _raw_body(request: Request) -> bytes:
    """The exact bytes signed (the API's body limit applies while they are read)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def build_channel_router(
    service: AssistantService, settings: ServerSettings, signatures: ReplayGuard
) -> APIRouter:
    """The routes of the channels whose secret is set (none when both are empty); the webhook's accepted
    signatures are remembered in ``signatures`` (the app's own, like its rate limiters).

    Raises:
        ValueError: ``webhook_tolerance_s`` below 1, or a ``telegram_secret`` Telegram would not accept.
    """
    if settings.webhook_tolerance_s < 1:
        raise ValueError(
            f"[server] webhook_tolerance_s must be 1 or more, got {settings.webhook_tolerance_s}"
        )
    if settings.telegram_secret and not _TELEGRAM_SECRET.match(settings.telegram_secret):
        raise ValueError(
            "[server] telegram_secret must be 1 to 256 characters of A-Z a-z 0-9 _ - (Telegram's secret_token)"
        )
    router = APIRouter(prefix=f"{PREFIX}/channels", dependencies=[Depends(client_limit)])
    if settings.webhook_secret:
        _add_webhook(router, service, settings, signatures)
    if settings.telegram_secret:
        _add_telegram(router, service, settings)
    return router


def _add_webhook(
    router: APIRouter, service: AssistantService, settings: ServerSettings, signatures: ReplayGuard
) -> None:
    key = settings.webhook_secret.encode("utf-8")
    tolerance = settings.webhook_tolerance_s

    def verified(
        body: RawBody,
        timestamp: Annotated[str, Header(alias="X-Concierge-Timestamp")] = "",
        signature: Annotated[str, Header(alias="X-Concierge-Signature")] = "",
    ) -> bytes:
        # Twelve digits reach the year 33658; a longer one would only make int() slow.
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise ApiError(
                401, "bad_signature", "X-Concierge-Timestamp must be the unix time in seconds", "timestamp"
            )
        expected = "sha256=" + hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode("utf-8"), expected.encode("utf-8")):
            raise ApiError(
                401,
                "bad_signature",
                'X-Concierge-Signature must be "sha256=" and the hex HMAC-SHA256 of "<timestamp>." and the body',
                "signature",
            )
        if abs(time.time() - int(timestamp)) > tolerance:
            raise ApiError(
                401,
                "stale_timestamp",
                f"X-Concierge-Timestamp is more than {tolerance} s from the server's clock; sign the request anew",
                "timestamp",
            )
        admitted = signatures.admit(signature, until=int(timestamp) + tolerance)
        if admitted == "replay":
            raise ApiError(
                401, "replayed", "this signature was used already; sign each request anew", "signature"
            )
        if admitted == "full":
            raise ApiError(
                429, "rate_limited", "too many webhook requests; retry later", headers={"Retry-After": "60"}
            )
        return body

    @router.post(
        "/webhook", summary="A shopper's message or feedback from another channel, signed (HMAC-SHA256)"
    )
    def webhook(request: Request, body: Annotated[bytes, Depends(verified)]) -> dict[str, object]:
        try:
            event = WebhookEvent.model_validate_json(body)
        except ValidationError as error:
            raise validation_error(RequestValidationError(error.errors())) from None
        if (event.text is None) == (event.feedback is None):
            raise ApiError(422, "invalid_field", "send exactly one of text and feedback", "body")
        if event.text is not None and not event.text.strip():
            raise ApiError(422, "invalid_field", "text: the message needs some text, not only spaces", "text")
        session_id = event.session_id
        take_or_refuse(request.app.state.rate_limiters["session"], session_id, "session")
        if event.text is not None:
            if len(event.text) > settings.max_message_chars:
                raise ApiError(
                    413,
                    "message_too_long",
                    f"text: the message has {len(event.text):,} characters; at most {settings.max_message_chars:,}",
                    "text",
                )
            reply = service.send(session_id, event.text)
        else:
            feedback = event.feedback
            if feedback.item_id not in service.engine.shop.catalog:
                raise ApiError(
                    422,
                    "unknown_item",
                    f"item_id: no item {feedback.item_id!r} in the catalog",
                    "feedback.item_id",
                )
            if service.view(session_id) is None:
                raise ApiError(
                    404, "unknown_session", f"no session {session_id!r}; send a text first", "channel_user"
                )
            reply = service.feedback(session_id, feedback.item_id, feedback.liked)
        return {"session_id": session_id, "reply": reply_to_json(reply)}


def _add_telegram(router: APIRouter, service: AssistantService, settings: ServerSettings) -> None:
    secret = settings.telegram_secret.encode("utf-8")
    max_chars = settings.max_message_chars

    def verified(
        body: RawBody, token: Annotated[str, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = ""
    ) -> bytes:
        if not hmac.compare_digest(token.encode("utf-8"), secret):
            raise ApiError(
                401, "bad_secret_token", "X-Telegram-Bot-Api-Secret-Token is not this bot's secret", "token"
            )
        return body

    @router.post("/telegram", summary="A Telegram Bot API update; answered with a sendMessage call")
    def update(request: Request, body: Annotated[bytes, Depends(verified)]):
        try:
            turn = telegram.turn_of(telegram.Update.model_validate_json(body))
        except ValidationError:
            log.warning("a Telegram update that is not one was ignored: %.200r", body)
            return Response()
        if turn is None:
            return Response()
        wait = request.app.state.rate_limiters["session"].take(turn.session_id)
        if wait > 0:
            return telegram.plain_message(
                turn.chat_id, f"You are writing faster than I can answer; please wait {math.ceil(wait)} s."
            )
        if turn.kind == "unreadable":
            return telegram.plain_message(turn.chat_id, telegram.ASK_FOR_TEXT)
        if turn.kind == "start":
            reply = service.start(turn.session_id)
        elif turn.kind == "feedback":
            reply = service.feedback(turn.session_id, turn.item_id, turn.liked)
        elif len(turn.text) > max_chars:
            return telegram.plain_message(
                turn.chat_id,
                f"That message is too long for me; please keep it under {max_chars:,} characters.",
            )
        else:
            reply = service.send(turn.session_id, turn.text)
        return telegram.send_message(turn.chat_id, reply)
