"""The versioned JSON HTTP API: a thin client of :class:`assistant.service.AssistantService` under ``/v1``.

=====  ================================  ==============================  ==========================================
POST   /v1/sessions                      ``{"session_id"?}``             201 ``{session_id, token, reply}``
POST   /v1/sessions/{id}/messages        ``{"text"}``                    200 the reply
POST   /v1/sessions/{id}/messages        ``{"text"}``, ``?stream=true``  200 server-sent events (below)
POST   /v1/sessions/{id}/feedback        ``{"item_id", "liked"}``        200 the reply
POST   /v1/sessions/{id}/handover        none                            200 the reply (as "talk to a person")
GET    /v1/sessions/{id}                 none                            200 the session's state
=====  ================================  ==============================  ==========================================

Opening a session gives its token; every later request on the session sends it (``Authorization: Bearer
<token>``): 401 without it, 403 with another session's, so an id that is guessed or reused opens nothing. A token
is an HMAC of the session id under ``[server] session_secret`` (a random key per process when that is empty).

The types are in :mod:`ui.api_models`; ``/openapi.json`` documents them. With ``?stream=true`` the reply comes
as server-sent events: first ``reply`` (the whole reply, cards with their template explanations, at once), then
``explanation`` events ``{item_id, text}`` as the language model's checked wording of a card's explanation grows
(none with no model configured, none for a card whose wording failed the check), then ``done``.

Every error is ``{"error": {"code", "message", "field"}}``: 401 no session token, 403 another session's token,
404 an unknown session, 409 a session id already in use, 413 a message over ``[server] max_message_chars``, 422
malformed JSON, a missing or mistyped field, a bad session id or an item not in the catalog, 429 over ``[server]
requests_per_minute_per_session`` or ``requests_per_minute_per_client`` (with ``Retry-After``); 500
``internal_error`` for a fault of the server. A request refused for any of the others never reaches the service: it
changes no session.

The messaging channels (a signed JSON webhook, Telegram) are served under ``/v1/channels`` by :mod:`ui.webhooks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import format_sse_event
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.engine import MAX_MESSAGE_CHARS
from assistant.service import MAX_SESSION_ID, AssistantService, SessionView
from data.settings import ServerSettings
from ui import api_models as wire
from ui.limits import RateLimiter
from ui.replies import question_to_json, reply_to_json

log = logging.getLogger(__name__)

PREFIX = "/v1"
# JSON around a message: the field name, quotes, and room for a client's extra fields.
_BODY_OVERHEAD = 4096
# A character of a message takes at most 12 bytes of JSON (a surrogate pair escaped as \uXXXX\uXXXX).
_MAX_BYTES_PER_CHAR = 12

SessionId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_SESSION_ID,
        pattern=wire.SESSION_ID_PATTERN,
        description=f"The session id: {wire.SESSION_ID_RULE}.",
    ),
]


class ApiError(HTTPException):
    """An error response: the status, a stable code, a sentence, the field at fault and extra headers.

    An ``HTTPException``, so that FastAPI passes one raised while it reads a body on to its handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class _BodyLimit:
    """Bodies of API requests over ``max_bytes`` get the API's JSON 413 (Starlette's own limit answers in plain
    text); the chat's requests pass untouched. A declared length over the limit is refused before any is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        error = ApiError(413, "body_too_large", f"the request body is over {self.max_bytes:,} bytes", "body")
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error.response()(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.max_bytes:
                raise error
            return message

        await self.app(scope, limited, send)


def _errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    described = {
        401: "No session token: send Authorization: Bearer <token>.",
        403: "The token is not this session's.",
        404: "No session has this id.",
        409: "A session with this id exists already.",
        413: "The message, or the request body, is over the limit.",
        422: "Malformed JSON, a missing or mistyped field, a bad session id or an unknown item.",
        429: "Over the request-rate limit of the session or the client; see Retry-After.",
    }
    return {status: {"model": wire.ErrorBody, "description": described[status]} for status in statuses}


def validation_error(error: RequestValidationError) -> ApiError:
    """The first problem pydantic found, named by its field."""
    first = error.errors()[0] if error.errors() else {"loc": ("body",), "msg": "invalid", "type": ""}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query")]
    field = ".".join(where) or "body"
    kind = first.get("type", "")
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", message)
        return ApiError(422, "malformed_json", f"the body is not valid JSON: {detail}", "body")
    if field == "body":
        return ApiError(
            422,
            "malformed_json",
            f"the body must be a JSON object sent as Content-Type: application/json ({message})",
            "body",
        )
    if field == "session_id":
        said = first.get("input")
        return ApiError(
            422,
            "invalid_session_id",
            f"session_id: {said!r} is not a session id; use {wire.SESSION_ID_RULE}",
            field,
        )
    code = "missing_field" if kind == "missing" else "invalid_field"
    return ApiError(422, code, f"{field}: {message}", field)


def _http_error(error: HTTPException) -> ApiError:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}
    return ApiError(
        error.status_code,
        codes.get(error.status_code, "http_error"),
        str(error.detail),
        headers=dict(error.headers or {}),
    )


def take_or_refuse(limiter: RateLimiter, key: str, what: str) -> None:
    wait = limiter.take(key)
    if wait > 0:
        seconds = str(math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"over {limiter.per_minute} requests a minute for this {what}; retry in {seconds} s",
            headers={"Retry-After": seconds},
        )


def client_limit(request: Request) -> None:
    """Every request counts against its client (the remote address)."""
    host = request.client.host if request.client else "unknown"
    take_or_refuse(request.app.state.rate_limiters["client"], host, "client")


def session_token(key: bytes, session_id: str) -> str:
    """The bearer token of a session: an HMAC-SHA256 of its id under the server's key, URL-safe base64.

    Example:
        >>> session_token(b"k" * 32, "web-42")
        'nkVesVaJz7JHwcCrRgbhpLXt-GfNiYbBEnJ6iJQxT2E'
    """
    digest = hmac.new(key, session_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_bearer = HTTPBearer(
    auto_error=False,
    description="The session's token, as `POST /v1/sessions` gave it: `Authorization: Bearer <token>`.",
)


def _session_access(
    request: Request,
    session_id: SessionId,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """A request on a session must carry the session's token: 401 without one, 403 with another (checked before
    the session is looked up, so a refusal says nothing of whether it exists). Only then does it count against the
    session's limit, so requests without the token cannot use up a shopper's requests."""
    if credentials is None:
        raise ApiError(
            401,
            "missing_token",
            "this request needs the session's token: send Authorization: Bearer <token>, the token "
            "POST /v1/sessions gave",
            "Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = session_token(request.app.state.session_key, session_id)
    if not hmac.compare_digest(credentials.credentials.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(
            403, "wrong_token", f"the token is not the one of session {session_id!r}", "Authorization"
        )
    take_or_refuse(request.app.state.rate_limiters["session"], session_id, "session")
    return session_id


# A session path parameter, checked, counted against the session's limit, and opened by its token only.
Session = Annotated[str, Depends(_session_access)]


def build_api(service: AssistantService, settings: ServerSettings | None = None) -> FastAPI:
    """The API app for ``service`` with the limits of ``settings`` (its own rate limiters, in ``app.state``).

    Raises:
        ValueError: A limit below 1, ``max_message_chars`` over the engine's own limit, or a channel setting
            :func:`ui.webhooks.build_channel_router` refuses.

    Example:
        >>> app = build_api(small_assistant(tmp).service)  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = settings or ServerSettings()
    max_chars = settings.max_message_chars
    if not 1 <= max_chars <= MAX_MESSAGE_CHARS:
        raise ValueError(
            f"[server] max_message_chars must be between 1 and {MAX_MESSAGE_CHARS} (the engine's limit), "
            f"got {max_chars}"
        )
    per_client = RateLimiter(settings.requests_per_minute_per_client)
    per_session = RateLimiter(settings.requests_per_minute_per_session)

    app = FastAPI(
        title="Concierge API",
        version="1",
        summary="A conversational shopping assistant for new shoppers: sessions, messages, feedback, state.",
        # Swagger UI and ReDoc load their scripts from a CDN; the document itself is served locally.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(_BodyLimit, max_bytes=_MAX_BYTES_PER_CHAR * max_chars + _BODY_OVERHEAD)
    app.state.rate_limiters = {"client": per_client, "session": per_session}
    if settings.session_secret:
        app.state.session_key = settings.session_secret.encode("utf-8")
    else:
        # Tokens of this process only: several processes serving the same sessions share [server] session_secret.
        app.state.session_key = secrets.token_bytes(32)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return validation_error(error).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        return _http_error(error).response()

    @app.exception_handler(Exception)
    async def _failed(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return ApiError(
            500, "internal_error", "something went wrong on the server; please try again"
        ).response()

    def existing(session_id: str) -> SessionView:
        view = service.view(session_id)
        if view is None:
            raise ApiError(
                404, "unknown_session", f"no session {session_id!r}; create one first", "session_id"
            )
        return view

    router = APIRouter(
        prefix=PREFIX,
        dependencies=[Depends(client_limit)],
    )

    @router.post(
        "/sessions",
        status_code=201,
        response_model=wire.SessionCreated,
        responses=_errors(409, 413, 422, 429),
        summary="Open a session; the reply is the greeting",
    )
    def create_session(body: Annotated[wire.NewSession | None, Body()] = None) -> dict[str, object]:
        session_id = body.session_id if body and body.session_id else None
        if session_id is None:
            session_id = secrets.token_urlsafe(16)
        else:
            if session_id.startswith(wire.CHANNEL_SESSION_PREFIXES):
                raise ApiError(
                    422,
                    "reserved_session_id",
                    f"session_id: {session_id!r} starts with one of "
                    f"{', '.join(map(repr, wire.CHANNEL_SESSION_PREFIXES))}, which the chat and the messaging "
                    "channels use for their own sessions; choose another",
                    "session_id",
                )
            if service.view(session_id) is not None:
                raise ApiError(
                    409, "session_exists", f"a session {session_id!r} exists already", "session_id"
                )
            take_or_refuse(per_session, session_id, "session")
        reply = reply_to_json(service.start(session_id))
        return {
            "session_id": session_id,
            "token": session_token(app.state.session_key, session_id),
            "reply": reply,
        }

    @router.post(
        "/sessions/{session_id}/messages",
        response_model=wire.Reply,
        responses={
            **_errors(401, 403, 404, 413, 422, 429),
            200: {
                "description": "The reply; with `?stream=true`, server-sent events: `reply` (a Reply), then "
                "`explanation` events (an Explanation each), then `done`.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
        },
        summary="Send the shopper's message (or a quick reply's label)",
    )
    def send_message(
        session_id: Session,
        message: wire.Message,
        stream: Annotated[
            bool,
            Query(description="Stream the reply as server-sent events, explanations as they are worded."),
        ] = False,
    ):
        if len(message.text) > max_chars:
            raise ApiError(
                413,
                "message_too_long",
                f"text: the message has {len(message.text):,} characters; at most {max_chars:,}",
                "text",
            )
        existing(session_id)
        reply = service.send(session_id, message.text)
        body = reply_to_json(reply)
        if not stream:
            return body

        def events() -> Iterator[bytes]:
            yield format_sse_event(data_str=wire.Reply.model_validate(body).model_dump_json(), event="reply")
            if reply.cards and service.rewords:
                try:
                    for item_id, text in service.explanation_updates(session_id, reply.cards):
                        event = wire.Explanation(item_id=item_id, text=text)
                        yield format_sse_event(data_str=event.model_dump_json(), event="explanation")
                except Exception:  # the cards are out already: a failed rewording leaves their templates
                    log.exception("rewording failed in session %s", session_id)
            yield format_sse_event(data_str="{}", event="done")

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.post(
        "/sessions/{session_id}/feedback",
        response_model=wire.Reply,
        responses=_errors(401, 403, 404, 413, 422, 429),
        summary="A thumbs up or down on an item",
    )
    def feedback(session_id: Session, body: wire.Feedback) -> dict[str, object]:
        if body.item_id not in service.engine.shop.catalog:
            raise ApiError(
                422, "unknown_item", f"item_id: no item {body.item_id!r} in the catalog", "item_id"
            )
        existing(session_id)
        return reply_to_json(service.feedback(session_id, body.item_id, body.liked))

    @router.post(
        "/sessions/{session_id}/handover",
        response_model=wire.Reply,
        responses=_errors(401, 403, 404, 422, 429),
        summary='Ask for a person (as if the shopper wrote "talk to a person")',
    )
    def handover(session_id: Session) -> dict[str, object]:
        existing(session_id)
        return reply_to_json(service.send(session_id, wire.HANDOVER_MESSAGE))

    @router.get(
        "/sessions/{session_id}",
        response_model=wire.SessionState,
        responses=_errors(401, 403, 404, 422, 429),
        summary="The session's state: profile, items on screen, transcript, hand-over, version",
    )
    def state(session_id: Session) -> dict[str, object]:
        view = existing(session_id)
        conversation = view.conversation
        profile = conversation.profile
        catalog = service.engine.shop.catalog
        return {
            "session_id": session_id,
            "version": view.version,
            "turn": conversation.turn,
            "profile": {
                "slots": profile.to_dict()["slots"],
                "need": profile.need,
                "liked": list(profile.liked),
                "disliked": list(profile.disliked),
                "shown": list(profile.shown),
            },
            "question": question_to_json(conversation.pending),
            "on_screen": [
                {"item_id": item_id, "title": catalog[item_id].title if item_id in catalog else ""}
                for item_id in conversation.on_screen
            ],
            "transcript": [{"role": role, "text": text} for role, text in view.transcript],
            "handover": conversation.handover,
        }

    app.include_router(router)
    # Imported here: the channels' module builds on this one's errors and limits.
    from ui.webhooks import ReplayGuard, build_channel_router

    app.state.webhook_signatures = ReplayGuard(
        shared=lambda signature, until: service.store.claim(f"webhook-signature:{signature}", until)
    )
    app.include_router(build_channel_router(service, settings, app.state.webhook_signatures))

    @app.api_route(
        PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    def unknown(path: str) -> None:
        # Last: under `concierge serve` the chat mounted at / would otherwise answer an unknown /v1 path, in its
        # own shape.
        raise ApiError(404, "not_found", f"no endpoint {PREFIX}/{path}; /openapi.json lists them", "path")

    return app
