"""The Gradio chat served over real HTTP on 127.0.0.1, driven by gradio_client."""

import socket

import pytest

from tests.test_conversation import store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def text(message: dict) -> str:
    """Gradio 6 returns a message's content as a list of typed parts."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


@pytest.fixture(scope="module")
def served():
    from ui.app import build_app

    service = store()
    app = build_app(service)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield service, f"http://127.0.0.1:{port}/"
    app.close()


def test_two_browser_sessions_chat_independently_over_http(served):
    from gradio_client import Client

    service, url = served
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    _, history, options = first.predict("Office Electronics", [], api_name="/respond")
    assert text(history[-1]) == "Which of these fits best?"
    assert [choice[0] for choice in options["choices"]] == ["Ink", "Phones", "No preference"]
    _, history, _ = second.predict("Office Supplies", [], api_name="/respond")
    assert text(history[-1]) == "Which brand do you prefer?"
    _, history, _ = first.predict("Ink", history[:0], api_name="/choose")
    assert text(history[-1]) == "Which brand do you prefer?"
    _, history, _ = first.predict("HP", [], api_name="/respond")
    assert "**1. HP 61 Black Ink**" in text(history[-1])
    assert "**2. HP 61 Color Ink**" in text(history[-1])
    answers = sorted(service.state(session).answers.get("category_1") for session in service._sessions)
    assert answers == ["Office Electronics", "Office Supplies"]
