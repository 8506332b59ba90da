"""The README's screenshots, taken on the bundled sample with the real assistant in a real Chromium.

Usage:
    python -m benchmarks.screenshots [--out docs] [--need "ink for my printer"]

Serves the sample as ``concierge serve`` does (the built indexes and the trained blend under ``artifacts/``;
sessions in memory, a console login made for the run) on a free local port. A shopper opens the example store page
(``/embed``), says ``--need``, answers the questions with the first quick reply until cards come, and likes the
first card: ``OUT/screenshot.png``. An agent logs into the console, opens that session, takes it over and writes to
the shopper: ``OUT/console.png``. Needs Chromium (``apt-get install chromium``) and what ``concierge build`` and
``concierge train-reranker`` made. Prints where it saved each file.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks.loopback import free_port
from data.settings import load_settings

MAX_QUESTIONS = 4
START_TIMEOUT_S = 60


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNG files")
    parser.add_argument("--need", default="I need ink for my printer", help="what the shopper says first")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: needs Chromium (apt-get install -y chromium)", file=sys.stderr)
        return 1

    from playwright.sync_api import expect, sync_playwright

    from ui.auth import hash_password
    from ui.demo import build_service, load_data
    from ui.serve import make_server

    settings = load_settings()
    password = secrets.token_urlsafe(16)
    server_settings = replace(
        settings.server,
        port=free_port(),
        console_user="agent",
        console_password_hash=hash_password(password),
    )
    settings = replace(
        settings,
        server=server_settings,
        conversation=replace(settings.conversation, session_store="memory"),
    )
    catalog, interactions = load_data(settings)
    assistant = build_service(settings, catalog, interactions)
    service = assistant.service
    server = make_server(service, settings.server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            print(f"error: the server did not start within {START_TIMEOUT_S} s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    url = f"http://{server_settings.host}:{server_settings.port}"
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{url}/embed")
            frame = page.frame_locator("iframe")
            chat = frame.locator("#chat")
            expect(chat).to_contain_text("shopping for", timeout=60_000)
            box = frame.locator("#message textarea")
            box.fill(args.need)
            box.press("Enter")
            for _ in range(MAX_QUESTIONS):
                expect(chat).not_to_contain_text("...", timeout=30_000)
                time.sleep(1.0)
                if frame.locator("#like-1").count():
                    break
                frame.locator("#quick-replies button").first.click()
            expect(frame.locator("#like-1")).to_be_visible(timeout=30_000)
            frame.locator("#like-1").click()
            time.sleep(2.0)
            shopper = args.out / "screenshot.png"
            page.screenshot(path=str(shopper))
            print(f"saved {shopper}")

            session = service.store.sessions()[0][0]
            agent = browser.new_context(
                http_credentials={"username": "agent", "password": password},
                viewport={"width": 1400, "height": 1200},
            )
            console = agent.new_page()
            console.goto(f"{url}/console/sessions/{session}")
            console.get_by_role("button", name="Take over the conversation").click()
            console.locator("textarea").first.fill(
                "Hello, I'm Sam from the store. Which printer model do you have?"
            )
            console.get_by_role("button", name="Send").click()
            expect(console.locator("body")).to_contain_text("Which printer model")
            board = args.out / "console.png"
            console.screenshot(path=str(board), full_page=True)
            print(f"saved {board}")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
