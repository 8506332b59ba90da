"""The customer-service console (ui/console.py) served by a real uvicorn on 127.0.0.1 inside `concierge serve`'s
app (mounted at /console), driven by httpx; and its login (ui/auth.py)."""

import html
import re
from dataclasses import replace

import httpx
import pytest

from assistant.engine import Conversation
from assistant.profile import InterestProfile
from assistant.service import WAITING_TEXT
from assistant.sessions import SessionRecord
from data.settings import ServerSettings
from ranking.system import ScoreParts
from tests.assistant_fixtures import small_assistant, small_catalog
from tests.servers import free_port
from tests.test_api import running
from ui.auth import (
    BasicLogin,
    LoginRefused,
    PasswordHashError,
    hash_password,
    parse_password_hash,
    verify_password,
)

USER = "maria"
PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)
XSS = "<script>alert(1)</script> and <img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """The service and an httpx client logged in to the console of a served `build_server_app`."""
    from ui.serve import build_server_app

    service = small_assistant(tmp_path_factory.mktemp("console"), catalog=small_catalog(prices=True)).service
    port = free_port()
    settings = ServerSettings(
        host="127.0.0.1",
        port=port,
        console_user=USER,
        console_password_hash=HASH,
        console_failed_logins_per_minute=1000,
    )
    with (
        running(build_server_app(service, settings), port) as url,
        httpx.Client(base_url=f"{url}/console", auth=(USER, PASSWORD), timeout=60) as client,
    ):
        yield service, client


@pytest.fixture
def alone(tmp_path):
    """A console app alone (no chat, no API) with the given settings, served; yields its URL."""
    from ui.console import build_console

    service = small_assistant(tmp_path).service

    def serve(**settings):
        return running(build_console(service, ServerSettings(**settings)), free_port())

    return serve


def token(client: httpx.Client, session_id: str) -> str:
    page = client.get(f"/sessions/{session_id}")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)


def post(client: httpx.Client, session_id: str, action: str, **form: str) -> httpx.Response:
    form.setdefault("csrf", token(client, session_id))
    return client.post(f"/sessions/{session_id}/{action}", data=form, follow_redirects=True)


def row(page: str, session_id: str) -> str:
    """The list's row of a session."""
    found = re.search(rf'<tr><td><a href="/console/sessions/{re.escape(session_id)}">.*?</tr>', page)
    assert found, f"no row for {session_id}"
    return found.group(0)


