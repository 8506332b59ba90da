"""The shopper chat and the customer-service console in a real headless Chromium, against `concierge serve`'s one
server (the chat, the console, the API and the example store page) on 127.0.0.1.

A shopper opens the store's page with the chat embedded, answers with a quick reply and with typed text, gets cards,
thumbs one up, compares two, reloads the page and finds the conversation, and asks for a person. An agent, in another
browser with its own login, sees that session with its score parts, takes it over and writes; the shopper's page
shows the message. Screenshots of both pages are saved (``CONCIERGE_SCREENSHOTS=DIR`` keeps them in DIR); the
README's are taken on the bundled sample by ``python -m benchmarks.screenshots``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from data.settings import ServerSettings
from tests.assistant_fixtures import small_assistant
from tests.servers import free_port
from tests.test_api import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AGENT, PASSWORD = "agent", "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The one server process's app, with console credentials configured (hashed)."""
    import uvicorn

    from ui.auth import hash_password
    from ui.serve import build_server_app

    service = small_assistant(tmp_path_factory.mktemp("browser")).service
    port = free_port()
    settings = ServerSettings(port=port, console_user=AGENT, console_password_hash=hash_password(PASSWORD))
    app = build_server_app(service, settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with running_server(server):
        yield service, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("CONCIERGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_shopper_and_an_agent_in_two_browsers(server, browser, shots):
    from playwright.sync_api import expect

    service, url = server
    shopper = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = shopper.new_page()
    page.goto(f"{url}/embed")
    chat_frame = page.frame_locator("iframe")
    chat = chat_frame.locator("#chat")
    expect(chat).to_contain_text("What are you shopping for?", timeout=30_000)

    # A quick reply, then typed text.
    chat_frame.get_by_role("button", name="Office Electronics").click()
    expect(chat).to_contain_text("Any brand you prefer?")
    box = chat_frame.locator("#message textarea")
    box.fill("canon ink")
    box.press("Enter")
    expect(chat).to_contain_text("1. Canon PG-245 Black Ink")
    expect(chat).to_contain_text("2. Canon PG-245 XL Black Ink")
    expect(chat).not_to_contain_text("HP 61 Black Ink")
    expect(chat_frame.locator("#quick-replies").get_by_role("button", name="Show others")).to_be_visible()

    # Compare two cards: a table.
    sessions = [session for session, _ in service.store.sessions()]
    assert len(sessions) == 1
    session = sessions[0]
    slate = service.view(session).conversation.slate
    assert len(slate) >= 2
    choice = chat_frame.locator("#compare-choice")
    choice.get_by_label(f"1. {slate[0].title}").check()
    choice.get_by_label(f"2. {slate[1].title}").check()
    chat_frame.locator("#compare").click()
    expect(chat).to_contain_text("compare #1 and #2")
    expect(chat.locator("table").last).to_contain_text(slate[1].title)

    # Thumbs up on the first card: the like is in the profile.
    chat_frame.locator("#like-1").click()
    expect(chat).to_contain_text("Liked: Canon PG-245 Black Ink")
    assert "ink-canon" in service.view(session).conversation.profile.liked
    expect(chat).to_contain_text("I've shown you everything that matches")
    box.fill("actually any brand")
    box.press("Enter")
    expect(chat).to_contain_text("1. HP 61 Black Ink Cartridge")
    expect(chat_frame.locator("#like-3")).to_be_visible()

    # A reload of the store's page continues the same conversation.
    page.reload()
    chat_frame = page.frame_locator("iframe")
    chat = chat_frame.locator("#chat")
    expect(chat).to_contain_text("canon ink", timeout=30_000)
    expect(chat).to_contain_text("compare #1 and #2")
    expect(chat_frame.locator("#quick-replies").get_by_role("button", name="Start over")).to_be_visible()
    expect(chat_frame.locator("#like-1")).to_be_visible()
    assert [session for session, _ in service.store.sessions()] == [session]

    # Ask for a person.
    chat_frame.locator("#talk-to-a-person").click()
    expect(chat).to_contain_text("Talk to a person")
    assert service.view(session).conversation.handover
    page.screenshot(path=str(shots / "shopper.png"), full_page=True)

    # The agent, in another browser with its own login.
    agent = browser.new_context(
        http_credentials={"username": AGENT, "password": PASSWORD}, viewport={"width": 1400, "height": 1300}
    )
    console = agent.new_page()
    console.goto(f"{url}/console/")
    expect(console.locator("body")).to_contain_text(session)
    console.locator(f"a[href$='{session}']").first.click()
    body = console.locator("body")
    expect(body).to_contain_text("canon ink")
    card = service.view(session).conversation.slate[0]
    expect(body).to_contain_text(card.title)
    expect(body).to_contain_text(f"{card.parts.final:.3f}")
    console.get_by_role("button", name="Take over the conversation").click()
    expect(body).to_contain_text("took over")
    console.locator("textarea").first.fill("Hello, I'm Sam from the store. The XL lasts three times longer.")
    console.get_by_role("button", name="Send").click()
    expect(body).to_contain_text("I'm Sam from the store")
    console.screenshot(path=str(shots / "console.png"), full_page=True)

    # The shopper's page shows the agent's message without the shopper doing anything.
    expect(chat).to_contain_text("I'm Sam from the store", timeout=15_000)
    expect(chat).to_contain_text("joined the conversation")
    page.screenshot(path=str(shots / "shopper.png"), full_page=True)
    events = [event["what"] for event in service.view(session).events]
    assert "took over" in events and "wrote" in events
    shopper.close()
    agent.close()


def test_the_console_refuses_a_browser_without_the_login(server, browser):
    from playwright.sync_api import Error

    _, url = server
    context = browser.new_context()
    # Chromium stops at the 401's login dialog, which a headless browser cannot answer.
    with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
        context.new_page().goto(f"{url}/console/")
    response = context.request.get(f"{url}/console/")
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Concierge console"'
    context.close()
