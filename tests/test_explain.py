"""Explanations: facts computed from the catalog, the template built from them, and the audit that checks them."""

from __future__ import annotations

from dataclasses import replace

from assistant.explain import audit, explain
from assistant.profile import InterestProfile
from data.schema import Item
from retrieval.profile import Constraint, Op

INK = Item(
    "1",
    "HP 61 Black Ink Cartridge",
    description="HP 61 Black Ink Cartridge. Fits HP Deskjet printers and prints sharp text.",
    brand="HP",
    categories=("Supplies", "Ink"),
)
BRANDS = frozenset({"HP", "Canon"})


def test_the_template_says_the_matches_the_best_sentence_and_the_history() -> None:
    profile = InterestProfile(needs=("ink for deskjet",)).with_slot(Constraint("brand", Op.EQ, "hp"), "hp", 1)
    explanation = explain(INK, profile, shared_with=lambda _: [("Canon Photo Paper", 3)], chosen_by=9)
    # The first sentence only repeats the title, so the one that says more is quoted.
    assert explanation.text == (
        "Ink by HP. It matches your words ink and deskjet and your choice of HP. "
        "Its description says: Fits HP Deskjet printers and prints sharp text. "
        "3 shoppers who chose this also chose one you liked: Canon Photo Paper."
    )
    assert explanation.matched == ("ink", "deskjet") and not explanation.generated


def test_a_generated_description_is_used_only_without_seller_text_and_is_marked() -> None:
    thin = replace(INK, description="", brand="Generic")
    explanation = explain(
        thin, InterestProfile(needs=("deskjet",)), generated_description="Black ink for Deskjet printers."
    )
    assert explanation.text == (
        "Ink. It matches your words deskjet. "
        "A generated description (not the seller's) says: Black ink for Deskjet printers."
    )
    assert explanation.generated
    # The placeholder brand "Generic" names no brand and is never shown as one.
    assert "Generic" not in explanation.text


def test_the_audit_passes_template_facts_and_catches_invented_ones() -> None:
    profile = InterestProfile(needs=("ink for deskjet",))
    explanation = explain(INK, profile, chosen_by=9)
    assert audit(explanation, INK, profile, BRANDS, evidence=["9"]) == []
    invented = replace(explanation, text=explanation.text.replace("HP.", "Canon.").replace("9", "90"))
    kinds = sorted(finding.kind.value for finding in audit(invented, INK, profile, BRANDS, evidence=["9"]))
    assert kinds == ["brand", "number"]


def test_a_rewording_with_its_own_words_is_shown_one_with_its_own_facts_falls_back_to_the_template() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant.explain import rephrase_explanation
    from assistant.llm import Outcome

    profile = InterestProfile(needs=("ink for deskjet",))
    explanation = explain(INK, profile, chosen_by=9)
    model = FakeListChatModel(
        responses=[
            "Good news: this HP ink fits Deskjet printers, and 9 shoppers here chose it.",
            "This HP ink fits Deskjet printers and is 20% off today, loved by 500 shoppers.",
            "Canon makes this one, the best ink there is.",
        ]
    )
    kept = rephrase_explanation(model, explanation, INK, profile, BRANDS, evidence=["9"])
    assert (kept.outcome, kept.text) == (
        Outcome.ACCEPTED,
        "Good news: this HP ink fits Deskjet printers, and 9 shoppers here chose it.",
    )
    for _ in range(2):
        refused = rephrase_explanation(model, explanation, INK, profile, BRANDS, evidence=["9"])
        assert (refused.outcome, refused.text) == (Outcome.REJECTED, explanation.text)
    assert rephrase_explanation(None, explanation, INK, profile, BRANDS).text == explanation.text