def cells(fragment: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", fragment)


# --- the login ---------------------------------------------------------------------------------------------


def test_without_the_login_the_console_is_401_with_a_basic_challenge(console):
    _, client = console
    for auth in (None, (USER, "wrong password"), ("mario", PASSWORD), (USER, "")):
        for path in ("/", "/sessions/any", "/static/console.js"):
            response = client.get(path, auth=auth)
            assert response.status_code == 401, (auth, path)
            assert response.headers["www-authenticate"] == 'Basic realm="Concierge console"'
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == (
        "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'"
    )
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    script = client.get("/static/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-live" in script.text


def test_repeated_failed_logins_from_one_address_are_429_even_with_the_right_password(alone):
    with alone(console_user=USER, console_password_hash=HASH, console_failed_logins_per_minute=3) as url:
        statuses = [httpx.get(f"{url}/", auth=(USER, f"guess {n}")).status_code for n in range(4)]
        assert statuses == [401, 401, 401, 429]
        refused = httpx.get(f"{url}/", auth=(USER, PASSWORD))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 20


@pytest.mark.parametrize("login", [{}, {"console_user": USER}, {"console_password_hash": HASH}])
def test_without_a_configured_login_the_console_is_off_and_says_how_to_turn_it_on(alone, login):
    with alone(**login) as url:
        response = httpx.get(f"{url}/", auth=(USER, PASSWORD))
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/plain")
        assert "console_password_hash" in response.text and "concierge hash-password" in response.text


# --- the pages ---------------------------------------------------------------------------------------------


def test_the_list_shows_the_sessions_latest_first_with_turns_last_message_and_handover(console):
    service, client = console
    service.send("list-a", "i need ink")
    service.send("list-a", "HP")
    service.send("list-b", "talk to a person")
    for fragment in (client.get("/").text, client.get("/list").text):
        first, second = row(fragment, "list-b"), row(fragment, "list-a")
        assert fragment.index(first) < fragment.index(second)
        assert cells(first)[2:] == ["1", "talk to a person", "asks for a person"]
        assert cells(second)[2:] == ["2", "HP", "assistant"]
        assert fragment.count("<tr") == 1 + len(service.store.sessions())  # a header row and one per session
    assert 'data-live="/console/list"' in client.get("/").text


def test_the_session_page_shows_transcript_profile_picks_with_score_parts_and_summary(console):
    service, client = console
    service.send("page", "i need black ink")
    service.send("page", "HP")
    view = service.view("page")
    for text in (client.get("/sessions/page").text, client.get("/sessions/page/live").text):
        transcript = re.findall(r'<li class="role-(\w+)"><span class="role">\w+</span> (.*?)</li>', text)
        assert transcript == [(role, html.escape(line)) for role, line in view.transcript]
        slots = re.findall(r"<tr><td>(category_2|brand)</td><td>[^<]*</td>" + "<td>(.*?)</td>" * 4, text)
        assert slots == [
            ("category_2", "=", "Office Electronics &gt; Ink", "ink", "1"),
            ("brand", "=", "hp", "quick reply", "2"),
        ]
        assert '<dd class="need">black</dd>' in text
        for number, card in enumerate(view.conversation.slate, start=1):
            picked = re.search(rf"<tr><td>{number}</td><td>{re.escape(card.title)}<br><code>(.*?)</tr>", text)
            assert cells(picked.group(0))[5:9] == [
                "\N{EM DASH}",
                "\N{EM DASH}",
                "\N{EM DASH}",
                f"{card.parts.final:.3f}",
            ]
            assert html.escape(card.explanation.text) in picked.group(0)
        assert f'<pre class="summary">{html.escape(service.summary("page"))}</pre>' in text


def test_every_score_part_is_shown_as_a_number_or_a_dash_and_generated_text_is_marked(console):
    service, client = console
    card = service.engine.card("ink-hp", InterestProfile())
    card = replace(
        card,
        parts=ScoreParts(retrieval=0.5, cross_encoder=0.25, prior=None, final=0.4),
        explanation=replace(card.explanation, generated=True),
    )
    state = Conversation(on_screen=("ink-hp",), slate=(card,)).to_dict()
    service.store.save(SessionRecord("planted", state), expected_version=0)
    picked = re.search(r"<tr><td>1</td>.*?</tr>", client.get("/sessions/planted/live").text).group(0)
    assert cells(picked)[5:9] == ["0.500", "0.250", "\N{EM DASH}", "0.400"]
    assert "generated description, not the seller" in picked


def test_the_item_search_offers_titles_that_hold_the_words(console):
    _, client = console
    options = client.get("/items", params={"q": "canon pg"}).text
    assert options == (
        '<option value="ink-canon">Canon PG-245 Black Ink</option>'
        '<option value="ink-canon-xl">Canon PG-245 XL Black Ink</option>'
    )
    assert client.get("/items", params={"q": ""}).text == ""


# --- the actions -------------------------------------------------------------------------------------------


def test_an_agent_takes_over_writes_pushes_edits_and_hands_back_through_the_forms(console):
    service, client = console
    service.send("flow", "i need ink")
    taken = post(client, "flow", "take-over")
    assert taken.status_code == 200 and taken.url.path == "/console/sessions/flow"
    assert taken.history[0].status_code == 303
    assert "maria from our team has joined the conversation." in taken.text
    waiting = service.send("flow", "hello? anyone?")
    assert waiting.handover and waiting.text == WAITING_TEXT
    assert post(client, "flow", "say", text="The Canon XL lasts longest.").status_code == 200
    assert post(client, "flow", "push", item_id="ink-canon-xl").status_code == 200
    state = service.view("flow").conversation
    assert state.slate[-1].item_id == "ink-canon-xl" and state.on_screen[-1] == "ink-canon-xl"
    assert state.slate[-1].explanation.text.startswith("Recommended by maria from our team.")
    assert post(client, "flow", "slot", facet="brand", op="=", value="Canon").status_code == 200
    assert post(client, "flow", "slot", facet="price", op="<", value="$30").status_code == 200
    slots = service.view("flow").conversation.profile.slots
    assert [(s.facet, s.constraint.op.value, s.constraint.value, s.said) for s in slots[1:]] == [
        ("brand", "=", "canon", "agent maria"),
        ("price", "<", 30.0, "agent maria"),
    ]
    assert post(client, "flow", "clear", facet="brand").status_code == 200
    assert [s.facet for s in service.view("flow").conversation.profile.slots] == ["category_2", "price"]
    handed = post(client, "flow", "hand-back")
    assert "maria has handed you back to the assistant." in handed.text
    answered = service.send("flow", "show me products")
    # The assistant answers again: the inks under $30 of any brand, the pushed one (shown, and $31) left out.
    assert not answered.handover
    assert [card.item_id for card in answered.cards] == ["ink-hp", "ink-hp-color", "ink-canon", "ink-epson"]
    view = service.view("flow")
    assert view.transcript[2:8] == (
        ("agent", "maria from our team has joined the conversation."),
        ("shopper", "hello? anyone?"),
        ("agent", "The Canon XL lasts longest."),
        ("agent", "maria recommends Canon PG-245 XL Black Ink."),
        ("agent", "maria has handed you back to the assistant."),
        ("shopper", "show me products"),
    )
    assert [(event["agent"], event["what"]) for event in view.events] == [
        ("maria", "took over"),
        ("maria", "wrote"),
        ("maria", "pushed ink-canon-xl"),
        ("maria", "set brand = canon"),
        ("maria", "set price < 30.0"),
        ("maria", "cleared brand"),
        ("maria", "handed back"),
    ]


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "other session"])
def test_a_post_without_the_right_token_is_403_and_changes_nothing(console, csrf):
    service, client = console
    service.send("guarded", "i need ink")
    before = service.view("guarded")
    form = {"text": "hello"} if csrf is None else {"text": "hello", "csrf": csrf}
    if csrf == "other session":
        service.send("guarded-other", "i need ink")
        form["csrf"] = token(client, "guarded-other")
    for action in ("say", "take-over"):
        refused = client.post(f"/sessions/guarded/{action}", data=form)
        assert refused.status_code == 403
        assert "token" in refused.text
    assert service.view("guarded").version == before.version


