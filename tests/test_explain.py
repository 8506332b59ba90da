"""Explanations: facts computed from the catalog, the template built from them, and the audit that checks them."""

from __future__ import annotations

from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

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


class Talker(BaseChatModel):
    """A chat model that streams a text word by word and records how far it was read and whether it was stopped
    (the tests are about what the stream shows, not about a model)."""

    words: list[str]
    fail_after: int | None = None
    read: int = 0
    stopped: bool = False

    @property
    def _llm_type(self) -> str:
        return "talker"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise NotImplementedError("streams only")

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        try:
            for n, word in enumerate(self.words):
                if self.fail_after is not None and n == self.fail_after:
                    raise ConnectionError("server went away")
                self.read = n + 1
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        finally:
            self.stopped = self.read < len(self.words)


def talker(text: str, fail_after: int | None = None) -> Talker:
    return Talker(words=[w + " " for w in text.split(" ")], fail_after=fail_after)


def _stream(model, explanation, profile):
    from assistant.explain import stream_explanation

    return list(stream_explanation(model, explanation, INK, profile, BRANDS, evidence=["9"]))


def test_a_streamed_rewording_shows_only_checked_sentences_and_stops_the_model_at_the_first_bad_one() -> None:
    from assistant.llm import Outcome

    profile = InterestProfile(needs=("ink for deskjet",))
    explanation = explain(INK, profile, chosen_by=9)
    model = talker(
        "This HP ink fits Deskjet printers. 9 shoppers here chose it. It is 20% off today and "
        "loved by 500 shoppers. It prints sharp text."
    )
    steps = _stream(model, explanation, profile)
    assert [step.text for step in steps] == [
        "This HP ink fits Deskjet printers.",
        "This HP ink fits Deskjet printers. 9 shoppers here chose it.",
        "This HP ink fits Deskjet printers. 9 shoppers here chose it.",
    ]
    assert all(step.done is None for step in steps[:-1]) and steps[0].first_token_s is not None
    done = steps[-1].done
    assert done.outcome is Outcome.ACCEPTED and done.reason.startswith("cut after the text shown: number")
    # The bad sentence stopped the model: the last sentence was never read.
    assert model.stopped and model.read < len(model.words)
    for step in steps:
        assert audit(replace(explanation, text=step.text), INK, profile, BRANDS, ["9"], words=False) == []


def test_a_streamed_rewording_that_fails_at_once_shows_the_template_and_a_broken_model_keeps_what_passed() -> (
    None
):
    from assistant.llm import Outcome

    profile = InterestProfile(needs=("ink for deskjet",))
    explanation = explain(INK, profile, chosen_by=9)
    steps = _stream(talker("Canon makes this one. It fits Deskjet printers."), explanation, profile)
    assert [step.text for step in steps] == [explanation.text]
    assert steps[-1].done.outcome is Outcome.REJECTED
    broken = talker("This HP ink fits Deskjet printers. It prints sharp text.", fail_after=7)
    steps = _stream(broken, explanation, profile)
    assert [step.text for step in steps] == ["This HP ink fits Deskjet printers."] * 2
    assert steps[-1].done.outcome is Outcome.ACCEPTED
    assert "ConnectionError: server went away" in steps[-1].done.reason
    steps = _stream(None, explanation, profile)
    assert [(step.text, step.done.outcome) for step in steps] == [(explanation.text, Outcome.NO_MODEL)]


def test_a_rewording_of_sourced_words_that_names_another_product_or_drops_the_generated_mark_is_refused() -> (
    None
):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant.explain import rephrase_explanation
    from assistant.llm import Outcome

    cartridge = replace(INK, categories=("Supplies", "Inkjet Printer Ink"))
    profile = InterestProfile()
    explanation = explain(cartridge, profile, chosen_by=9)
    assert explanation.text == "Inkjet Printer Ink by HP. Chosen by 9 shoppers in this store's history."
    model = FakeListChatModel(
        responses=[
            "This HP inkjet printer was chosen by 9 shoppers in this store's history.",
            "This HP inkjet printer ink was chosen by 9 shoppers in this store's history.",
        ]
    )
    other = rephrase_explanation(model, explanation, cartridge, profile, BRANDS, evidence=["9"])
    assert other.outcome is Outcome.REJECTED and "what the item is, 'Inkjet Printer Ink'" in other.reason
    same = rephrase_explanation(model, explanation, cartridge, profile, BRANDS, evidence=["9"])
    assert same.outcome is Outcome.ACCEPTED
    thin = replace(INK, description="", brand="Generic")
    generated = "Black ink for Deskjet printers."
    explanation = explain(thin, InterestProfile(needs=("deskjet",)), generated_description=generated)
    model = FakeListChatModel(
        responses=[
            "This ink matches your words deskjet: black ink for Deskjet printers.",
            "This ink matches your words deskjet; a generated description says: black ink for Deskjet printers.",
        ]
    )
    results = [
        rephrase_explanation(
            model, explanation, thin, InterestProfile(needs=("deskjet",)), BRANDS, (), generated
        )
        for _ in range(2)
    ]
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.ACCEPTED]
    assert "the mark of a generated description" in results[0].reason
