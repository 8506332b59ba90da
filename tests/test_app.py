"""The Gradio chat served over real HTTP on 127.0.0.1, driven by gradio_client."""

import pytest

from assistant.engine import quick_replies
from tests.assistant_fixtures import small_assistant
from tests.servers import free_port


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
    # A new page has no session id: the first reply gives one, which the page (here the client) sends after.
    _, history, _, first_id = first.predict("i need ink", [], None, api_name="/respond")
    assert text(history[-1]) == "Any brand you prefer?"
    # The quick replies the page draws as buttons (page state, not part of the API's outputs).
    assert quick_replies(service.view(first_id).conversation) == ("HP", "Canon", "Epson", "No preference")
    _, history, _, second_id = second.predict("pens", [], None, api_name="/respond")
    assert quick_replies(service.view(second_id).conversation) == ("BIC", "Pilot", "No preference")
    assert first_id.startswith("web-") and second_id.startswith("web-") and first_id != second_id
    # A quick reply's button sends its label, as typing it would.
    _, history, compare, same = first.predict("HP", [], first_id, api_name="/respond")
    assert same == first_id
    assert "**1. HP 61 Black Ink Cartridge**" in text(history[-1])
    assert "**2. HP 61 Color Ink Cartridge**" in text(history[-1])
    assert "Canon" not in text(history[-1])
    assert compare["choices"] == [["1. HP 61 Black Ink Cartridge"] * 2, ["2. HP 61 Color Ink Cartridge"] * 2]
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
        *_, sid = client.predict("i need ink", [], None, api_name="/respond")
        job = client.submit("HP", [], sid, api_name="/respond")
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


def test_a_reloaded_page_continues_the_stored_conversation_with_its_cards_and_quick_replies(served):
    """The page's session id survives a reload (browser storage); the new page is rebuilt from the store."""
    from gradio_client import Client

    service, url = served
    client = Client(url, verbose=False)
    *_, reloaded = client.predict("i need ink", [], None, api_name="/respond")
    client.predict("HP", [], reloaded, api_name="/respond")
    _, history, compare, sid = Client(url, verbose=False).predict(reloaded, api_name="/start")
    assert sid == reloaded
    assert [text(m) for m in history[:-1]] == [
        "i need ink",
        "Any brand you prefer?",
        "HP",
        "Here is what I'd pick for you:",
    ]
    assert [text(m) for m in history[:-1]] == [line for _, line in service.transcript(reloaded)]
    assert text(history[-1]).startswith("**1. HP 61 Black Ink Cartridge**")
    assert quick_replies(service.view(sid).conversation) == ("Show others", "Start over")
    assert [choice[0] for choice in compare["choices"]] == [
        "1. HP 61 Black Ink Cartridge",
        "2. HP 61 Color Ink Cartridge",
    ]
    # A page with no stored session gets a greeting of its own, and nothing of another's.
    _, fresh, _, fresh_id = Client(url, verbose=False).predict(None, api_name="/start")
    assert len(fresh) == 1 and "HP 61" not in text(fresh[0]) and fresh_id != reloaded


def test_the_chat_opens_only_sessions_it_made_never_an_api_or_channel_session(served):
    """An id the chat did not make (an API session's, a messaging channel's, a guessed one) opens a new session:
    the other session is neither shown nor changed."""
    from gradio_client import Client

    service, url = served
    service.send("telegram-42", "i need ink")
    before = service.view("telegram-42")
    client = Client(url, verbose=False)
    _, history, _, sid = client.predict("telegram-42", api_name="/start")
    assert sid != "telegram-42" and sid.startswith("web-")
    assert "i need ink" not in "".join(text(m) for m in history)
    _, history, _, sid = client.predict("HP", [], "telegram-42", api_name="/respond")
    assert sid != "telegram-42"
    assert service.view("telegram-42") == before


def test_compare_two_cards_and_ask_for_a_person_over_http(served):
    from gradio_client import Client

    service, url = served
    client = Client(url, verbose=False)
    *_, compared = client.predict("i need ink", [], None, api_name="/respond")
    client.predict("HP", [], compared, api_name="/respond")
    chosen = ["1. HP 61 Black Ink Cartridge", "2. HP 61 Color Ink Cartridge"]
    _, history, _, _ = client.predict(chosen, [], compared, api_name="/compare")
    assert text(history[-2]) == "compare #1 and #2"
    table = text(history[-1])
    assert "| | HP 61 Black Ink Cartridge | HP 61 Color Ink Cartridge |" in table
    # One card is not a comparison: nothing is sent.
    version = service.view(compared).version
    client.predict(chosen[:1], [], compared, api_name="/compare")
    assert service.view(compared).version == version
    _, history, _, _ = client.predict([], compared, api_name="/person")
    assert service.view(compared).conversation.handover
    assert "person" in text(history[-1]).lower()


def test_html_in_a_message_or_the_catalog_is_shown_as_text(served):
    from gradio_client import Client

    from assistant.engine import Card, Comparison
    from assistant.explain import Explanation
    from ranking.system import ScoreParts
    from ui.app import render_card, render_comparison

    _, url = served
    attack = "<script>alert(1)</script> <img src=x onerror=alert(1)> [link](javascript:alert(1))"
    _, history, _, _ = Client(url, verbose=False).predict(attack, [], None, api_name="/respond")
    shown = "".join(text(message) for message in history)
    assert "<script>" not in shown and "<img" not in shown
    assert "&lt;script&gt;" in shown and shown.count("[link]") == shown.count("\\[link]") == 1
    card = Card(
        "x",
        "<b>Bold</b> pen",
        "A&B",
        "Pens",
        "$2.00",
        "javascript:alert(1)",
        Explanation("<i>why</i>", ()),
        ScoreParts(),
    )
    assert (
        render_card(1, card)
        == "**1. &lt;b&gt;Bold&lt;/b&gt; pen**  \nA&amp;B · Pens · $2.00  \n&lt;i&gt;why&lt;/i&gt;"
    )
    table = render_comparison(
        Comparison(("x", "y"), ("<b>A</b>", "B|C"), (("Brand", ("[x](javascript:1)", "D")),))
    )
    assert table == (
        "| | &lt;b&gt;A&lt;/b&gt; | B\\|C |\n|---|---|---|\n| **Brand** | \\[x](javascript:1) | D |"
    )
