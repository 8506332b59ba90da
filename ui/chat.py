"""``concierge chat``: the assistant in the terminal, or a scripted conversation replayed as JSON.

``concierge chat`` reads shopper messages from the terminal and prints each reply (text, quick replies, cards
with their explanations). ``concierge chat --script FILE --json`` replays a conversation from a text file (one
shopper message per line; blank lines are skipped) and prints every turn as JSON: the message, the reply
(:func:`ui.replies.reply_to_json`: text, options, the question with its facet and options, cards with item id,
title, brand, category, price, image, explanation and score parts, a comparison) and the profile after it. Stores
use it to check how the assistant reads their catalog; tests use it as a real process. Sessions are kept in memory only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.engine import Reply
from data.settings import Settings
from ui.replies import reply_to_json

SESSION = "terminal"


def _print_reply(reply: Reply) -> None:
    print(f"concierge> {reply.text}")
    for number, card in enumerate(reply.cards, start=1):
        facts = " · ".join(part for part in (card.brand, card.category, card.price) if part)
        print(f"  {number}. {card.title}\n     {facts}\n     {card.explanation.text}")
    if reply.comparison is not None:
        print("  " + " | ".join(["", *reply.comparison.titles]))
        for name, values in reply.comparison.rows:
            print("  " + " | ".join([name, *values]))
    if reply.options:
        print("  [" + "] [".join(reply.options) + "]")


def _print_rewordings(service, reply: Reply) -> None:
    """After the printed cards, the model's checked wording of each card's explanation as it streams (nothing for
    a card whose wording did not pass: its template is already printed)."""
    numbers = {card.item_id: n for n, card in enumerate(reply.cards, start=1)}
    printed: dict[str, str] = {}
    for item_id, step in service.reword(SESSION, reply.cards):
        if step.done is not None and not step.done.used_model:
            continue
        before = printed.get(item_id, "")
        if step.text != before:
            if not before:
                print(f"  {numbers[item_id]}. ", end="")
            print(step.text[len(before) :] if step.text.startswith(before) else f" {step.text}", end="")
            printed[item_id] = step.text
        if step.done is not None:
            print()
        sys.stdout.flush()


def run_chat(settings: Settings, script: Path | None, as_json: bool) -> int:
    from assistant.build import build_assistant
    from assistant.sessions import MemoryStore
    from retrieval.errors import RetrievalError

    if script is not None:
        try:
            messages = [
                line for line in Path(script).read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        except (OSError, UnicodeDecodeError) as error:
            print(f"error: {script}: cannot read the script ({error})", file=sys.stderr)
            return 1
    try:
        assistant = build_assistant(settings, store=MemoryStore())
    except RetrievalError as error:
        print(f"error: {error}; run `concierge build` first", file=sys.stderr)
        return 1
    service = assistant.service
    greeting = service.start(SESSION)
    if script is None:
        print(f"(ranking: {assistant.ranking}; Ctrl+D ends)")
        _print_reply(greeting)
        for line in sys.stdin:
            reply = service.send(SESSION, line.rstrip("\n"))
            _print_reply(reply)
            if service.rewords:
                _print_rewordings(service, reply)
        return 0
    turns = [{"message": None, "reply": reply_to_json(greeting)}]
    for message in messages:
        reply = service.send(SESSION, message)
        profile = service.view(SESSION).conversation.profile.to_dict()
        turns.append({"message": message, "reply": reply_to_json(reply), "profile": profile})
        if not as_json:
            print(f"shopper> {message}")
            _print_reply(reply)
    if as_json:
        print(json.dumps({"ranking": assistant.ranking, "turns": turns}, indent=2))
    return 0