def test_what_shoppers_agents_and_session_ids_hold_is_escaped_on_every_page(console):
    service, client = console
    for session_id in ("xss", 'x"<b>id'):
        service.send(session_id, XSS)
    assert post(client, "xss", "say", text="<b>bold</b> reply").status_code == 200
    pages = [
        client.get("/").text,
        client.get("/list").text,
        client.get("/sessions/xss").text,
        client.get("/sessions/xss/live").text,
        client.get("/sessions/x%22%3Cb%3Eid").text,
    ]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>" not in page
    assert html.escape(XSS) in pages[0] and html.escape(XSS) in pages[2] and html.escape(XSS) in pages[3]
    assert "&lt;b&gt;bold&lt;/b&gt; reply" in pages[3]
    assert '<a href="/console/sessions/x%22%3Cb%3Eid"><code>x&quot;&lt;b&gt;id</code></a>' in pages[0]


def test_an_unknown_session_is_404_and_is_not_created(console):
    service, client = console
    for response in (
        client.get("/sessions/nobody"),
        client.get("/sessions/nobody/live"),
        client.post("/sessions/nobody/say", data={"text": "hi", "csrf": "x"}),
    ):
        assert response.status_code == 404
        assert "There is no session &#x27;nobody&#x27;" in response.text
    assert service.view("nobody") is None


@pytest.mark.parametrize(
    ("action", "form", "named"),
    [
        ("say", {"text": "   "}, ("text", "   ")),
        ("push", {"item_id": "no-such-item"}, ("item_id", "no-such-item")),
        ("slot", {"facet": "colour", "op": "=", "value": "red"}, ("facet", "colour")),
        ("slot", {"facet": "brand", "op": "~", "value": "hp"}, ("op", "~")),
        ("slot", {"facet": "brand", "op": "=", "value": "Nokia"}, ("value", "Nokia")),
        ("slot", {"facet": "brand", "op": "<", "value": "hp"}, ("op", "&lt;")),
        ("slot", {"facet": "price", "op": "<", "value": "cheap"}, ("value", "cheap")),
        ("slot", {"facet": "price", "op": "between", "value": "30-10"}, ("value", "30-10")),
        ("clear", {"facet": "colour"}, ("facet", "colour")),
    ],
)
def test_a_bad_form_value_is_422_naming_the_field_and_value_and_changes_nothing(console, action, form, named):
    service, client = console
    service.send("forms", "i need ink")
    before = service.view("forms")
    refused = post(client, "forms", action, **form)
    assert refused.status_code == 422
    field, value = named
    assert f"The field <code>{field}</code> has the value <code>{value}</code>" in refused.text
    assert "Nothing was changed." in refused.text
    after = service.view("forms")
    assert (after.version, after.transcript, after.events) == (
        before.version,
        before.transcript,
        before.events,
    )


