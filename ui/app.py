"""The Gradio shopper chat: a thin client of :class:`assistant.service.AssistantService`.

Conversation state stays on the server under Gradio's per-browser-tab session hash; the page only holds what it
displays.
"""

from __future__ import annotations

import gradio as gr

from assistant.conversation import Reply
from assistant.service import AssistantService


def render(reply: Reply) -> str:
    """A reply as Markdown: the text, then one numbered line per pick with its reason."""
    lines = [reply.text]
    lines.extend(f"**{n}. {pick.title}**  \n{pick.reason}" for n, pick in enumerate(reply.picks, start=1))
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
