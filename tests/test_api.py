"""The JSON HTTP API (ui/api.py) served by a real uvicorn on 127.0.0.1, driven by httpx; and `concierge serve`'s
one process serving the chat and the API (ui/serve.py)."""

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from data.settings import ServerSettings
from tests.assistant_fixtures import small_assistant
from tests.servers import free_port

SECRET = "a key the test server signs session tokens with"
GOOD = "An HP ink for Deskjet printers, chosen by 8 shoppers here."
INVENTED = "Now 50% off, the best ink ever."


@contextlib.contextmanager
def running(app, port: int):
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread, until the block ends."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with running_server(server):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_server(server):
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def served_api(folder, **limits):
    from ui.api import build_api

    service = small_assistant(folder).service
    settings = ServerSettings(session_secret=SECRET, **limits)
    return service, build_api(service, settings)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    service, app = served_api(
        tmp_path_factory.mktemp("api"),
        max_message_chars=200,
        requests_per_minute_per_session=10_000,
        requests_per_minute_per_client=100_000,
    )
    with (
        running(app, free_port()) as url,
        httpx.Client(base_url=url, timeout=60, auth=SessionTokens()) as client,
    ):
        yield service, client


class SessionTokens(httpx.Auth):
    """What an API client does with session tokens: keeps the token each ``POST /v1/sessions`` gives, and sends it
    with every later request on that session."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request):
        parts = request.url.path.split("/")
        if len(parts) >= 4 and parts[1:3] == ["v1", "sessions"] and parts[3] in self.tokens:
            request.headers["Authorization"] = f"Bearer {self.tokens[parts[3]]}"
        response = yield request
        if request.method == "POST" and request.url.path == "/v1/sessions" and response.status_code == 201:
            response.read()
            created = response.json()
            self.tokens[created["session_id"]] = created["token"]


def create(client: httpx.Client, session_id: str) -> dict:
    response = client.post("/v1/sessions", json={"session_id": session_id})
    assert response.status_code == 201, response.text
    return response.json()


def stored(service, session_id: str):
    """What the store holds for a session: (version, transcript), or None."""
    view = service.view(session_id)
    return None if view is None else (view.version, view.transcript)


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    """Server-sent events as (event name, JSON data), in order."""
    out, name, data = [], "", []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif not line and name:
            out.append((name, json.loads("\n".join(data))))
            name, data = "", []
    return out


def test_a_conversation_over_http(api):
    service, client = api
    greeting = create(client, "s-1")
    assert greeting["session_id"] == "s-1"
    assert greeting["reply"]["question"]["facet"] == "category_1"
    assert greeting["reply"]["options"] == ["Office Electronics", "Office Supplies", "No preference"]

    asked = client.post("/v1/sessions/s-1/messages", json={"text": "i need ink"}).json()
    assert asked["text"] == "Any brand you prefer?"
    assert asked["question"] == {
        "facet": "brand",
        "text": "Any brand you prefer?",
        "options": ["HP", "Canon", "Epson"],
    }
    assert asked["options"] == ["HP", "Canon", "Epson", "No preference"]
    assert asked["cards"] == []

    # A quick reply is sent back as its label.
    shown = client.post("/v1/sessions/s-1/messages", json={"text": "HP"}).json()
    assert [card["item_id"] for card in shown["cards"]] == ["ink-hp", "ink-hp-color"]
    card = shown["cards"][0]
    assert card["title"] == "HP 61 Black Ink Cartridge"
    assert (card["brand"], card["category"], card["price"], card["image_url"]) == ("HP", "Ink", "", "")
    assert card["explanation"] == (
        "Ink by HP. It matches your choice of Ink and HP. Chosen by 8 shoppers in this store's history."
    )
    assert card["generated_description"] is False
    assert set(card["parts"]) == {"retrieval", "cross_encoder", "prior", "final"}
    assert shown["question"] is None and shown["comparison"] is None and shown["handover"] is False

    compared = client.post("/v1/sessions/s-1/messages", json={"text": "compare 1 and 2"}).json()
    assert compared["comparison"]["item_ids"] == ["ink-hp", "ink-hp-color"]

    liked = client.post("/v1/sessions/s-1/feedback", json={"item_id": "ink-hp", "liked": True})
    assert liked.status_code == 200
    # Both HP inks are shown already: the like is kept and the assistant asks what to change.
    assert liked.json()["text"].startswith("I've shown you everything that matches")

    state = client.get("/v1/sessions/s-1").json()
    assert state["session_id"] == "s-1"
    assert state["version"] == stored(service, "s-1")[0]
    assert state["turn"] == 3
    slots = [(s["facet"], s["op"], s["value"], s["said"]) for s in state["profile"]["slots"]]
    assert slots == [
        ("category_2", "=", "Office Electronics > Ink", "ink"),
        ("brand", "=", "hp", "quick reply"),
    ]
    assert state["profile"]["liked"] == ["ink-hp"] and state["profile"]["disliked"] == []
    assert state["profile"]["shown"] == ["ink-hp", "ink-hp-color"]
    assert [line["role"] for line in state["transcript"]][:3] == ["assistant", "shopper", "assistant"]
    assert state["transcript"][1] == {"role": "shopper", "text": "i need ink"}
    assert state["handover"] is False

    handed = client.post("/v1/sessions/s-1/handover").json()
    assert handed["handover"] is True
    assert client.get("/v1/sessions/s-1").json()["handover"] is True
    waiting = client.post("/v1/sessions/s-1/messages", json={"text": "hello?"}).json()
    assert waiting["handover"] is True and waiting["cards"] == []


def test_a_session_without_an_id_gets_one(api):
    service, client = api
    first = client.post("/v1/sessions")
    second = client.post("/v1/sessions", json={})
    assert first.status_code == second.status_code == 201
    ids = {first.json()["session_id"], second.json()["session_id"]}
    assert len(ids) == 2
    assert all(service.view(session_id) is not None for session_id in ids)


LONG = "x" * 201
CASES = {
    "malformed JSON": (
        "post",
        "/messages",
        {"content": b'{"text": "ink', "headers": {"content-type": "application/json"}},
        422,
        "malformed_json",
        "body",
    ),
    "not JSON at all": ("post", "/messages", {"content": b"text=ink"}, 422, "malformed_json", "body"),
    "missing text": ("post", "/messages", {"json": {"words": "ink"}}, 422, "missing_field", "text"),
    "text a number": ("post", "/messages", {"json": {"text": 7}}, 422, "invalid_field", "text"),
    "blank text": ("post", "/messages", {"json": {"text": "   "}}, 422, "invalid_field", "text"),
    "message too long": ("post", "/messages", {"json": {"text": LONG}}, 413, "message_too_long", "text"),
    "body too large": ("post", "/messages", {"json": {"text": "x" * 10_000}}, 413, "body_too_large", "body"),
    "liked a string": (
        "post",
        "/feedback",
        {"json": {"item_id": "ink-hp", "liked": "yes"}},
        422,
        "invalid_field",
        "liked",
    ),
    "missing item": ("post", "/feedback", {"json": {"liked": True}}, 422, "missing_field", "item_id"),
    "unknown item": (
        "post",
        "/feedback",
        {"json": {"item_id": "no-such-item", "liked": True}},
        422,
        "unknown_item",
        "item_id",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_refused_request_names_what_is_wrong_and_changes_nothing(api, case):
    service, client = api
    method, path, kwargs, status, code, field = CASES[case]
    session_id = "refused-" + case.replace(" ", "-")
    create(client, session_id)
    client.post(f"/v1/sessions/{session_id}/messages", json={"text": "i need ink"})
    before = stored(service, session_id)
    response = getattr(client, method)(f"/v1/sessions/{session_id}{path}", **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert stored(service, session_id) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/messages", {"json": {"text": "ink"}}),
        ("post", "/feedback", {"json": {"item_id": "ink-hp", "liked": True}}),
        ("post", "/handover", {}),
        ("get", "", {}),
    ],
)
def test_an_unknown_session_is_404_and_is_not_created(api, method, path, body):
    """With a token the server did sign for that id (one it never gave: no session was opened)."""
    from ui.api import session_token

    service, client = api
    session_id = f"nobody-{path.strip('/') or 'state'}"
    token = session_token(SECRET.encode(), session_id)
    response = getattr(client, method)(
        f"/v1/sessions/{session_id}{path}", headers={"Authorization": f"Bearer {token}"}, **body
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_session", "session_id")
    assert session_id in error["message"]
    assert service.store.load(session_id) is None


@pytest.mark.parametrize("bad", ["has space", "-dash-first", "x" * 201, "é"])
def test_a_bad_session_id_is_422_in_a_path_and_in_a_body(api, bad):
    service, client = api
    in_path = client.post(f"/v1/sessions/{bad}/messages", json={"text": "ink"})
    in_body = client.post("/v1/sessions", json={"session_id": bad})
    for response in (in_path, in_body):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_session_id", "session_id")
    assert service.store.load(bad) is None


def test_opening_a_session_id_in_use_is_409_and_keeps_the_session(api):
    service, client = api
    create(client, "taken")
    client.post("/v1/sessions/taken/messages", json={"text": "i need ink"})
    before = stored(service, "taken")
    response = client.post("/v1/sessions", json={"session_id": "taken"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_exists"
    assert stored(service, "taken") == before


def test_over_the_rate_limits_is_429_with_retry_after_and_changes_nothing(tmp_path):
    service, app = served_api(tmp_path, requests_per_minute_per_session=3, requests_per_minute_per_client=6)
    with (
        running(app, free_port()) as url,
        httpx.Client(base_url=url, timeout=60, auth=SessionTokens()) as client,
    ):
        create(client, "busy")  # the session's 1st request, the client's 1st
        client.post("/v1/sessions/busy/messages", json={"text": "i need ink"})
        assert client.get("/v1/sessions/busy").status_code == 200  # the session's 3rd
        before = stored(service, "busy")
        over = client.post("/v1/sessions/busy/messages", json={"text": "HP"})  # the client's 4th
        assert over.status_code == 429
        assert 1 <= int(over.headers["Retry-After"]) <= 20
        assert over.json()["error"]["code"] == "rate_limited"
        assert "3 requests a minute for this session" in over.json()["error"]["message"]
        assert stored(service, "busy") == before

        # Another session has its own limit, until the client's runs out.
        create(client, "calm")  # the client's 5th
        assert client.post("/v1/sessions/calm/messages", json={"text": "pens"}).status_code == 200
        before = stored(service, "calm")
        over = client.post("/v1/sessions/calm/messages", json={"text": "BIC"})  # the client's 7th
        assert over.status_code == 429
        assert "6 requests a minute for this client" in over.json()["error"]["message"]
        assert int(over.headers["Retry-After"]) >= 1
        assert stored(service, "calm") == before
    assert set(app.state.rate_limiters) == {"client", "session"}


def test_the_rate_limiter_is_exact_under_threads():
    from ui.limits import RateLimiter

    limiter = RateLimiter(50, clock=lambda: 0.0)
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _: limiter.take("shared"), range(200)))
    assert waits.count(0.0) == 50
    assert all(wait == pytest.approx(1.2) for wait in waits if wait)
    with pytest.raises(ValueError, match="at least 1 request a minute"):
        RateLimiter(0)


def test_streamed_reply_comes_first_then_only_checked_wordings(api):
    """With a language model, the reply event carries every card with its template at once; then the model's
    wording of the first card, which passes the check; the second card's invented discount never comes."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    service, client = api
    create(client, "streamed")
    client.post("/v1/sessions/streamed/messages", json={"text": "i need ink"})
    shop = service.engine.shop
    shop.llm = FakeListChatModel(responses=[GOOD, INVENTED])
    try:
        with client.stream(
            "POST", "/v1/sessions/streamed/messages", params={"stream": "true"}, json={"text": "HP"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            got = events(response)
    finally:
        shop.llm = None
    names = [name for name, _ in got]
    assert names[0] == "reply" and names[-1] == "done"
    assert set(names[1:-1]) == {"explanation"}
    reply = got[0][1]
    assert [card["item_id"] for card in reply["cards"]] == ["ink-hp", "ink-hp-color"]
    assert reply["cards"][0]["explanation"].startswith("Ink by HP.")
    wordings = [data for name, data in got if name == "explanation"]
    assert {data["item_id"] for data in wordings} == {"ink-hp"}
    assert wordings[-1]["text"] == GOOD
    assert "50% off" not in json.dumps(got)


def test_streamed_reply_without_a_model_has_no_explanation_events(api):
    service, client = api
    assert service.engine.shop.llm is None
    create(client, "plain")
    client.post("/v1/sessions/plain/messages", json={"text": "i need ink"})
    response = client.post("/v1/sessions/plain/messages?stream=true", json={"text": "HP"})
    got = events(response)
    assert [name for name, _ in got] == ["reply", "done"]
    assert len(got[0][1]["cards"]) == 2


def test_two_sessions_at_once_from_threads_stay_independent(api):
    _, client = api

    def shop_for(session_id: str, need: str, brand: str) -> list[str]:
        with httpx.Client(base_url=client.base_url, timeout=60, auth=client.auth) as own:
            create(own, session_id)
            own.post(f"/v1/sessions/{session_id}/messages", json={"text": need})
            reply = own.post(f"/v1/sessions/{session_id}/messages", json={"text": brand}).json()
            return [card["item_id"] for card in reply["cards"]]

    with ThreadPoolExecutor(2) as pool:
        inks = pool.submit(shop_for, "thread-ink", "i need ink", "HP")
        pens = pool.submit(shop_for, "thread-pens", "pens", "BIC")
        assert inks.result() == ["ink-hp", "ink-hp-color"]
        assert set(pens.result()) == {"pen-bic", "pen-bic-black"}
    for session_id, wanted in (("thread-ink", "hp"), ("thread-pens", "bic")):
        state = client.get(f"/v1/sessions/{session_id}").json()
        brands = [s["value"] for s in state["profile"]["slots"] if s["facet"] == "brand"]
        assert brands == [wanted]
        said = [line["text"] for line in state["transcript"] if line["role"] == "shopper"]
        assert said == (["i need ink", "HP"] if wanted == "hp" else ["pens", "BIC"])


def test_the_openapi_document_lists_the_paths_and_types(api):
    _, client = api
    document = client.get("/openapi.json").json()
    paths = {path: sorted(operations) for path, operations in document["paths"].items()}
    assert paths == {
        "/v1/sessions": ["post"],
        "/v1/sessions/{session_id}": ["get"],
        "/v1/sessions/{session_id}/messages": ["post"],
        "/v1/sessions/{session_id}/feedback": ["post"],
        "/v1/sessions/{session_id}/handover": ["post"],
    }
    messages = document["paths"]["/v1/sessions/{session_id}/messages"]["post"]
    assert set(messages["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert messages["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorBody"
    )
    assert [p["name"] for p in messages["parameters"]] == ["session_id", "stream"]
    schemas = document["components"]["schemas"]
    assert {
        "Reply",
        "Card",
        "Question",
        "SessionState",
        "Profile",
        "ErrorBody",
        "Message",
        "Feedback",
    } <= set(schemas)
    assert set(schemas["Card"]["properties"]) >= {"item_id", "image_url", "generated_description", "parts"}


def test_serve_gives_the_chat_and_the_api_in_one_process(tmp_path):
    """What `concierge serve` and `concierge demo` run: the Gradio page at / and the API at /v1, one service."""
    from ui.serve import make_server

    service = small_assistant(tmp_path).service
    port = free_port()
    server = make_server(service, ServerSettings(host="127.0.0.1", port=port))
    with (
        running_server(server),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, auth=SessionTokens()) as client,
    ):
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "gradio" in page.text.lower()
        created = client.post("/v1/sessions", json={"session_id": "both"})
        assert created.status_code == 201
        reply = client.post("/v1/sessions/both/messages", json={"text": "i need ink"}).json()
        assert reply["text"] == "Any brand you prefer?"
        assert "/v1/sessions" in client.get("/openapi.json").json()["paths"]
        # An unknown API path is the API's JSON error, not the chat's page (mounted at /).
        unknown = client.get("/v1/no-such-thing")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        assert service.view("both").transcript[1] == ("shopper", "i need ink")
        # The chat answers over the same server.
        from gradio_client import Client

        _, history, *_ = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "pens", [], None, api_name="/respond"
        )
        assert history[-1]["role"] == "assistant"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/messages", {"json": {"text": "HP"}}),
        ("post", "/feedback", {"json": {"item_id": "ink-hp", "liked": True}}),
        ("post", "/handover", {}),
        ("get", "", {}),
    ],
)
def test_a_session_opens_with_its_own_token_only(api, method, path, body):
    """A guessed or reused id without the session's token reads and changes nothing: 401 without a token, 403
    with another session's or a forged one, and the same answers for an id that does not exist."""
    service, client = api
    owner = create(client, f"owned-{method}-{path.strip('/')}")
    session_id = owner["session_id"]
    other = create(client, f"other-{method}-{path.strip('/')}")
    client.post(f"/v1/sessions/{session_id}/messages", json={"text": "i need ink"})
    before = stored(service, session_id)
    url = f"/v1/sessions/{session_id}{path}"
    with httpx.Client(base_url=client.base_url, timeout=60) as stranger:
        missing = getattr(stranger, method)(url, **body)
        assert missing.status_code == 401, missing.text
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert (missing.json()["error"]["code"], missing.json()["error"]["field"]) == (
            "missing_token",
            "Authorization",
        )
        forged = ("B" if owner["token"][0] != "B" else "C") + owner["token"][1:]
        for token in (other["token"], forged, "x"):
            wrong = getattr(stranger, method)(url, headers={"Authorization": f"Bearer {token}"}, **body)
            assert wrong.status_code == 403, wrong.text
            assert wrong.json()["error"]["code"] == "wrong_token"
            assert "i need ink" not in wrong.text
        nobody = getattr(stranger, method)(f"/v1/sessions/nobody-else{path}", **body)
        assert nobody.status_code == 401
    assert stored(service, session_id) == before
    assert owner["token"] != other["token"]
    assert getattr(client, method)(url, **body).status_code == 200


