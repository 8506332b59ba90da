"""The conversation engine end to end on a small store: the real understanding, policy, lexical ranking system,
explanations and service. Exact answers, so that each rule can fail here."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from assistant.engine import SHOW_OTHERS, START_OVER, Conversation
from assistant.policy import NO_PREFERENCE
from ranking.system import ScoreParts
from tests.assistant_fixtures import small_assistant, small_catalog


@pytest.fixture
def service(tmp_path):
    return small_assistant(tmp_path).service


@pytest.fixture
def priced(tmp_path):
    return small_assistant(tmp_path, catalog=small_catalog(prices=True)).service


def ids(reply) -> list[str]:
    return [card.item_id for card in reply.cards]


def test_the_greeting_asks_for_the_need_with_the_top_categories(service) -> None:
    reply = service.start("s")
    assert reply.options == ("Office Electronics", "Office Supplies", NO_PREFERENCE)
    assert reply.question is not None and reply.question.facet == "category_1"
    assert "What are you shopping for?" in reply.text


def test_a_need_in_words_then_a_quick_reply_gives_matching_cards_with_facts(service) -> None:
    service.start("s")
    asked = service.send("s", "i need ink")
    assert asked.question is not None and asked.question.facet == "brand"
    assert asked.options == ("HP", "Canon", "Epson", NO_PREFERENCE)
    picks = service.send("s", "HP")
    assert ids(picks) == ["ink-hp", "ink-hp-color"]
    assert picks.options == (SHOW_OTHERS, START_OVER)
    first = picks.cards[0]
    assert (first.title, first.brand, first.category, first.price) == (
        "HP 61 Black Ink Cartridge",
        "HP",
        "Ink",
        "",
    )
    assert (
        first.explanation.text
        == "Ink by HP. It matches your choice of Ink and HP. Chosen by 8 shoppers in this store's history."
    )
    assert first.parts.final >= picks.cards[1].parts.final


def test_nothing_shown_is_shown_again_and_exhaustion_is_said(service) -> None:
    service.send("s", "ink")
    first = service.send("s", "no preference")
    second = service.send("s", "show me others")
    assert ids(first) == ["ink-hp", "ink-hp-color", "ink-canon", "ink-canon-xl", "ink-epson"]
    assert second.cards == ()
    assert second.text == "I've shown you everything that matches what you told me. Tell me what to change."


def test_negation_comparison_and_references_to_cards(service) -> None:
    service.send("s", "ink")
    service.send("s", "no preference")
    service.send("s", "start over")
    service.send("s", "ink")
    shown = service.send("s", "not hp")
    assert ids(shown) == ["ink-canon", "ink-canon-xl", "ink-epson"]
    compared = service.send("s", "compare 1 and 3")
    assert compared.comparison is not None
    assert compared.comparison.item_ids == ("ink-canon", "ink-epson")
    # The facts that differ come first; the category, the same for both, last.
    assert [name for name, _ in compared.comparison.rows] == ["Brand", "Description", "Category"]
    assert dict(compared.comparison.rows)["Brand"] == ("Canon", "Epson")
    missing = service.send("s", "#9")
    assert missing.text.startswith("There is no #9: I'm showing 3 items.")


def test_a_like_is_kept_and_the_explanation_cites_the_shoppers_who_chose_both(service) -> None:
    reply = service.feedback("s", "ink-hp", liked=True)
    assert reply.text.startswith('Noted: you like "HP 61 Black Ink Cartridge".')
    assert service.view("s").conversation.profile.liked == ("ink-hp",)
    color = next(card for card in reply.cards if card.item_id == "ink-hp-color")
    evidence = "4 shoppers who chose this also chose one you liked: HP 61 Black Ink Cartridge."
    assert evidence in color.explanation.text
    # A like of a card on screen, by its number.
    service.send("t", "ink")
    service.send("t", "hp")
    service.send("t", "i like #2")
    assert service.view("t").conversation.profile.liked == ("ink-hp-color",)


def test_a_wish_nothing_meets_is_let_go_of_and_said(service) -> None:
    reply = service.send("s", "epson pens")
    assert reply.text.startswith('Nothing matches all of that, so I let go of "epson".')
    assert set(ids(reply)) <= {"pen-bic", "pen-pilot", "pen-bic-black"} and reply.cards


def test_another_kind_of_product_drops_what_was_said_about_the_last(service) -> None:
    service.send("s", "canon ink")
    reply = service.send("s", "pens")
    state = service.view("s").conversation
    assert [slot.facet for slot in state.profile.slots] == ["category_2"]
    assert reply.question is not None and reply.question.facet == "brand"


def test_prices_when_the_catalog_has_them_and_an_honest_answer_when_it_does_not(service, priced) -> None:
    assert service.send("s", "pens under $5").text.startswith("I don't have prices for these products.")
    priced.send("p", "pens")
    cheapest = priced.send("p", "cheapest")
    assert [card.price for card in cheapest.cards] == ["$4.00", "$5.00", "$9.00"]
    priced.send("q", "ink")
    priced.send("q", "no preference")
    shown = priced.send("q", "no preference")
    assert [card.price for card in shown.cards] == ["$24.00", "$29.00", "$19.00", "$31.00", "$17.00"]
    cheaper = priced.send("q", "cheaper")
    # Under $17 there is no ink: the bound is let go of, and every ink has been shown.
    assert cheaper.cards == ()
    assert cheaper.text.startswith('Nothing matches all of that, so I let go of "cheaper".')
    priced.send("r", "pens")
    priced.send("r", "pilot")
    cheaper = priced.send("r", "cheaper")
    assert [card.price for card in cheaper.cards] == ["$4.00", "$5.00"]


def test_talk_to_a_person_asks_for_a_handover(service) -> None:
    reply = service.send("s", "can i talk to a human")
    assert reply.handover
    assert service.view("s").conversation.handover
    assert service.view("s").events == ({"what": "handover requested"},)


@pytest.mark.parametrize(
    ("message", "start"),
    [
        ("", "I didn't get any text."),
        ("   ", "I didn't get any text."),
        ("x" * 20_000, "That message is longer than 2,000 characters."),
        ("🙂🙂🙂", "I can only read words."),
        ("\x00\x01\x02", "I can only read words."),
        ("zzqx vvbn", "I couldn't match that to anything in this store."),
    ],
)
def test_bad_messages_get_a_polite_reply_and_leave_the_session_intact(service, message, start) -> None:
    service.send("s", "ink")
    before = service.view("s").conversation
    reply = service.send("s", message)
    assert reply.text.startswith(start)
    after = service.view("s").conversation
    assert after.profile == before.profile and after.pending == before.pending


def test_other_languages_binary_and_mixed_scripts_never_break_a_session(service) -> None:
    for message in (
        "bonjour, je cherche des stylos",
        "ペン を ください",
        "ink ✒️ インク",
        b"\xff\xfe".decode("latin-1"),
        None,
        42,
    ):
        reply = service.send("s", message)
        assert reply.text
    service.send("s", "start over")
    assert service.send("s", "ink").question is not None


def test_feedback_on_an_unknown_item_is_refused_politely(service) -> None:
    reply = service.feedback("s", "no-such-item", liked=True)
    assert reply.text == "I don't know the item 'no-such-item'."
    assert service.view("s").conversation.profile.liked == ()


@pytest.mark.parametrize(("brands", "categories"), [(False, True), (True, False), (False, False)])
def test_a_catalog_without_brands_or_categories_still_converses(tmp_path, brands, categories) -> None:
    service = small_assistant(tmp_path, catalog=small_catalog(brands=brands, categories=categories)).service
    assert service.start("s").text
    reply = service.send("s", "black ink")
    if reply.question is not None:
        reply = service.send("s", "show me products")
    assert reply.cards and reply.cards[0].item_id.startswith("ink")


def test_conversation_state_round_trips_through_plain_data(service) -> None:
    service.send("s", "ink")
    state = service.view("s").conversation
    assert Conversation.from_dict(state.to_dict()) == state


def test_the_last_slate_is_stored_whole_for_a_reloaded_page_and_the_console(service) -> None:
    service.send("s", "i need ink")
    picks = service.send("s", "HP")
    state = service.view("s").conversation
    assert state.slate == picks.cards
    assert [card.item_id for card in state.slate] == list(state.on_screen) == ["ink-hp", "ink-hp-color"]
    assert json.loads(json.dumps(state.to_dict())) == state.to_dict()
    assert Conversation.from_dict(json.loads(json.dumps(state.to_dict()))).slate == picks.cards
    service.send("s", "start over")
    assert service.view("s").conversation.slate == ()


def test_an_agent_takes_over_reads_a_summary_edits_the_profile_writes_and_hands_back(service) -> None:
    from retrieval.profile import Constraint, Op

    service.send("s", "black ink")
    service.send("s", "talk to a person")
    summary = service.take_over("s", "maria")
    assert summary.splitlines()[:3] == [
        "2 shopper messages; 0 items shown.",
        "Looking for: black.",
        "Wishes: category_2 = Office Electronics > Ink.",
    ]
    waiting = service.send("s", "hello? anyone?")
    assert waiting.handover and waiting.text.startswith("A person from our team has your conversation")
    service.agent_edit("s", "maria", Constraint("brand", Op.EQ, "canon"))
    service.agent_say("s", "maria", "I set Canon for you; the XL lasts longer.")
    service.hand_back("s", "maria")
    picks = service.send("s", "show me products")
    assert [card.item_id for card in picks.cards] == ["ink-canon", "ink-canon-xl"]
    view = service.view("s")
    assert [event.get("what") for event in view.events] == [
        "handover requested",
        "took over",
        "set brand = canon",
        "wrote",
        "handed back",
    ]
    assert view.transcript[4:9] == (
        ("agent", "maria from our team has joined the conversation."),
        ("shopper", "hello? anyone?"),
        ("agent", "I set Canon for you; the XL lasts longer."),
        ("agent", "maria has handed you back to the assistant."),
        ("shopper", "show me products"),
    )
    assert all(event["agent"] == "maria" for event in view.events[1:])
    slot = next(slot for slot in view.conversation.profile.slots if slot.facet == "brand")
    assert slot.said == "agent maria"
    with pytest.raises(ValueError, match="agent's name"):
        service.hand_back("s", " ")


def test_an_agent_pushes_a_product_that_joins_the_cards_on_screen(service) -> None:
    from ranking.system import ScoreParts

    service.send("s", "i need ink")
    picks = service.send("s", "HP")
    card = service.agent_push("s", "maria", "ink-canon-xl")
    view = service.view("s")
    state = view.conversation
    assert state.slate == (*picks.cards, card)
    assert state.on_screen == ("ink-hp", "ink-hp-color", "ink-canon-xl")
    assert state.profile.shown == ("ink-hp", "ink-hp-color", "ink-canon-xl")
    assert (card.title, card.brand, card.parts) == ("Canon PG-245 XL Black Ink", "Canon", ScoreParts())
    assert (
        card.explanation.text
        == "Recommended by maria from our team. Ink by Canon. It matches your choice of Ink."
    )
    assert view.transcript[-1] == ("agent", "maria recommends Canon PG-245 XL Black Ink.")
    assert view.events[-1]["what"] == "pushed ink-canon-xl" and view.events[-1]["agent"] == "maria"
    # "#3" is the pushed card.
    assert service.send("s", "compare 1 and 3").comparison.item_ids == ("ink-hp", "ink-canon-xl")
    view = service.view("s")
    with pytest.raises(ValueError, match="'no-such-item'"):
        service.agent_push("s", "maria", "no-such-item")
    assert service.view("s").version == view.version


def test_an_agents_wish_replaces_the_one_of_the_shoppers_latest_message(service) -> None:
    from retrieval.profile import Constraint, Op

    service.send("s", "i need ink")
    service.send("s", "HP")
    service.agent_edit("s", "maria", Constraint("brand", Op.EQ, "canon"))
    slots = service.view("s").conversation.profile.slots
    assert [(slot.facet, slot.constraint.value, slot.said) for slot in slots] == [
        ("category_2", "Office Electronics > Ink", "ink"),
        ("brand", "canon", "agent maria"),
    ]


def _hp_slate_with_model(tmp_path, first_wording: str):
    """The small assistant after "ink", "hp" (two HP cards), with a fake model whose wording of the first card is
    ``first_wording`` and of the second an invented offer (which the check refuses)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    assistant = small_assistant(tmp_path)
    assistant.service.send("s", "ink")
    reply = assistant.service.send("s", "hp")
    assistant.shop.llm = FakeListChatModel(responses=[first_wording, "Now 50% off, the best ink ever."])
    return assistant, reply


