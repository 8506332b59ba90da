"""A reply as plain JSON-ready data: the one serialisation shared by ``concierge chat --json`` and the HTTP API."""

from __future__ import annotations

from dataclasses import asdict

from assistant.engine import Reply
from assistant.policy import Question


def question_to_json(question: Question | None) -> dict[str, object] | None:
    """A question: the facet asked about, what the assistant says, the values offered."""
    if question is None:
        return None
    return {"facet": question.facet, "text": question.text, "options": list(question.options)}


def reply_to_json(reply: Reply) -> dict[str, object]:
    """A reply as plain JSON-ready data: the text, quick replies, the question (facet, text, its options), cards
    (item id, catalog facts, image, explanation, whether it quotes a generated description, score parts), a
    comparison and the hand-over flag."""
    return {
        "text": reply.text,
        "options": list(reply.options),
        "question": question_to_json(reply.question),
        "cards": [
            {
                "item_id": card.item_id,
                "title": card.title,
                "brand": card.brand,
                "category": card.category,
                "price": card.price,
                "image_url": card.image_url,
                "explanation": card.explanation.text,
                "generated_description": card.explanation.generated,
                "parts": asdict(card.parts),
            }
            for card in reply.cards
        ],
        "comparison": None
        if reply.comparison is None
        else {
            "item_ids": list(reply.comparison.item_ids),
            "titles": list(reply.comparison.titles),
            "rows": [[name, list(values)] for name, values in reply.comparison.rows],
        },
        "handover": reply.handover,
    }