def test_tokens_hold_across_processes_that_share_the_key(tmp_path):
    """Two API apps with the same [server] session_secret (two server processes): a token one gave opens the
    session on the other; an app with another key refuses it."""
    from ui.api import build_api

    service = small_assistant(tmp_path).service
    same = build_api(service, ServerSettings(session_secret=SECRET))
    other_key = build_api(service, ServerSettings(session_secret="another key"))
    with (
        running(same, free_port()) as first_url,
        running(build_api(service, ServerSettings(session_secret=SECRET)), free_port()) as second_url,
        running(other_key, free_port()) as third_url,
        httpx.Client(timeout=60) as client,
    ):
        created = client.post(f"{first_url}/v1/sessions", json={"session_id": "shared"}).json()
        bearer = {"Authorization": f"Bearer {created['token']}"}
        reply = client.post(
            f"{second_url}/v1/sessions/shared/messages", json={"text": "i need ink"}, headers=bearer
        )
        assert reply.status_code == 200 and reply.json()["text"] == "Any brand you prefer?"
        refused = client.get(f"{third_url}/v1/sessions/shared", headers=bearer)
        assert refused.status_code == 403


@pytest.mark.parametrize("taken", ["telegram:5550100", "webhook:sms:+15550100", "web-AAAAAAAAAAAAAAAAAAAAAA"])
def test_a_client_cannot_open_a_session_under_a_channels_ids(api, taken):
    """The chat and the messaging channels make their sessions' ids themselves; an API client asking for one of
    them would read and write that channel's shopper's conversation."""
    service, client = api
    response = client.post("/v1/sessions", json={"session_id": taken})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("reserved_session_id", "session_id")
    assert service.store.load(taken) is None


def test_requests_without_the_token_do_not_use_up_the_sessions_rate_limit(tmp_path):
    _, app = served_api(tmp_path, requests_per_minute_per_session=3, requests_per_minute_per_client=1000)
    with (
        running(app, free_port()) as url,
        httpx.Client(base_url=url, timeout=60, auth=SessionTokens()) as client,
    ):
        create(client, "guarded")
        with httpx.Client(base_url=url, timeout=60) as stranger:
            for _ in range(10):
                assert stranger.get("/v1/sessions/guarded").status_code == 401
        assert client.post("/v1/sessions/guarded/messages", json={"text": "i need ink"}).status_code == 200
        assert client.get("/v1/sessions/guarded").status_code == 200
