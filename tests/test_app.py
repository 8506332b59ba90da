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
