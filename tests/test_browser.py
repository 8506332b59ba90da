"""The shopper chat in a real headless Chromium, against the Gradio server on 127.0.0.1."""

import shutil

import pytest

from tests.assistant_fixtures import small_assistant
from tests.test_app import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from ui.app import build_app

    app = build_app(small_assistant(tmp_path_factory.mktemp("browser")).service)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        yield page
        browser.close()
    app.close()


def test_a_shopper_clicks_quick_replies_types_a_brand_and_gets_matching_picks(page):
    from playwright.sync_api import expect

    chat = page.locator(".message-wrap")
    expect(chat).to_contain_text("What are you shopping for?", timeout=30_000)
    # click, not check: each answer clears the quick-reply selection, which check() would report as a failure.
    page.get_by_label("Office Electronics").click()
    expect(chat).to_contain_text("Any brand you prefer?")
    box = page.locator("#message textarea")
    box.fill("canon ink")
    box.press("Enter")
    expect(chat).to_contain_text("1. Canon PG-245 Black Ink")
    expect(chat).to_contain_text("2. Canon PG-245 XL Black Ink")
    expect(chat).not_to_contain_text("HP 61 Black Ink")
    expect(page.get_by_label("Show others")).to_be_visible()
