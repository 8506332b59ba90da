"""The wire types of the HTTP API (:mod:`ui.api`): what a request may carry and what a response holds.

They make the OpenAPI document (``/openapi.json``) exact. Replies are not built here: they come from
:func:`ui.replies.reply_to_json`, the one serialisation of a reply, and are only validated against these types.
Requests are strict: a string field takes only a string, ``liked`` only ``true`` or ``false``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.service import MAX_SESSION_ID

# Safe in a URL path and a log line; long enough for a channel's own ids ("whatsapp:+15550100").
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"
SESSION_ID_RULE = (
    f"1 to {MAX_SESSION_ID} characters: letters, digits and . _ : @ + - (starting with a letter or digit)"
)
# The ids each channel makes for its own sessions: the chat's, Telegram's, the signed webhook's. A client of the API
# may not open a session under one of them (it would read and write that channel's shopper's conversation).
CHAT_SESSION_PREFIX = "web-"
TELEGRAM_SESSION_PREFIX = "telegram:"
WEBHOOK_SESSION_PREFIX = "webhook:"
CHANNEL_SESSION_PREFIXES = (CHAT_SESSION_PREFIX, TELEGRAM_SESSION_PREFIX, WEBHOOK_SESSION_PREFIX)
# What a shopper writes to ask for a person: the API's hand-over endpoint and the chat's button send it, so every way
# of asking takes the engine's one path.
HANDOVER_MESSAGE = "talk to a person"


class _Request(BaseModel):
    model_config = ConfigDict(strict=True)


class NewSession(_Request):
    """Open a session; without ``session_id`` the server chooses one."""

    session_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SESSION_ID,
        pattern=SESSION_ID_PATTERN,
        description=f"The client's own id for the session, {SESSION_ID_RULE}.",
        examples=["s-42"],
    )


class Message(_Request):
    """What the shopper wrote (a quick reply is sent as its label, e.g. ``"HP"``)."""

    text: str = Field(
        description="The message; at most [server] max_message_chars characters (413 beyond).",
        examples=["printer ink under $30"],
    )

    @field_validator("text")
    @classmethod
    def _has_text(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the message needs some text, not only spaces")
        return text


class Feedback(_Request):
    """A thumbs up (``liked: true``) or down on an item of the catalog."""

    item_id: str = Field(min_length=1, description="An item id, as on a card.", examples=["B00AZ1J3S4"])
    liked: bool


class Question(BaseModel):
    """The question the assistant asked."""

    facet: str = Field(description='The facet asked about ("brand", "category_2", ...).')
    text: str
    options: list[str] = Field(description='The values offered (the reply\'s options add "No preference").')


class ScoreParts(BaseModel):
    """Why an item ranked where it did: each part as the blend used it, ``null`` when not used."""

    retrieval: float | None
    cross_encoder: float | None
    prior: float | None
    final: float


class Card(BaseModel):
    """One recommended item."""

    item_id: str
    title: str
    brand: str = Field(description='"" when the catalog has none (so for category and price).')
    category: str
    price: str = Field(description='As shown, e.g. "$12.99".')
    image_url: str
    explanation: str = Field(description="Why it fits: built from catalog facts (a template sentence).")
    generated_description: bool = Field(description="The explanation quotes a generated description.")
    parts: ScoreParts


class Comparison(BaseModel):
    """Items side by side: one row per catalog fact (its name, then one value per item), differences first."""

    item_ids: list[str]
    titles: list[str]
    rows: list[tuple[str, list[str]]]


class Reply(BaseModel):
    """What the assistant said in one turn."""

    text: str
    options: list[str] = Field(description="Quick replies: send one back as a message's text.")
    question: Question | None
    cards: list[Card]
    comparison: Comparison | None
    handover: bool = Field(description="A person has been asked for; the assistant stops answering.")


class SessionCreated(BaseModel):
    session_id: str
    token: str = Field(
        description="The session's bearer token: every later request on the session sends "
        "`Authorization: Bearer <token>`; without it a request is 401, with another session's 403."
    )
    reply: Reply = Field(description="The greeting.")


class Slot(BaseModel):
    """One wish of the shopper."""

    facet: str
    op: str = Field(description='"=", "!=", "<", ">" or "between".')
    value: str | float | list[float] = Field(description="A value key, an amount, or [low, high].")
    said: str = Field(description="The words that set it.")
    turn: int


class Profile(BaseModel):
    """What the shopper has said so far."""

    slots: list[Slot]
    need: str = Field(description="The needs said in words, latest first.")
    liked: list[str]
    disliked: list[str]
    shown: list[str] = Field(description="Every item shown so far.")


class ShownItem(BaseModel):
    item_id: str
    title: str = Field(description='"" when the item has left the catalog.')


class Line(BaseModel):
    """One line of the transcript."""

    role: str = Field(description='"shopper", "assistant" or "agent".')
    text: str


class SessionState(BaseModel):
    """A session as stored."""

    session_id: str
    version: int = Field(description="Grows with every change to the session.")
    turn: int = Field(description="Shopper messages so far.")
    profile: Profile
    question: Question | None = Field(description="The question awaiting an answer.")
    on_screen: list[ShownItem] = Field(description='The items of the last slate, in card order ("#2").')
    transcript: list[Line]
    handover: bool


class Explanation(BaseModel):
    """A streamed ``explanation`` event: the checked wording of one card's explanation so far."""

    item_id: str
    text: str


class ErrorDetail(BaseModel):
    code: str = Field(
        description="unknown_session, session_exists, malformed_json, missing_field, invalid_field, "
        "invalid_session_id, unknown_item, message_too_long, body_too_large, rate_limited, not_found, "
        "method_not_allowed"
    )
    message: str
    field: str | None = Field(description="The request field at fault, when one is.")


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail
