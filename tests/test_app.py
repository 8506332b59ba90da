"""The Gradio chat served over real HTTP on 127.0.0.1, driven by gradio_client."""

import socket

import pytest

from tests.assistant_fixtures import small_assistant


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def text(message: dict) -> str:
    """Gradio 6 returns a message's content as a list of typed parts."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from ui.app import build_app

    service = small_assistant(tmp_path_factory.mktemp("app")).service
    app = build_app(service)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield service, f"http://127.0.0.1:{port}/"
    app.close()


def test_two_browser_sessions_chat_independently_over_http(served):
    from gradio_client import Client

    service, url = served
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    _, history, options = first.predict("i need ink", [], api_name="/respond")
    assert text(history[-1]) == "Any brand you prefer?"
    assert [choice[0] for choice in options["choices"]] == ["HP", "Canon", "Epson", "No preference"]
    _, history, options = second.predict("pens", [], api_name="/respond")
    assert [choice[0] for choice in options["choices"]] == ["BIC", "Pilot", "No preference"]
    _, history, _ = first.predict("HP", [], api_name="/choose")
    assert "**1. HP 61 Black Ink Cartridge**" in text(history[-1])
    assert "**2. HP 61 Color Ink Cartridge**" in text(history[-1])
    assert "Canon" not in text(history[-1])
    wanted = sorted(
        slot.constraint.value
        for session, _ in service.store.sessions()
        for slot in service.view(session).conversation.profile.slots
        if slot.facet.startswith("category")
    )
    assert wanted == ["Office Electronics > Ink", "Office Supplies > Pens"]


def test_cards_come_at_once_and_checked_rewordings_stream_into_them_after(served):
    """A language model is configured: the first update shows the cards with their templates, later updates the
    model's wording of a card that passes the check; a wording with invented facts never reaches the page."""
    from gradio_client import Client
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    service, url = served
    shop = service.engine.shop
    shop.llm = FakeListChatModel(
        responses=[
            "An HP ink for Deskjet printers, chosen by 8 shoppers here.",
            "Now 50% off, the best ink ever.",
        ]
    )
    try:
        client = Client(url, verbose=False)
        client.predict("i need ink", [], api_name="/respond")
        job = client.submit("HP", [], api_name="/choose")
        updates = [text(output[1][-1]) for output in job]
    finally:
        shop.llm = None
    first, last = updates[0], updates[-1]
    assert "**1. HP 61 Black Ink Cartridge**" in first and "An HP ink for Deskjet printers" not in first
    assert "**1. HP 61 Black Ink Cartridge**" in last
    assert "An HP ink for Deskjet printers, chosen by 8 shoppers here." in last
    assert all("50% off" not in update for update in updates)
    # The second card keeps its template, which the first update already showed.
    second_card = first.split("**2. ")[1]
    assert second_card == last.split("**2. ")[1]
