"""The Gradio shopper chat: a thin client of :class:`assistant.service.AssistantService`.

What the shopper sees: the conversation; quick replies for the current question; the cards of the latest slate,
each with its picture (where the catalog has one), thumbs up and down and "More like this"; a choice of two or three
cards to compare (the comparison comes back as a table); and "Talk to a person". Each card's text (title, brand,
category, price where known, the explanation, a mark on a generated description) is part of the assistant's message
in the conversation, so the conversation reads whole.

The conversation lives on the server, in the service's session store, under a session id kept in the browser's
local storage (:class:`gradio.BrowserState`): a reload of the page, or a second tab, continues the same conversation,
rebuilt from the stored transcript and slate. The chat makes its session ids itself and opens no other
(:func:`chat_session_id`); a client without browser storage (``gradio_client``) passes back the id the first reply
gave it. The page holds only what it displays.

Cards never wait for the language model: a reply is shown at once with template explanations, and when a model is
configured its checked wording of each explanation then streams into the cards, a sentence at a time
(:meth:`assistant.service.AssistantService.reword`). Events run concurrently (the service is safe with
concurrent shoppers and a local model serialises itself), so one shopper's streaming never queues another's turn.
A timer asks the store every few seconds for lines the page has not shown (a person from the store writing, a
product they pushed), so a customer-service agent's messages appear without the shopper doing anything.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence

import gradio as gr

from assistant.engine import Card, Comparison, Reply, quick_replies
from assistant.service import AssistantService
from ui.api_models import CHAT_SESSION_PREFIX, HANDOVER_MESSAGE

# Where the page keeps its session id. The id is a random token, not a secret from the page's own scripts, and the
# key is fixed so that every server process (and a restarted one) reads what another wrote.
STORAGE_KEY = "concierge-session"
POLL_SECONDS = 3.0
AGENT_LABEL = "From our team"
MAX_COMPARED = 3
_CHAT_SESSION_ID = re.compile(re.escape(CHAT_SESSION_PREFIX) + r"[A-Za-z0-9_-]{22}")


def _cell(text: str) -> str:
    return _escape(text).replace("|", "\\|").replace("\n", " ")


def render_comparison(comparison: Comparison) -> str:
    """A comparison as a Markdown table: one column per item, the differing facts first."""
    header = "| | " + " | ".join(_cell(title) for title in comparison.titles) + " |"
    rule = "|---" * (len(comparison.titles) + 1) + "|"
    rows = [
        f"| **{_cell(name)}** | " + " | ".join(_cell(v) for v in values) + " |"
        for name, values in comparison.rows
    ]
    return "\n".join([header, rule, *rows])


def _escape(text: str) -> str:
    """Catalog or shopper text shown inside Markdown: no HTML tags, no Markdown links or images of its own."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("[", "\\[")


def render_card(number: int, card: Card, explanation: str | None = None) -> str:
    """One card as Markdown: picture, numbered title, facts, the explanation (``explanation`` replaces the
    template: a checked rewording), and a mark when it quotes a generated description."""
    facts = " · ".join(_escape(part) for part in (card.brand, card.category, card.price) if part)
    because = _escape(card.explanation.text if explanation is None else explanation)
    lines = [f"**{number}. {_escape(card.title)}**", facts, because]
    if card.explanation.generated:
        lines.append("*Described by our assistant from the catalog; not the maker's text.*")
    picture = f"![]({card.image_url})\n\n" if card.image_url.startswith("https://") else ""
    return picture + "  \n".join(line for line in lines if line)


def render(reply: Reply, explanations: Mapping[str, str] | None = None) -> str:
    """A reply as Markdown: the text, then one numbered block per card, then a comparison table.
    ``explanations``: item id -> the text to show instead of a card's template (a checked rewording)."""
    explanations = explanations or {}
    lines = [_escape(reply.text)]
    for number, card in enumerate(reply.cards, start=1):
        lines.append(render_card(number, card, explanations.get(card.item_id)))
    if reply.comparison is not None:
        lines.append(render_comparison(reply.comparison))
    return "\n\n".join(lines)


def _message(role: str, text: str) -> dict[str, str]:
    """A stored transcript line as a chat message: the shopper on the right, the assistant and people from the
    store on the left (a person's lines marked as theirs)."""
    if role == "shopper":
        return {"role": "user", "content": _escape(text)}
    if role == "agent":
        return {"role": "assistant", "content": f"**{AGENT_LABEL}:** {_escape(text)}"}
    return {"role": "assistant", "content": _escape(text)}


def chat_session_id() -> str:
    """A new id for a chat page's session: ``web-`` and 128 random bits.

    The chat opens only sessions whose ids it makes (:func:`is_chat_session_id`): a page, or a ``gradio_client``
    caller, that sends another id (an API session's, a messaging channel's, one guessed) gets a new session, never
    that one. A chat id itself is as hard to guess as the API's tokens.
    """
    return CHAT_SESSION_PREFIX + secrets.token_urlsafe(16)


def is_chat_session_id(sid: object) -> bool:
    """Whether ``sid`` has the shape of :func:`chat_session_id`'s ids.

    Example:
        >>> is_chat_session_id(chat_session_id()), is_chat_session_id("web-1"), is_chat_session_id(None)
        (True, False, False)
    """
    return isinstance(sid, str) and _CHAT_SESSION_ID.fullmatch(sid) is not None


def _card_view(cards: Sequence[Card]) -> list[dict[str, str]]:
    """What the page keeps of the slate to draw the card buttons: ids, titles, pictures."""
    return [{"item_id": c.item_id, "title": c.title, "image_url": c.image_url} for c in cards]


def build_app(service: AssistantService) -> gr.Blocks:
    """The chat page: the conversation, quick replies, a text box, and the latest cards with their buttons."""

    def session_of(sid: str | None) -> str:
        """The page's session id when the chat gave it one, else a new one (see :func:`chat_session_id`)."""
        return sid if is_chat_session_id(sid) else chat_session_id()

    def outputs(
        sid: str,
        history: list,
        options: Sequence[str],
        cards: Sequence[Card],
        lines: int,
        typed: bool = False,
    ) -> tuple:
        """box, chat, quick replies, the card view, the compare choice, transcript lines shown, session id.
        ``typed``: what the shopper is typing and the cards they ticked stay as they are (an update they did not
        ask for)."""
        return (
            gr.skip() if typed else "",
            history,
            list(options),
            _card_view(cards),
            gr.skip() if typed else gr.CheckboxGroup(choices=_compare_choices(cards), value=[]),
            lines,
            sid,
        )

    def start(sid: str | None) -> tuple:
        """A new page: the stored conversation when this browser has one, else a new one."""
        sid = session_of(sid)
        view = service.view(sid)
        if view is None or not view.transcript:
            reply = service.start(sid)
            return outputs(sid, [_message("assistant", reply.text)], reply.options, (), 1)
        conversation = view.conversation
        history = [_message(role, text) for role, text in view.transcript]
        if conversation.slate:
            cards = [render_card(n, card) for n, card in enumerate(conversation.slate, start=1)]
            history.append({"role": "assistant", "content": "\n\n".join(cards)})
        return outputs(sid, history, quick_replies(conversation), conversation.slate, len(view.transcript))

    def turn(sid: str, said: str, history: list, act) -> Iterator[tuple]:
        """Run one shopper action and show its reply; then stream the checked rewordings into its cards."""
        reply = act()
        history = [
            *history,
            _message("shopper", said),
            {"role": "assistant", "content": render(reply)},
        ]
        view = service.view(sid)
        cards = reply.cards or (view.conversation.slate if view else ())
        yield outputs(sid, history, reply.options, cards, len(view.transcript) if view else 0)
        if not service.rewords or not reply.cards:
            return
        shown = {card.item_id: card.explanation.text for card in reply.cards}
        for item_id, text in service.explanation_updates(sid, reply.cards):
            shown[item_id] = text
            history[-1] = {"role": "assistant", "content": render(reply, shown)}
            yield (gr.skip(), history, *(gr.skip(),) * 5)

    def respond(message: str, history: list, sid: str | None):
        if not isinstance(message, str) or not message.strip():
            yield (gr.skip(),) * 7
            return
        sid = session_of(sid)
        yield from turn(sid, message, history, lambda: service.send(sid, message))

    def rate(number: int, liked: bool):
        def handler(history: list, cards: list, sid: str | None):
            sid = session_of(sid)
            if number > len(cards):
                yield (gr.skip(),) * 7
                return
            card = cards[number - 1]
            said = f"{'Liked' if liked else 'Not for me'}: {card['title']}"
            yield from turn(sid, said, history, lambda: service.feedback(sid, card["item_id"], liked))

        return handler

    def more_like(number: int):
        def handler(history: list, sid: str | None):
            sid = session_of(sid)
            said = f"more like #{number}"
            yield from turn(sid, said, history, lambda: service.send(sid, said))

        return handler

    def choose(label: str):
        def handler(history: list, sid: str | None):
            yield from respond(label, history, sid)

        return handler

    def compare(chosen: list, history: list, sid: str | None):
        sid = session_of(sid)
        numbers = sorted(int(str(choice).split(".", 1)[0]) for choice in chosen or ())
        if not 2 <= len(numbers) <= MAX_COMPARED:
            gr.Warning(f"Pick two or three cards to compare (you picked {len(numbers)}).")
            yield (gr.skip(),) * 7
            return
        said = "compare " + ", ".join(f"#{n}" for n in numbers[:-1]) + f" and #{numbers[-1]}"
        yield from turn(sid, said, history, lambda: service.send(sid, said))

    def person(history: list, sid: str | None):
        sid = session_of(sid)
        yield from turn(sid, "Talk to a person", history, lambda: service.send(sid, HANDOVER_MESSAGE))

    def poll(history: list, seen: int, sid: str | None):
        """Lines stored since the page last drew (a person from the store writing, a pushed product)."""
        sid = session_of(sid)
        view = service.view(sid)
        if view is None or len(view.transcript) <= (seen or 0):
            return (gr.skip(),) * 7
        new = [_message(role, text) for role, text in view.transcript[seen:]]
        conversation = view.conversation
        return outputs(
            sid,
            [*history, *new],
            quick_replies(conversation),
            conversation.slate,
            len(view.transcript),
            typed=True,
        )

    with gr.Blocks(title="Concierge", analytics_enabled=False) as app:
        sid = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_KEY)
        seen = gr.State(0)
        cards = gr.State([])
        gr.Markdown("## Concierge\nTell me what you are shopping for; pick a quick reply or type.")
        chat = gr.Chatbot(label="Concierge", height=560, elem_id="chat")
        options = gr.State([])
        box = gr.Textbox(
            placeholder="Type a message and press Enter", show_label=False, elem_id="message", render=False
        )
        shared = [box, chat, options, cards]
        every = [*shared]  # filled below with the compare choice, lines shown and the session id

        @gr.render(inputs=[options])
        def draw_quick_replies(labels: list) -> None:
            if not labels:
                return
            with gr.Row(elem_id="quick-replies"):
                for label in labels:
                    button = gr.Button(label, size="sm", elem_classes=["quick-reply"], min_width=130, scale=0)
                    button.click(choose(label), [chat, sid], every, concurrency_limit=None)

        box.render()

        @gr.render(inputs=[cards])
        def draw_cards(shown: list) -> None:
            if not shown:
                return
            with gr.Row(elem_id="cards"):
                for number, card in enumerate(shown, start=1):
                    with gr.Column(min_width=100, elem_classes=["card"]):
                        if card["image_url"].startswith("https://"):
                            gr.HTML(
                                f'<img src="{html.escape(card["image_url"])}" alt="" style="max-height:120px">'
                            )
                        gr.Markdown(f"**{number}. {_escape(card['title'])}**")
                        with gr.Row():
                            up = gr.Button("Like", size="sm", elem_id=f"like-{number}", min_width=40)
                            down = gr.Button(
                                "Not for me", size="sm", elem_id=f"dislike-{number}", min_width=40
                            )
                        more = gr.Button("More like this", size="sm", elem_id=f"more-{number}")
                    up.click(rate(number, True), [chat, cards, sid], every, concurrency_limit=None)
                    down.click(rate(number, False), [chat, cards, sid], every, concurrency_limit=None)
                    more.click(more_like(number), [chat, sid], every, concurrency_limit=None)

        with gr.Row():
            compared = gr.CheckboxGroup(
                choices=[], label="Compare two or three cards", elem_id="compare-choice"
            )
            compare_button = gr.Button("Compare", elem_id="compare", scale=0)
            person_button = gr.Button("Talk to a person", elem_id="talk-to-a-person", scale=0)
        every.extend([compared, seen, sid])
        timer = gr.Timer(POLL_SECONDS)

        app.load(start, inputs=[sid], outputs=every)
        # No queueing behind other shoppers' events: the service takes concurrent turns (a lock per session).
        box.submit(respond, inputs=[box, chat, sid], outputs=every, concurrency_limit=None)
        compare_button.click(compare, [compared, chat, sid], every, concurrency_limit=None)
        person_button.click(person, [chat, sid], every, concurrency_limit=None)
        timer.tick(poll, [chat, seen, sid], every, concurrency_limit=None, show_progress="hidden")
    return app


def _compare_choices(cards: Sequence[Card]) -> list[str]:
    return [f"{number}. {card.title}" for number, card in enumerate(cards, start=1)]
