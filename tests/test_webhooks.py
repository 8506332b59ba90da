"""The messaging channels (ui/webhooks.py, ui/telegram.py) served by a real uvicorn on 127.0.0.1, driven by httpx
with signed requests and real-shaped Telegram updates."""

import hashlib
import hmac
import json
import time

import httpx
import pytest

from assistant.engine import Reply
from assistant.policy import Question
from data.settings import ServerSettings
from tests.assistant_fixtures import small_assistant
from tests.servers import free_port
from tests.test_api import running, served_api

SECRET = "s3cret-for-tests"
TELEGRAM_SECRET = "telegram_Secret-42"
CHAT = 5_550_100
BOT = {"id": 7_000_000_001, "is_bot": True, "first_name": "Concierge", "username": "ConciergeBot"}
ADA = {"id": CHAT, "is_bot": False, "first_name": "Ada", "username": "ada", "language_code": "en"}


@pytest.fixture(scope="module")
def channels_app(tmp_path_factory):
    service, app = served_api(
        tmp_path_factory.mktemp("channels"),
        requests_per_minute_per_session=10_000,
        requests_per_minute_per_client=100_000,
        webhook_secret=SECRET,
        telegram_secret=TELEGRAM_SECRET,
    )
    with running(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield service, client, app


@pytest.fixture
def channels(channels_app):
    service, client, _ = channels_app
    return service, client


def test_every_signature_accepted_is_remembered(channels_app):
    _, client, app = channels_app
    before = len(app.state.webhook_signatures)
    for n in range(3):
        body, headers = signed({"channel_user": f"remembered-{n}", "text": "pens"})
        assert client.post("/v1/channels/webhook", content=body, headers=headers).status_code == 200
    assert len(app.state.webhook_signatures) == before + 3


def signed(payload: dict, timestamp: int | None = None, secret: str = SECRET) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Concierge-Timestamp": stamp,
        "X-Concierge-Signature": f"sha256={digest}",
    }
    return body, headers


def hook(client: httpx.Client, payload: dict) -> httpx.Response:
    body, headers = signed(payload)
    return client.post("/v1/channels/webhook", content=body, headers=headers)


def version(service, session_id: str):
    view = service.view(session_id)
    return None if view is None else (view.version, view.transcript)


def test_a_signed_webhook_conversation_gets_replies_with_cards(channels):
    service, client = channels
    asked = hook(client, {"channel_user": "sms:+15550100", "text": "i need ink"})
    assert asked.status_code == 200, asked.text
    assert asked.json()["session_id"] == "webhook:sms:+15550100"
    assert asked.json()["reply"]["question"]["options"] == ["HP", "Canon", "Epson"]

    shown = hook(client, {"channel_user": "sms:+15550100", "text": "HP"}).json()["reply"]
    assert [card["item_id"] for card in shown["cards"]] == ["ink-hp", "ink-hp-color"]
    assert shown["cards"][0]["title"] == "HP 61 Black Ink Cartridge"

    liked = hook(client, {"channel_user": "sms:+15550100", "feedback": {"item_id": "ink-hp", "liked": True}})
    assert liked.status_code == 200, liked.text
    profile = service.view("webhook:sms:+15550100").conversation.profile
    assert list(profile.liked) == ["ink-hp"]


def stale(payload):
    return signed(payload, timestamp=int(time.time()) - 301)


def wrong_key(payload):
    return signed(payload, secret="not-the-secret")


def tampered(payload):
    body, headers = signed(payload)
    return body.replace(b"HP", b"Canon"), headers


def unsigned(payload):
    body, headers = signed(payload)
    del headers["X-Concierge-Signature"]
    return body, headers


def no_timestamp(payload):
    body, headers = signed(payload)
    del headers["X-Concierge-Timestamp"]
    return body, headers


def worded_timestamp(payload):
    body, headers = signed(payload)
    headers["X-Concierge-Timestamp"] = "yesterday"
    return body, headers


