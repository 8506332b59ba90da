"""The Gradio shopper chat: a thin client of :class:`assistant.service.AssistantService`.

Conversation state stays on the server under Gradio's per-browser-tab session hash (in the service's session
store); the page only holds what it displays. Cards are Markdown for now: title, brand, category, price where
known, the explanation (a generated description is marked as such), and a comparison as a table.
"""

from __future__ import annotations

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


def render(reply: Reply) -> str:
    """A reply as Markdown: the text, then one numbered block per card, then a comparison table."""
    lines = [reply.text]
    for number, card in enumerate(reply.cards, start=1):
        facts = " · ".join(part for part in (card.brand, card.category, card.price) if part)
        lines.append(f"**{number}. {card.title}**  \n{facts}  \n{card.explanation.text}")
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
            return "", history, gr.Radio()
        reply = service.send(request.session_hash, message)
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": render(reply)},
        ]
        return "", history, gr.Radio(choices=list(reply.options), value=None)

    with gr.Blocks(title="Concierge", analytics_enabled=False) as app:
        gr.Markdown("## Concierge\nTell me what you are shopping for; pick a quick reply or type.")
        chat = gr.Chatbot(label="Concierge", height=640)
        options = gr.Radio(choices=[], label="Quick replies", elem_id="quick-replies")
        box = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, elem_id="message")
        app.load(start, outputs=[chat, options])
        box.submit(respond, inputs=[box, chat], outputs=[box, chat, options])
        options.input(respond, inputs=[options, chat], outputs=[box, chat, options], api_name="choose")
    return app
