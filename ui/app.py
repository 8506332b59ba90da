"""The Gradio shopper chat: a thin client of :class:`assistant.service.AssistantService`.

Conversation state stays on the server under Gradio's per-browser-tab session hash (in the service's session
store); the page only holds what it displays. Cards are Markdown for now: title, brand, category, price where
known, the explanation (a generated description is marked as such), and a comparison as a table.

Cards never wait for the language model: a reply is shown at once with template explanations, and when a model is
configured its checked wording of each explanation then streams into the cards, a sentence at a time
(:meth:`assistant.service.AssistantService.reword`). Events run concurrently (the service is safe with
concurrent shoppers and a local model serialises itself), so one shopper's streaming never queues another's turn.
"""

from __future__ import annotations

from collections.abc import Mapping

import gradio as gr

from assistant.engine import Comparison, Reply
from assistant.service import AssistantService


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_comparison(comparison: Comparison) -> str:
    """A comparison as a Markdown table: one column per item, the differing facts first."""
    header = "| | " + " | ".join(_cell(title) for title in comparison.titles) + " |"
    rule = "|---" * (len(comparison.titles) + 1) + "|"
    rows = [
        f"| **{_cell(name)}** | " + " | ".join(_cell(v) for v in values) + " |"
        for name, values in comparison.rows
    ]
    return "\n".join([header, rule, *rows])


def render(reply: Reply, explanations: Mapping[str, str] | None = None) -> str:
    """A reply as Markdown: the text, then one numbered block per card, then a comparison table.
    ``explanations``: item id -> the text to show instead of a card's template (a checked rewording)."""
    lines = [reply.text]
    explanations = explanations or {}
    for number, card in enumerate(reply.cards, start=1):
        facts = " · ".join(part for part in (card.brand, card.category, card.price) if part)
        because = explanations.get(card.item_id, card.explanation.text)
        lines.append(f"**{number}. {card.title}**  \n{facts}  \n{because}")
    if reply.comparison is not None:
        lines.append(render_comparison(reply.comparison))
    return "\n\n".join(lines)


def build_app(service: AssistantService) -> gr.Blocks:
    """The chat page: a conversation, quick-reply options and a text box."""

    def start(request: gr.Request):
        reply = service.start(request.session_hash)
        return [{"role": "assistant", "content": render(reply)}], gr.Radio(
            choices=list(reply.options), value=None
        )

    def respond(message: str, history: list, request: gr.Request):
        if not message or not message.strip():
            yield "", history, gr.skip()
            return
        session = request.session_hash
        reply = service.send(session, message)
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": render(reply)},
        ]
        yield "", history, gr.Radio(choices=list(reply.options), value=None)
        if not service.rewords or not reply.cards:
            return
        shown = {card.item_id: card.explanation.text for card in reply.cards}
        for item_id, step in service.reword(session, reply.cards):
            if step.text != shown[item_id]:
                shown[item_id] = step.text
                history[-1] = {"role": "assistant", "content": render(reply, shown)}
                yield gr.skip(), history, gr.skip()

    with gr.Blocks(title="Concierge", analytics_enabled=False) as app:
        gr.Markdown("## Concierge\nTell me what you are shopping for; pick a quick reply or type.")
        chat = gr.Chatbot(label="Concierge", height=640)
        options = gr.Radio(choices=[], label="Quick replies", elem_id="quick-replies")
        box = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, elem_id="message")
        app.load(start, outputs=[chat, options])
        # No queueing behind other shoppers' events: the service takes concurrent turns (a lock per session).
        box.submit(respond, inputs=[box, chat], outputs=[box, chat, options], concurrency_limit=None)
        options.input(
            respond,
            inputs=[options, chat],
            outputs=[box, chat, options],
            api_name="choose",
            concurrency_limit=None,
        )
    return app