REFUSED = {
    "worded timestamp": (worded_timestamp, "bad_signature"),
    "wrong key": (wrong_key, "bad_signature"),
    "tampered body": (tampered, "bad_signature"),
    "no signature": (unsigned, "bad_signature"),
    "no timestamp": (no_timestamp, "bad_signature"),
    "stale timestamp": (stale, "stale_timestamp"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_an_unsigned_or_stale_webhook_is_401_and_changes_nothing(channels, case):
    service, client = channels
    sign, code = REFUSED[case]
    user = "refused-" + case.replace(" ", "-")
    assert hook(client, {"channel_user": user, "text": "i need ink"}).status_code == 200
    before = version(service, f"webhook:{user}")
    body, headers = sign({"channel_user": user, "text": "HP"})
    response = client.post("/v1/channels/webhook", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert version(service, f"webhook:{user}") == before


def test_a_replayed_webhook_is_401_and_changes_nothing(channels):
    service, client = channels
    body, headers = signed({"channel_user": "replayer", "text": "i need ink"})
    assert client.post("/v1/channels/webhook", content=body, headers=headers).status_code == 200
    before = version(service, "webhook:replayer")
    again = client.post("/v1/channels/webhook", content=body, headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed"
    assert version(service, "webhook:replayer") == before


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        (
            {"channel_user": "x", "text": "a", "feedback": {"item_id": "ink-hp", "liked": True}},
            422,
            "invalid_field",
            "body",
        ),
        ({"channel_user": "x", "text": "  "}, 422, "invalid_field", "text"),
        ({"channel_user": "x"}, 422, None, "body"),
        ({"channel_user": "has space", "text": "ink"}, 422, "invalid_field", "channel_user"),
        ({"channel_user": "x", "feedback": {"item_id": "nope", "liked": True}}, 422, "unknown_item", None),
        ({"channel_user": "never-wrote", "feedback": {"item_id": "ink-hp", "liked": True}}, 404, None, None),
        ({"channel_user": "x", "text": "x" * 2001}, 413, "message_too_long", "text"),
    ],
)
def test_a_signed_but_invalid_webhook_names_what_is_wrong(channels, payload, status, code, field):
    service, client = channels
    response = hook(client, payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    assert code is None or error["code"] == code
    assert field is None or error["field"] == field
    assert service.view(f"webhook:{payload['channel_user']}") is None


def test_channels_without_a_secret_are_404(tmp_path):
    _, app = served_api(tmp_path)
    with running(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as client:
        body, headers = signed({"channel_user": "x", "text": "ink"})
        for path in ("/v1/channels/webhook", "/v1/channels/telegram"):
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
        assert not any("/channels" in path for path in client.get("/openapi.json").json()["paths"])


# --- Telegram ---------------------------------------------------------------------------------------------


def text_update(update_id: int, text: str, chat: int = CHAT) -> dict:
    message = {
        "message_id": 100 + update_id,
        "from": ADA | {"id": chat},
        "chat": {"id": chat, "first_name": "Ada", "username": "ada", "type": "private"},
        "date": 1_764_562_800,
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def button_press(update_id: int, data: str, chat: int = CHAT) -> dict:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"4382bfdwdsb323b2d9{update_id}",
            "from": ADA | {"id": chat},
            "message": {
                "message_id": 99,
                "from": BOT,
                "chat": {"id": chat, "first_name": "Ada", "username": "ada", "type": "private"},
                "date": 1_764_562_790,
                "text": "Any brand you prefer?",
                "reply_markup": {"inline_keyboard": [[{"text": "HP", "callback_data": "say:HP"}]]},
            },
            "chat_instance": "-7348592047204913",
            "data": data,
        },
    }


def telegram(client: httpx.Client, update: dict, token: str = TELEGRAM_SECRET) -> httpx.Response:
    return client.post(
        "/v1/channels/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": token}
    )


def test_a_telegram_chat_asks_with_buttons_and_takes_presses(channels):
    service, client = channels
    greeting = telegram(client, text_update(1, "/start"))
    assert greeting.status_code == 200
    assert greeting.json()["method"] == "sendMessage" and greeting.json()["chat_id"] == CHAT

    asked = telegram(client, text_update(2, "i need ink")).json()
    assert asked == {
        "method": "sendMessage",
        "chat_id": CHAT,
        "text": "Any brand you prefer?",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "HP", "callback_data": "say:HP"}, {"text": "Canon", "callback_data": "say:Canon"}],
                [
                    {"text": "Epson", "callback_data": "say:Epson"},
                    {"text": "No preference", "callback_data": "say:No preference"},
                ],
            ]
        },
    }

    shown = telegram(client, button_press(3, "say:HP")).json()
    session = f"telegram:{CHAT}"
    slots = service.view(session).conversation.profile.to_dict()["slots"]
    assert [(s["facet"], s["value"], s["said"]) for s in slots][-1] == ("brand", "hp", "quick reply")
    lines = shown["text"].split("\n")
    assert "1. HP 61 Black Ink Cartridge (HP)" in lines
    assert "2. HP 61 Color Ink Cartridge (HP)" in lines
    assert lines[lines.index("1. HP 61 Black Ink Cartridge (HP)") + 1].startswith("Ink by HP.")
    keyboard = shown["reply_markup"]["inline_keyboard"]
    assert keyboard[-2:] == [
        [{"text": "👍 1", "callback_data": "up:ink-hp"}, {"text": "👎 1", "callback_data": "down:ink-hp"}],
        [
            {"text": "👍 2", "callback_data": "up:ink-hp-color"},
            {"text": "👎 2", "callback_data": "down:ink-hp-color"},
        ],
    ]

    liked = telegram(client, button_press(4, "up:ink-hp"))
    assert liked.status_code == 200
    # Both HP inks are shown already: the like is kept and the assistant asks what to change.
    assert liked.json()["text"].startswith("I've shown you everything that matches")
    profile = service.view(session).conversation.profile
    assert list(profile.liked) == ["ink-hp"] and list(profile.disliked) == []