def test_rewordings_come_after_the_cards_and_only_checked_ones_replace_the_template(tmp_path) -> None:
    assistant, reply = _hp_slate_with_model(
        tmp_path, "An HP ink for Deskjet printers, chosen by 8 shoppers here."
    )
    service = assistant.service
    steps = list(service.reword("s", reply.cards))
    # Card after card, each card's text growing a sentence at a time, the last step with the outcome.
    assert [item_id for item_id, _ in steps] == ["ink-hp", "ink-hp-color"]
    reworded = {item_id: step.done for item_id, step in steps if step.done}
    assert reworded["ink-hp"].used_model
    assert reworded["ink-hp"].text == "An HP ink for Deskjet printers, chosen by 8 shoppers here."
    assert not reworded["ink-hp-color"].used_model
    assert reworded["ink-hp-color"].text == reply.cards[1].explanation.text
    assistant.shop.llm = None
    steps = list(service.reword("s", reply.cards))
    assert [step.text for _, step in steps] == [card.explanation.text for card in reply.cards]
    assert all(not step.done.used_model for _, step in steps)


def test_explanation_updates_are_the_rewordings_that_change_what_a_card_shows(tmp_path) -> None:
    assistant, reply = _hp_slate_with_model(
        tmp_path, "An HP ink for Deskjet printers. Chosen by 8 shoppers here."
    )
    service = assistant.service
    updates = list(service.explanation_updates("s", reply.cards))
    # The first card grows a sentence at a time; the second, whose wording failed, keeps its template: no update.
    assert updates == [
        ("ink-hp", "An HP ink for Deskjet printers."),
        ("ink-hp", "An HP ink for Deskjet printers. Chosen by 8 shoppers here."),
    ]
    assistant.shop.llm = None
    assert list(service.explanation_updates("s", reply.cards)) == []


