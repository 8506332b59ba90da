"""The customer-service console: server-rendered pages where a person from the store follows the shoppers'
sessions and steps in. Mounted at ``/console`` by :func:`ui.serve.build_server_app`.

=====  =================================  ===================================================================
GET    /console/                          the sessions, latest first (refreshed every few seconds)
GET    /console/list                      the sessions table alone (what the page refreshes)
GET    /console/sessions/{id}             one session: summary, transcript, profile, picks, events, actions
GET    /console/sessions/{id}/live        the session's live part alone (what the page refreshes)
GET    /console/items?q=                  catalog items whose title holds ``q``, as ``<option>`` choices
POST   /console/sessions/{id}/take-over   the agent takes the conversation (the assistant stops answering)
POST   /console/sessions/{id}/hand-back   the assistant answers again
POST   /console/sessions/{id}/say         ``text``: a message to the shopper
POST   /console/sessions/{id}/push        ``item_id``: a catalog item shown to the shopper as a card
POST   /console/sessions/{id}/slot        ``facet``, ``op``, ``value``: a wish set in the profile
POST   /console/sessions/{id}/clear       ``facet``: every wish about a facet dropped
=====  =================================  ===================================================================

Every request needs the login of ``[server] console_user`` and ``console_password_hash`` (HTTP Basic,
:mod:`ui.auth`): 401 without it, 429 after too many failed logins from one address, 503 while no login is
configured. The logged-in user is the agent named in the session's events. A form is sent with a token (an
HMAC-SHA256 of the user and the session id, keyed by the password hash), so another site cannot make an agent's
browser act: without the right token a POST is 403. A POST answers 303 back to the session page; 404 an unknown
session; 422 a form value that cannot be used (the page names the field and value). A refused request changes
nothing.

Everything a shopper, an agent or the catalog wrote is escaped (:func:`fill`). The pages hold no script of their
own: ``static/console.js`` refreshes the live parts from their fragments and offers catalog titles in the item
field, so the forms keep what the agent is typing; the Content-Security-Policy header allows nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from assistant.engine import Card
from assistant.profile import CATEGORY, WORDS, InterestProfile
from assistant.service import MAX_SESSION_ID, ActionFailed, AssistantService, SessionView
from data.facets import Facet
from data.settings import ServerSettings
from retrieval.profile import PRICE, Constraint, Op
from ui.auth import BasicLogin, LoginRefused, PasswordHashError

STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
# The list shows the latest sessions only: each row loads its session.
LISTED_SESSIONS = 100
SEARCH_RESULTS = 10
SHORT_MESSAGE_CHARS = 80
ROLES = {"shopper": "Shopper", "assistant": "Assistant", "agent": "Agent"}
NONE_MARK = "\N{EM DASH}"


class Safe(str):
    """HTML written by this module (or escaped already): :func:`fill` puts it in as it is."""


def fill(template: str, **values: object) -> Safe:
    """``template`` with each ``{name}`` replaced by its value, escaped unless it is :class:`Safe`.

    Example:
        >>> fill("<td>{title}</td>{cell}", title='<img src=x onerror="alert(1)">', cell=Safe("<td>1</td>"))
        '<td>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</td><td>1</td>'
    """
    return Safe(
        template.format(
            **{
                name: value if isinstance(value, Safe) else html.escape(str(value), quote=True)
                for name, value in values.items()
            }
        )
    )


def joined(parts: Iterable[Safe]) -> Safe:
    return Safe("".join(parts))


def _agent(request: Request) -> str:
    """The logged-in user (the agent), or :class:`ui.auth.LoginRefused`."""
    client = request.client.host if request.client else "unknown"
    return request.app.state.login.check(request.headers.get("authorization"), client)


Agent = Annotated[str, Depends(_agent)]
Field = Annotated[str, Form()]


class FormError(Exception):
    """A form value the console cannot use (422): the field, the value and why."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(f"{field} = {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def build_console(service: AssistantService, settings: ServerSettings) -> FastAPI:
    """The console app for ``service``, with the login of ``settings`` (see the module docstring).

    Example:
        >>> app.mount("/console", build_console(service, settings.server))  # doctest: +SKIP
    """
    try:
        login = BasicLogin(
            settings.console_user, settings.console_password_hash, settings.console_failed_logins_per_minute
        )
    except PasswordHashError as error:
        raise PasswordHashError(
            f"[server] console_password_hash: {error}; make one with `concierge hash-password`"
        ) from None
    token_key = settings.console_password_hash.encode("utf-8")
    shop = service.engine.shop
    catalog = shop.catalog
    facets = {facet.name: facet for facet in shop.facets}
    settable = {name: facet.label for name, facet in facets.items()}
    if shop.vocabulary.has_prices:
        settable[PRICE] = "Price"
    clearable = {CATEGORY: "Category (every level)", **settable}
    if shop.policy.words is not None:
        clearable[WORDS] = "Title words picked"
    static = {name: (STATIC / name).read_bytes() for name in ("console.js", "console.css")}

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, dependencies=[Depends(_agent)])
    app.state.login = login

    @app.middleware("http")
    async def _secure(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(LoginRefused)
    async def _refused(request: Request, error: LoginRefused) -> Response:
        return PlainTextResponse(error.message, error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        return _error_page(request, error.status_code, str(error.detail), error.headers)

    @app.exception_handler(FormError)
    async def _form(request: Request, error: FormError) -> Response:
        message = fill(
            "The field <code>{field}</code> has the value <code>{value}</code>: {reason}. Nothing was changed.",
            field=error.field,
            value=error.value,
            reason=error.reason,
        )
        return _error_page(request, 422, message)

    @app.exception_handler(ActionFailed)
    async def _failed(request: Request, error: ActionFailed) -> Response:
        return _error_page(request, 503, f"{error}. Nothing was changed; send the form again.")

    def existing(session_id: str) -> SessionView:
        view = service.view(session_id) if _plausible(session_id) else None
        if view is None:
            raise HTTPException(404, f"There is no session {session_id!r} (it may have expired).")
        return view

    def token(user: str, session_id: str) -> str:
        message = f"{user}\0{session_id}".encode()
        return hmac.new(token_key, message, hashlib.sha256).hexdigest()

    def check_form(session_id: str, user: str, csrf: str) -> None:
        """Refuse a form for a session that does not exist (404), or without the right token (403)."""
        existing(session_id)
        if not hmac.compare_digest(csrf.encode("utf-8"), token(user, session_id).encode("utf-8")):
            raise HTTPException(
                403,
                "This form was not sent from the console's page (its token is missing or wrong). "
                "Reload the session page and send it again. Nothing was changed.",
            )

    def back(request: Request, session_id: str) -> RedirectResponse:
        return RedirectResponse(f"{_root(request)}/sessions/{quote(session_id, safe='')}", status_code=303)

    # --- pages ---------------------------------------------------------------------------------------------

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            raise HTTPException(404, f"No file {name!r}.")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(static[name], media_type=f"{kind}; charset=utf-8")

    @app.get("/", response_class=HTMLResponse)
    def sessions_page(request: Request, user: Agent) -> HTMLResponse:
        root = _root(request)
        body = fill(
            '<h1>Sessions</h1><p class="note">The latest {count} sessions, refreshed every few seconds.</p>'
            '<div data-live="{root}/list">{table}</div>',
            count=LISTED_SESSIONS,
            root=root,
            table=sessions_table(root),
        )
        return _page(request, user, "Sessions", body)

    @app.get("/list", response_class=HTMLResponse)
    def sessions_fragment(request: Request) -> HTMLResponse:
        return HTMLResponse(sessions_table(_root(request)))

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(request: Request, session_id: str, user: Agent) -> HTMLResponse:
        view = existing(session_id)
        root = _root(request)
        path = f"{root}/sessions/{quote(session_id, safe='')}"
        body = fill(
            '<p><a href="{root}/">&larr; All sessions</a></p><h1>Session <code>{session_id}</code></h1>'
            '{actions}<div class="live" data-live="{path}/live">{live}</div>',
            root=root,
            session_id=session_id,
            actions=actions(view, root, path, token(user, session_id)),
            path=path,
            live=live_part(view),
        )
        return _page(request, user, f"Session {session_id}", body)

    @app.get("/sessions/{session_id}/live", response_class=HTMLResponse)
    def session_fragment(session_id: str) -> HTMLResponse:
        return HTMLResponse(live_part(existing(session_id)))

    @app.get("/items", response_class=HTMLResponse)
    def items(q: str = "") -> HTMLResponse:
        wanted = q.strip().casefold()
        found = (
            [item for item in catalog if wanted in item.title.casefold() or wanted == item.item_id.casefold()]
            if wanted
            else []
        )
        return HTMLResponse(
            joined(
                fill('<option value="{id}">{title}</option>', id=item.item_id, title=item.title)
                for item in found[:SEARCH_RESULTS]
            )
        )

    # --- actions (each one save: see AssistantService._agent_turn) ------------------------------------------

    @app.post("/sessions/{session_id}/take-over")
    def take_over(request: Request, session_id: str, user: Agent, csrf: Field = "") -> Response:
        check_form(session_id, user, csrf)
        service.take_over(session_id, user)
        return back(request, session_id)

    @app.post("/sessions/{session_id}/hand-back")
    def hand_back(request: Request, session_id: str, user: Agent, csrf: Field = "") -> Response:
        check_form(session_id, user, csrf)
        service.hand_back(session_id, user)
        return back(request, session_id)

    @app.post("/sessions/{session_id}/say")
    def say(request: Request, session_id: str, user: Agent, csrf: Field = "", text: Field = "") -> Response:
        check_form(session_id, user, csrf)
        if not text.strip():
            raise FormError("text", text, "a message needs some text")
        if len(text) > settings.max_message_chars:
            raise FormError(
                "text", _shortened(text), f"longer than {settings.max_message_chars:,} characters"
            )
        service.agent_say(session_id, user, text.strip())
        return back(request, session_id)

    @app.post("/sessions/{session_id}/push")
    def push(
        request: Request, session_id: str, user: Agent, csrf: Field = "", item_id: Field = ""
    ) -> Response:
        check_form(session_id, user, csrf)
        if item_id.strip() not in catalog:
            raise FormError("item_id", item_id, "no item with that id in the catalog")
        service.agent_push(session_id, user, item_id.strip())
        return back(request, session_id)

    @app.post("/sessions/{session_id}/slot")
    def set_slot(
        request: Request,
        session_id: str,
        user: Agent,
        csrf: Field = "",
        facet: Field = "",
        op: Field = "",
        value: Field = "",
    ) -> Response:
        check_form(session_id, user, csrf)
        service.agent_edit(session_id, user, constraint_of(facet, op, value))
        return back(request, session_id)

    @app.post("/sessions/{session_id}/clear")
    def clear_slot(
        request: Request, session_id: str, user: Agent, csrf: Field = "", facet: Field = ""
    ) -> Response:
        check_form(session_id, user, csrf)
        if facet not in clearable:
            raise FormError("facet", facet, f"not a facet of this catalog; one of {', '.join(clearable)}")
        service.agent_edit(session_id, user, None, facet)
        return back(request, session_id)

    # --- what the pages are made of ------------------------------------------------------------------------

    def constraint_of(facet: str, op: str, value: str) -> Constraint:
        """The constraint of the slot form's values (a value by its key or its label)."""
        if facet not in settable:
            raise FormError("facet", facet, f"not a facet of this catalog; one of {', '.join(settable)}")
        try:
            operator = Op(op)
        except ValueError:
            raise FormError("op", op, f"not an operator; one of {', '.join(o.value for o in Op)}") from None
        value = value.strip()
        if not value:
            raise FormError("value", value, "a wish needs a value")
        if facet == PRICE:
            if operator not in (Op.LT, Op.GT, Op.BETWEEN):
                raise FormError("op", op, "a price takes <, > or between")
            amounts = _amounts(value, operator)
            try:
                return Constraint(PRICE, operator, amounts)
            except ValueError as error:
                raise FormError("value", value, str(error)) from None
        if operator not in (Op.EQ, Op.NE):
            raise FormError("op", op, f"{facet} takes = or !=; only the price compares amounts")
        return Constraint(facet, operator, _value_key(facets[facet], value))

    def sessions_table(root: str) -> Safe:
        rows = []
        for session_id, updated in service.store.sessions()[:LISTED_SESSIONS]:
            try:
                view = service.view(session_id)
            except ValueError:
                rows.append(_session_row(root, session_id, updated, None))
                continue
            if view is not None:
                rows.append(_session_row(root, session_id, updated, view))
        if not rows:
            return Safe('<p class="note">No sessions yet.</p>')
        return fill(
            "<table><thead><tr><th>Session</th><th>Updated</th><th>Turns</th><th>Last shopper message</th>"
            "<th>Handover</th></tr></thead><tbody>{rows}</tbody></table>",
            rows=joined(rows),
        )

    def live_part(view: SessionView) -> Safe:
        return fill(
            '<section><h2>Summary</h2><pre class="summary">{summary}</pre></section>'
            "<section><h2>Transcript</h2>{transcript}</section>"
            "<section><h2>Interest profile</h2>{profile}</section>"
            "<section><h2>Current picks</h2>{picks}</section>"
            "<section><h2>Events</h2>{events}</section>",
            summary=service.summary(view.session_id),
            transcript=_transcript(view.transcript),
            profile=profile_part(view.conversation.profile),
            picks=_picks(view.conversation.slate),
            events=_events(view.events),
        )

    def title_of(item_id: str) -> str:
        return catalog[item_id].title if item_id in catalog else item_id

    def profile_part(profile: InterestProfile) -> Safe:
        slots = joined(
            fill(
                "<tr><td>{facet}</td><td>{label}</td><td>{op}</td><td>{value}</td><td>{said}</td><td>{turn}</td></tr>",
                facet=slot.facet,
                label=clearable.get(slot.facet, ""),
                op=slot.constraint.op.value,
                value=_value_text(slot.constraint.value),
                said=slot.said,
                turn=slot.turn,
            )
            for slot in profile.slots
        )
        slots_table = (
            fill(
                "<table><thead><tr><th>Facet</th><th>Label</th><th>Operator</th><th>Value</th>"
                "<th>Set by (the words said)</th><th>Turn</th></tr></thead><tbody>{slots}</tbody></table>",
                slots=slots,
            )
            if profile.slots
            else Safe('<p class="note">No wishes yet.</p>')
        )
        return fill(
            '{slots}<dl><dt>Need</dt><dd class="need">{need}</dd><dt>Liked</dt><dd>{liked}</dd>'
            "<dt>Disliked</dt><dd>{disliked}</dd><dt>Shown</dt><dd>{shown} items</dd></dl>",
            slots=slots_table,
            need=profile.need or NONE_MARK,
            liked=_titles([title_of(i) for i in profile.liked]),
            disliked=_titles([title_of(i) for i in profile.disliked]),
            shown=len(profile.shown),
        )

    def taken_by(view: SessionView) -> str | None:
        """The agent who has the conversation now (took it over and has not handed it back), ``None`` when none;
        a shopper who asked for a person waits with no one yet."""
        agent = None
        for event in view.events:
            if event.get("what") == "took over":
                agent = str(event.get("agent", ""))
            elif event.get("what") == "handed back":
                agent = None
        return agent

    def actions(view: SessionView, root: str, path: str, csrf: str) -> Safe:
        hidden = fill('<input type="hidden" name="csrf" value="{csrf}">', csrf=csrf)
        handover = (
            fill(
                '<form method="post" action="{path}/hand-back">{hidden}'
                "<button>Hand back to the assistant</button></form>",
                path=path,
                hidden=hidden,
            )
            if taken_by(view) is not None
            else fill(
                '<form method="post" action="{path}/take-over">{hidden}'
                "<button>Take over the conversation</button></form>",
                path=path,
                hidden=hidden,
            )
        )
        return fill(
            '<section class="actions"><h2>Actions</h2><p class="status">{status}</p>{handover}'
            '<form method="post" action="{path}/say">{hidden}<label>Write to the shopper'
            '<textarea name="text" rows="3" maxlength="{max_chars}" required></textarea></label>'
            "<button>Send</button></form>"
            '<form method="post" action="{path}/push">{hidden}<label>Push a product (its id, or type part of a'
            ' title)<input name="item_id" list="console-items" data-search="{root}/items" autocomplete="off"'
            ' required></label><datalist id="console-items"></datalist><button>Push</button></form>'
            '<form method="post" action="{path}/slot">{hidden}<label>Facet<select name="facet">{settable}</select>'
            '</label><label>Operator<select name="op">{ops}</select></label><label>Value (a key or a label; for'
            ' a price 25, or 10-25 with between)<input name="value" required></label>'
            "<button>Set the wish</button></form>"
            '<form method="post" action="{path}/clear">{hidden}<label>Facet<select name="facet">{clearable}'
            "</select></label><button>Clear the wishes about it</button></form></section>",
            status=_status(view),
            handover=handover,
            path=path,
            hidden=hidden,
            max_chars=settings.max_message_chars,
            root=root,
            settable=_options(settable),
            ops=_options({o.value: o.value for o in Op}),
            clearable=_options(clearable),
        )

    return app


# --- helpers that need nothing of the app ------------------------------------------------------------------


def _root(request: Request) -> str:
    """Where the console is mounted (``/console``): its links and forms start there."""
    return request.scope.get("root_path", "").rstrip("/")


def _page(request: Request, user: str, title: str, body: Safe) -> HTMLResponse:
    root = _root(request)
    return HTMLResponse(
        fill(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - Concierge console</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="{root}/static/console.css">'
            '<script src="{root}/static/console.js" defer></script></head><body>'
            '<header><a href="{root}/">Concierge console</a><span class="user">{user}</span></header>'
            "<main>{body}</main></body></html>",
            title=title,
            root=root,
            user=user,
            body=body,
        )
    )


def _error_page(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    root = _root(request)
    return HTMLResponse(
        fill(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} - Concierge console'
            '</title><link rel="stylesheet" href="{root}/static/console.css"></head><body><main>'
            '<h1>{status}</h1><p class="error">{message}</p><p><a href="{root}/">All sessions</a></p>'
            "</main></body></html>",
            status=status,
            root=root,
            message=message,
        ),
        status_code=status,
        headers=headers,
    )


def _plausible(session_id: str) -> bool:
    return bool(session_id.strip()) and len(session_id) <= MAX_SESSION_ID


def _session_row(root: str, session_id: str, updated: float, view: SessionView | None) -> Safe:
    if view is None:
        turns, last, status = "", "", "state unreadable"
    else:
        said = [text for role, text in view.transcript if role == "shopper"]
        turns, last, status = view.conversation.turn, _shortened(said[-1]) if said else "", _status(view)
    return fill(
        '<tr><td><a href="{root}/sessions/{link}"><code>{session_id}</code></a></td><td>{updated}</td>'
        '<td>{turns}</td><td class="message">{last}</td><td>{status}</td></tr>',
        root=root,
        link=quote(session_id, safe=""),
        session_id=session_id,
        updated=_time(updated),
        turns=turns,
        last=last,
        status=status,
    )


def _status(view: SessionView) -> str:
    """Who has the conversation: the assistant, nobody yet (a person was asked for), or an agent."""
    if not view.conversation.handover:
        return "assistant"
    status = "asks for a person"
    for event in view.events:
        if event.get("what") == "took over":
            status = f"with {event.get('agent', 'an agent')}"
        elif event.get("what") == "handover requested":
            status = "asks for a person"
    return status


def _transcript(lines: Iterable[tuple[str, str]]) -> Safe:
    items = [
        fill(
            '<li class="{css}"><span class="role">{role}</span> {text}</li>',
            css=f"role-{role}" if role in ROLES else "role-other",
            role=ROLES.get(role, role),
            text=text,
        )
        for role, text in lines
    ]
    return (
        fill('<ol class="transcript">{items}</ol>', items=joined(items)) if items else Safe("<p>Empty.</p>")
    )


def _picks(slate: Iterable[Card]) -> Safe:
    rows = [
        fill(
            "<tr><td>{number}</td><td>{title}<br><code>{item_id}</code></td><td>{brand}</td><td>{category}</td>"
            '<td>{price}</td><td class="score">{retrieval}</td><td class="score">{cross_encoder}</td>'
            '<td class="score">{prior}</td><td class="score">{final}</td><td>{why}{generated}</td></tr>',
            number=number,
            title=card.title,
            item_id=card.item_id,
            brand=card.brand or NONE_MARK,
            category=card.category or NONE_MARK,
            price=card.price or NONE_MARK,
            retrieval=_score(card.parts.retrieval),
            cross_encoder=_score(card.parts.cross_encoder),
            prior=_score(card.parts.prior),
            final=_score(card.parts.final),
            why=card.explanation.text,
            generated=Safe(
                ' <span class="generated">quotes a generated description, not the seller\'s</span>'
            )
            if card.explanation.generated
            else Safe(""),
        )
        for number, card in enumerate(slate, start=1)
    ]
    if not rows:
        return Safe('<p class="note">Nothing on screen.</p>')
    return fill(
        "<table><thead><tr><th>#</th><th>Item</th><th>Brand</th><th>Category</th><th>Price</th>"
        "<th>Retrieval</th><th>Cross-encoder</th><th>MF prior</th><th>Final</th><th>Explanation</th></tr>"
        "</thead><tbody>{rows}</tbody></table>",
        rows=joined(rows),
    )


def _events(events: Iterable[dict[str, object]]) -> Safe:
    rows = [
        fill(
            "<tr><td>{at}</td><td>{agent}</td><td>{what}</td></tr>",
            at=_time(event["at"]) if isinstance(event.get("at"), int | float) else NONE_MARK,
            agent=event.get("agent", NONE_MARK),
            what=event.get("what", ""),
        )
        for event in events
    ]
    if not rows:
        return Safe('<p class="note">No events yet.</p>')
    return fill(
        "<table><thead><tr><th>When</th><th>Agent</th><th>What</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=joined(rows),
    )


def _titles(titles: list[str]) -> Safe:
    if not titles:
        return Safe(NONE_MARK)
    return fill("<ul>{items}</ul>", items=joined(fill("<li>{t}</li>", t=t) for t in titles))


def _options(choices: dict[str, str]) -> Safe:
    return joined(
        fill('<option value="{value}">{label}</option>', value=value, label=f"{label} ({value})")
        if label != value
        else fill('<option value="{value}">{value}</option>', value=value)
        for value, label in choices.items()
    )


def _score(value: float | None) -> str:
    return NONE_MARK if value is None else f"{value:.3f}"


def _value_text(value: object) -> str:
    if isinstance(value, tuple):
        return " to ".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _shortened(text: str) -> str:
    return (
        text
        if len(text) <= SHORT_MESSAGE_CHARS
        else f"{text[: SHORT_MESSAGE_CHARS - 1]}\N{HORIZONTAL ELLIPSIS}"
    )


def _amounts(value: str, op: Op) -> float | tuple[float, float]:
    """The amount (``25``, ``$25``) or, for ``between``, the two (``10-25``, ``10 to 25``) of a price value."""
    parts = value.replace(" to ", "-").split("-") if op is Op.BETWEEN else [value]
    try:
        amounts = [float(part.strip().lstrip("$").replace(",", "")) for part in parts]
    except ValueError:
        amounts = []
    if len(amounts) != (2 if op is Op.BETWEEN else 1):
        example = "two amounts like 10-25" if op is Op.BETWEEN else "an amount like 25"
        raise FormError("value", value, f"not a price; write {example}")
    return (amounts[0], amounts[1]) if op is Op.BETWEEN else amounts[0]


def _value_key(facet: Facet, value: str) -> str:
    """The key of a facet value given by its key or by its label (unique among the facet's labels)."""
    if facet.code(value) >= 0:
        return value
    named = [v.key for v in facet.values if v.label.casefold() == value.casefold()]
    if len(named) == 1:
        return named[0]
    if named:
        raise FormError(
            "value", value, f"names several {facet.name} values; give one's key: {', '.join(named)}"
        )
    raise FormError("value", value, f"not a value of {facet.name}")