def test_a_wrong_telegram_secret_is_401_and_changes_nothing(channels):
    service, client = channels
    chat = 42
    assert telegram(client, text_update(10, "i need ink", chat)).status_code == 200
    before = version(service, f"telegram:{chat}")
    for token in ("wrong", "", TELEGRAM_SECRET + "x"):
        response = telegram(client, text_update(11, "HP", chat), token=token)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_secret_token"
    missing = client.post("/v1/channels/telegram", json=text_update(12, "HP", chat))
    assert missing.status_code == 401
    assert version(service, f"telegram:{chat}") == before


def test_telegram_updates_without_text_are_200_and_change_nothing(channels):
    service, client = channels
    chat = 43
    sticker = text_update(20, "", chat)
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "CAACAgIAAxkBAAIBY2ZKl",
        "file_unique_id": "AgADKwADwZxgDA",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
    polite = telegram(client, sticker)
    assert polite.status_code == 200
    assert polite.json()["text"].startswith("I can only read text.")
    assert "reply_markup" not in polite.json()

    edited = text_update(21, "i need pens", chat)
    edited["edited_message"] = edited.pop("message") | {"edit_date": 1_764_562_900}
    unknown_button = button_press(22, "bogus", chat)
    not_an_update = {"hello": "world"}
    for update in (edited, unknown_button, not_an_update):
        response = telegram(client, update)
        assert response.status_code == 200 and response.content == b""
    assert service.view(f"telegram:{chat}") is None


def test_a_long_option_label_is_pressed_as_its_number():
    from ui.telegram import Update, send_message, turn_of

    long_label = "Hammermill Premium Multipurpose Copy Paper, Bright White, 500 Sheets"
    question = Question("brand", "Which one?", ("HP", long_label), ("hp", "hammermill"), 0.7)
    method = send_message(1, Reply("Which one?", ("HP", long_label, "No preference"), question))
    buttons = [button for row in method["reply_markup"]["inline_keyboard"] for button in row]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        ("HP", "say:HP"),
        (long_label, "say:2"),
        ("No preference", "say:No preference"),
    ]
    assert question.key_of("2") == "hammermill"
    turn = turn_of(Update.model_validate(button_press(1, "say:2", chat=1)))
    assert (turn.session_id, turn.kind, turn.text) == ("telegram:1", "say", "2")


def test_a_telegram_chat_over_its_rate_limit_is_asked_to_wait(tmp_path):
    service, app = served_api(tmp_path, requests_per_minute_per_session=2, telegram_secret=TELEGRAM_SECRET)
    with running(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as client:
        for update_id, text in enumerate(("i need ink", "HP"), 1):
            assert telegram(client, text_update(update_id, text)).status_code == 200
        before = version(service, f"telegram:{CHAT}")
        over = telegram(client, text_update(3, "cheaper"))
        assert over.status_code == 200
        assert over.json()["text"].startswith("You are writing faster than I can answer; please wait")
        assert version(service, f"telegram:{CHAT}") == before


def test_a_webhook_replayed_to_another_server_process_is_refused(tmp_path):
    """Two server processes sharing one session store (here one SQLite file, as two processes of one machine
    would): a signature one accepted is refused by the other."""
    from assistant.sessions import SQLiteStore
    from ui.api import build_api

    apps, services = [], []
    for name in ("a", "b"):
        service = small_assistant(tmp_path / name, store=SQLiteStore(tmp_path / "sessions.sqlite3")).service
        services.append(service)
        apps.append(build_api(service, ServerSettings(webhook_secret=SECRET)))
    with (
        running(apps[0], free_port()) as first,
        running(apps[1], free_port()) as second,
        httpx.Client(timeout=60) as client,
    ):
        body, headers = signed({"channel_user": "two-processes", "text": "i need ink"})
        assert client.post(f"{first}/v1/channels/webhook", content=body, headers=headers).status_code == 200
        before = version(services[1], "webhook:two-processes")
        again = client.post(f"{second}/v1/channels/webhook", content=body, headers=headers)
        assert again.status_code == 401 and again.json()["error"]["code"] == "replayed"
        assert version(services[1], "webhook:two-processes") == before
