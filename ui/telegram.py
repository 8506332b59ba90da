"""Telegram Bot API updates as assistant turns, and a reply as the ``sendMessage`` call that answers the webhook.

An update (https://core.telegram.org/bots/api#update) becomes one :class:`TelegramTurn` of the chat's session
``telegram:<chat id>``:

- ``message`` with ``text``: ``/start`` opens the session over (the greeting); any other text is sent as the
  shopper's message. A message without text (a sticker, a photo) gets a polite request for text.
- ``callback_query`` (a press on an inline button of a message the bot sent): ``say:<label>`` sends a quick
  reply's label; ``up:<item_id>`` and ``down:<item_id>`` are a thumbs up or down on a card's item.
- Anything else (an edited message, a channel post, a button of an unknown kind) is no turn at all.

The answer (:func:`send_message`) is the reply's text, then each card as a numbered line (title, brand, price)
with its explanation below, then a comparison's rows; its inline keyboard has the quick replies, two a row, and
a 👍 and a 👎 button per card. Telegram allows at most 64 bytes of ``callback_data``: a quick reply whose label
is longer is sent as its 1-based number among the question's options (which the engine takes as that option; a
follow-up such as "Show me others" is short), and a card whose item id is too long gets no buttons (the shopper
can still write "I like #2").

Example:
    >>> turn = turn_of(Update.model_validate({"update_id": 1, "message": {"chat": {"id": 7}, "text": "pens"}}))
    >>> turn.session_id, turn.kind, turn.text
    ('telegram:7', 'say', 'pens')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from assistant.engine import Reply
from ui.api_models import TELEGRAM_SESSION_PREFIX

SESSION_PREFIX = TELEGRAM_SESSION_PREFIX
# Telegram refuses a longer message text (characters after entity parsing) and longer callback data (bytes).
MAX_TEXT_CHARS = 4096
MAX_CALLBACK_BYTES = 64
ASK_FOR_TEXT = "I can only read text. Tell me what you are shopping for, e.g. “printer ink under $30”."
_SAY, _UP, _DOWN = "say:", "up:", "down:"


class Chat(BaseModel):
    id: int


class Message(BaseModel):
    """The part of a Telegram Message (or of an InaccessibleMessage under a callback query) a turn needs."""

    chat: Chat
    text: str | None = None


class CallbackQuery(BaseModel):
    id: str
    message: Message | None = None
    data: str | None = None


class Update(BaseModel):
    """A Telegram Update; the fields a turn does not need (``from``, ``date``, entities ...) are ignored."""

    update_id: int
    message: Message | None = None
    callback_query: CallbackQuery | None = None


@dataclass(frozen=True)
class TelegramTurn:
    """What an update asks of the assistant.

    Attributes:
        chat_id: The chat to answer in.
        kind: ``start`` (open the session over), ``say`` (send ``text``), ``feedback`` (``item_id``, ``liked``)
            or ``unreadable`` (a message without text: ask for text).
        text, item_id, liked: As ``kind`` needs them.
    """

    chat_id: int
    kind: Literal["start", "say", "feedback", "unreadable"]
    text: str = ""
    item_id: str = ""
    liked: bool = False

    @property
    def session_id(self) -> str:
        return f"{SESSION_PREFIX}{self.chat_id}"


def turn_of(update: Update) -> TelegramTurn | None:
    """The turn an update asks for, ``None`` when it asks for none."""
    if update.message is not None:
        chat_id, text = update.message.chat.id, update.message.text
        if text is None or not text.strip():
            return TelegramTurn(chat_id, "unreadable")
        # "/start", "/start@ConciergeBot" or "/start <deep-link payload>"
        if text.split(maxsplit=1)[0].split("@", 1)[0] == "/start":
            return TelegramTurn(chat_id, "start")
        return TelegramTurn(chat_id, "say", text=text)
    query = update.callback_query
    if query is None or query.message is None or not query.data:
        return None
    chat_id, data = query.message.chat.id, query.data
    if data.startswith(_SAY) and data[len(_SAY) :].strip():
        return TelegramTurn(chat_id, "say", text=data[len(_SAY) :])
    for prefix, liked in ((_UP, True), (_DOWN, False)):
        if data.startswith(prefix) and data[len(prefix) :]:
            return TelegramTurn(chat_id, "feedback", item_id=data[len(prefix) :], liked=liked)
    return None


def send_message(chat_id: int, reply: Reply) -> dict[str, object]:
    """The ``sendMessage`` method call (as a webhook's answer) that shows ``reply`` in the chat."""
    lines = [reply.text]
    for number, card in enumerate(reply.cards, 1):
        facts = " · ".join(fact for fact in (card.brand, card.price) if fact)
        lines.append(f"\n{number}. {card.title}" + (f" ({facts})" if facts else ""))
        if card.explanation.text:
            lines.append(card.explanation.text)
    if reply.comparison is not None:
        lines.append("\n" + " | ".join(reply.comparison.titles))
        lines.extend(f"{name}: {' | '.join(values)}" for name, values in reply.comparison.rows)
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 1] + "…"
    method: dict[str, object] = {"method": "sendMessage", "chat_id": chat_id, "text": text}
    keyboard = _keyboard(reply)
    if keyboard:
        method["reply_markup"] = {"inline_keyboard": keyboard}
    return method


def plain_message(chat_id: int, text: str) -> dict[str, object]:
    """A ``sendMessage`` call with ``text`` and no buttons."""
    return {"method": "sendMessage", "chat_id": chat_id, "text": text}


def _keyboard(reply: Reply) -> list[list[dict[str, str]]]:
    options = []
    for label in reply.options:
        data = _fits(_SAY + label)
        if data is None and reply.question is not None and label in reply.question.options:
            data = f"{_SAY}{reply.question.options.index(label) + 1}"
        if data is not None:
            options.append({"text": label, "callback_data": data})
    rows = [options[start : start + 2] for start in range(0, len(options), 2)]
    for number, card in enumerate(reply.cards, 1):
        up, down = _fits(_UP + card.item_id), _fits(_DOWN + card.item_id)
        if up is not None and down is not None:
            rows.append(
                [
                    {"text": f"👍 {number}", "callback_data": up},
                    {"text": f"👎 {number}", "callback_data": down},
                ]
            )
    return rows


def _fits(data: str) -> str | None:
    return data if len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES else None