def test_with_cards_with_questions_a_question_comes_with_the_first_candidates(tmp_path) -> None:
    service = small_assistant(tmp_path, cards_with_questions=True, question_cards="candidates").service
    reply = service.send("s", "i need ink")
    assert reply.question is not None and reply.question.facet == "brand"
    assert reply.text == "A few to start with. Any brand you prefer?"
    assert [card.item_id for card in reply.cards] == [
        "ink-hp",
        "ink-hp-color",
        "ink-canon",
        "ink-canon-xl",
        "ink-epson",
    ]
    # Those were shown: the slate after the answer leaves them out, and says everything matching was seen.
    after = service.send("s", "canon")
    assert after.cards == () and after.text.startswith("I've shown you everything")
    assert service.view("s").conversation.profile.shown == (
        "ink-hp",
        "ink-hp-color",
        "ink-canon",
        "ink-canon-xl",
        "ink-epson",
    )


def test_ranked_question_cards_are_the_ranking_systems_best(tmp_path) -> None:
    assistant = small_assistant(tmp_path, cards_with_questions=True, question_cards="ranked")
    service = assistant.service
    reply = service.send("s", "i need ink")
    assert reply.question is not None and reply.question.facet == "brand"
    profile = service.view("s").conversation.profile
    expected = assistant.shop.system.rank(replace(profile, shown=()).for_ranking("s"), k=5)
    assert [card.item_id for card in reply.cards] == [r.item_id for r in expected]
    # Ranked, so each card carries the score parts it was ranked by (the candidates' cards carry none).
    assert [card.parts for card in reply.cards] == [r.parts for r in expected]
    assert all(card.parts != ScoreParts() for card in reply.cards)
    plain = small_assistant(tmp_path / "plain", cards_with_questions=True, question_cards="candidates")
    plain = plain.service.send("s", "i need ink")
    assert {card.parts for card in plain.cards} == {ScoreParts()}