def test_an_agent_action_that_cannot_be_saved_raises_instead_of_passing_for_done(tmp_path):
    from assistant.service import ActionFailed
    from assistant.sessions import MemoryStore, SessionConflict

    class ChangingUnderAgents(MemoryStore):
        """Another process saves the session whenever an agent's action would."""

        def save(self, record, expected_version):
            if record.events:
                raise SessionConflict("changed meanwhile")
            return super().save(record, expected_version)

    service = small_assistant(tmp_path, store=ChangingUnderAgents()).service
    service.send("s", "i need ink")
    before = service.view("s")
    with pytest.raises(ActionFailed, match="kept changing"):
        service.take_over("s", USER)
    assert service.view("s") == before


# --- ui/auth.py --------------------------------------------------------------------------------------------


def test_a_password_hash_round_trips_and_only_the_right_password_matches():
    hashed = hash_password("s3cret password", n=2**10)
    parsed = parse_password_hash(hashed)
    assert hashed.startswith("scrypt$1024$8$1$") and str(parsed) == hashed
    assert (len(parsed.salt), len(parsed.key)) == (16, 32)
    assert verify_password("s3cret password", hashed)
    assert not verify_password("s3cret passwore", hashed)
    assert not verify_password("", hashed)
    assert hash_password("s3cret password", n=2**10) != hashed  # a fresh salt each time
    with pytest.raises(ValueError, match="at least 8 characters"):
        hash_password("short")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hunter2", "not a password hash: expected scrypt$N$r$p$<salt base64>$<hash base64>, got 1 part"),
        ("bcrypt$1024$8$1$c2FsdA==$" + "A" * 44, "the scheme is 'bcrypt'"),
        ("scrypt$many$8$1$c2FsdA==$" + "A" * 44, "N, r and p must be whole numbers"),
        ("scrypt$1000$8$1$c2FsdA==$" + "A" * 44, "N a power of two above 1"),
        ("scrypt$1048576$8$1$c2FsdA==$" + "A" * 44, "needs more than 256 MiB a check"),
        ("scrypt$1024$8$1$not base64!$" + "A" * 44, "standard base64"),
        ("scrypt$1024$8$1$$" + "A" * 44, "the salt is empty"),
    ],
)
def test_a_malformed_password_hash_says_which_part_is_wrong(text, message):
    with pytest.raises(PasswordHashError) as caught:
        parse_password_hash(text)
    assert message in str(caught.value)


def test_the_login_blocks_an_address_over_the_failure_limit_until_its_bucket_refills():
    import base64

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    now = [0.0]
    login = BasicLogin(USER, HASH, failures_per_minute=2, clock=lambda: now[0])
    assert login.check(header(USER, PASSWORD), "10.0.0.1") == USER

    def status(authorization, client="10.0.0.1") -> int:
        try:
            login.check(authorization, client)
        except LoginRefused as refused:
            return refused.status
        return 200

    assert [status(header(USER, "nope")) for _ in range(3)] == [401, 401, 429]
    assert status(header(USER, PASSWORD)) == 429
    assert status(header(USER, PASSWORD), "10.0.0.2") == 200  # another address is not blocked
    assert status(None, "10.0.0.2") == 401 and status("Bearer x", "10.0.0.2") == 401
    now[0] = 31.0  # one failure a 30 s comes back
    assert status(header(USER, PASSWORD)) == 200
    assert [status(header(USER, "nope")) for _ in range(2)] == [401, 429]


def test_an_agent_clears_the_title_words_a_shopper_picked(tmp_path):
    from tests.test_title_words import kitchen
    from ui.console import build_console

    service = small_assistant(tmp_path, catalog=kitchen()).service
    assert service.send("k", "i need a kettle").question.facet == "words"
    service.send("k", "Stovetop")
    assert [s.facet for s in service.view("k").conversation.profile.slots] == ["category_2", "words"]
    settings = ServerSettings(
        console_user=USER, console_password_hash=HASH, console_failed_logins_per_minute=1000
    )
    with (
        running(build_console(service, settings), free_port()) as url,
        httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=60) as client,
    ):
        page = client.get("/sessions/k")
        assert '<option value="words">Title words picked (words)</option>' in page.text
        assert post(client, "k", "clear", facet="words").status_code == 200
    profile = service.view("k").conversation.profile
    assert [s.facet for s in profile.slots] == ["category_2"] and profile.is_answered("words")
