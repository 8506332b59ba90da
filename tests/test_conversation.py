import threading

import numpy as np
import pytest

from assistant.conversation import NO_PREFERENCE, SHOW_MORE, START_OVER, FacetedConversation
from assistant.service import FAILURE_TEXT, AssistantService
from data.facets import discover_facets
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import Settings
from ranking.baselines import FacetedPopularitySystem
from ranking.system import TrainingData
from retrieval.profile import Profile

INK = ("Office Electronics", "Ink")
PHONES = ("Office Electronics", "Phones")
PENS = ("Office Supplies", "Pens")


def store() -> AssistantService:
    items = [
        Item("ink-hp", "HP 61 Black Ink", brand="HP", categories=INK),
        Item("ink-canon", "Canon PG-245 Ink", brand="Canon", categories=INK),
        Item("ink-hp-color", "HP 61 Color Ink", brand="HP", categories=INK),
        Item("phone-vtech", "VTech Cordless Phone", brand="VTech", categories=PHONES),
        Item("phone-att", "AT&T Corded Phone", brand="AT&T", categories=PHONES),
        Item("pen-bic", "BIC Round Stic Pens", brand="BIC", categories=PENS),
        Item("pen-pilot", "Pilot G2 Gel Pens", brand="Pilot", categories=PENS),
    ]
    popularity = {
        "ink-hp": 5,
        "ink-canon": 3,
        "ink-hp-color": 1,
        "phone-vtech": 4,
        "phone-att": 2,
        "pen-bic": 6,
    }
    events = [Interaction(f"u{n}", item) for item, count in popularity.items() for n in range(count)]
    catalog = Catalog(items)
    facets = discover_facets(catalog)
    data = TrainingData.build(catalog, facets, Interactions(events))
    ranker = FacetedPopularitySystem(Settings())
    ranker.fit(data)

    def rank(answers, shown):
        return ranker.score(Profile.from_answers(answers, answered=len(answers), shown=shown))

    return AssistantService(FacetedConversation(catalog, facets, rank, data.item_counts()))


def test_questions_offer_catalog_values_then_best_sellers_match_every_answer():
    service = store()
    first = service.start("s")
    assert first.options == ("Office Electronics", "Office Supplies", NO_PREFERENCE)
    second = service.send("s", "office electronics")
    assert second.options == ("Ink", "Phones", NO_PREFERENCE)
    third = service.send("s", "1")
    assert third.text == "Which brand do you prefer?"
    assert third.options == ("HP", "Canon", NO_PREFERENCE)
    picks = service.send("s", "HP").picks
    assert [pick.item_id for pick in picks] == ["ink-hp", "ink-hp-color"]
    assert (
        picks[0].reason == "Office Electronics > Ink; brand HP; chosen by 5 shoppers in this store's history."
    )
    assert picks[1].reason.endswith("chosen by 1 shopper in this store's history.")


def test_show_others_never_repeats_and_start_over_resets():
    service = store()
    service.start("s")
    for answer in (NO_PREFERENCE, NO_PREFERENCE, NO_PREFERENCE):
        reply = service.send("s", answer)
    first = [pick.item_id for pick in reply.picks]
    assert first == ["pen-bic", "ink-hp", "phone-vtech", "ink-canon", "phone-att"]
    more = service.send("s", SHOW_MORE)
    assert [pick.item_id for pick in more.picks] == ["ink-hp-color", "pen-pilot"]
    assert service.send("s", SHOW_MORE).options == (START_OVER,)
    assert service.send("s", START_OVER).options[0] == "Office Electronics"
    assert service.state("s").answers == {}


def test_a_brand_that_contradicts_earlier_answers_is_refused():
    service = store()
    service.start("s")
    service.send("s", "Office Electronics")
    service.send("s", "Phones")
    reply = service.send("s", "HP")
    assert reply.text.startswith("No HP product matches what you told me so far.")
    assert "brand" not in service.state("s").answers


@pytest.mark.parametrize("message", ["", "   ", "x" * 5000, "🙂🙂", "ناقص", "DROP TABLE items;", "99"])
def test_bad_messages_get_a_clear_answer_and_keep_the_session(message):
    service = store()
    service.start("s")
    reply = service.send("s", message)
    assert reply.options == ("Office Electronics", "Office Supplies", NO_PREFERENCE)
    assert reply.text
    assert service.state("s").answers == {}


def test_a_failing_turn_restores_the_state_and_answers_politely():
    service = store()
    service.start("s")
    service.send("s", "Office Electronics")

    def broken(state, message):
        state.answers["category_2"] = "garbage"
        raise RuntimeError("boom")

    service.conversation.respond = broken
    reply = service.send("s", "Ink")
    assert reply.text == FAILURE_TEXT
    assert service.state("s").answers == {"category_1": "Office Electronics"}


def test_sessions_are_isolated_under_concurrency():
    service = store()
    errors = []

    def shopper(n: int):
        session = f"s{n}"
        category, expected = (
            ("Office Supplies", {"pen-bic", "pen-pilot"})
            if n % 2
            else ("Office Electronics", {"ink-hp", "ink-canon", "ink-hp-color", "phone-vtech", "phone-att"})
        )
        service.start(session)
        reply = service.send(session, category)
        while not reply.picks and NO_PREFERENCE in reply.options:
            reply = service.send(session, NO_PREFERENCE)
        picks = {pick.item_id for pick in reply.picks}
        if not picks or not picks <= expected:
            errors.append((session, picks))

    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_session_ids_must_be_given():
    with pytest.raises(ValueError, match="session id must be a non-empty string"):
        store().start("")


def test_ranking_scores_follow_popularity_within_the_answers():
    service = store()
    scores = service.conversation.rank({"category_1": "Office Supplies"}, frozenset())
    order = [service.conversation.catalog.items[i].item_id for i in np.argsort(-scores, kind="stable")[:2]]
    assert order == ["pen-bic", "pen-pilot"]
