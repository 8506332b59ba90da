"""How often the language model's wording of an explanation passes the fact check, and what a shopper is shown.

Usage:
    python -m benchmarks.bench_explanations [--provider local] [--model auto] [--cards 60] [--json]

Builds the assistant on the bundled sample as ``make demo`` does (sessions in memory), has one session per need of
:data:`benchmarks.bench_turns.NEEDS` say its need, ask to see products and ask for more like the first card (so
that some explanations carry the evidence of a liked item), and for each card shown (up to ``--cards``) asks the
model to rephrase its template sentence (:func:`assistant.explain.rephrase_explanation`). Reports the share of
rephrasings accepted by the check (:func:`assistant.explain.audit`), the rejections by kind, the time per
rephrasing, and the number of shown texts (the accepted rephrasing, else the template) with an unsupported fact,
which must be 0. A rephrasing may use ordinary words of its own (the check leaves out new-word findings) but no
number, model code, brand, name or claim the catalog, the store's history and the shopper's words lack.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_explanations", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--provider", default="local", help="llm provider: local, openai or none")
    parser.add_argument("--model", default="auto", help="llm model (local: auto or a package name)")
    parser.add_argument("--cards", type=int, default=60, help="most cards to rephrase")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.build import build_assistant
    from assistant.explain import audit, rephrase_explanation
    from assistant.grounding import catalog_brands
    from assistant.llm import get_chat_model, model_name
    from assistant.sessions import MemoryStore
    from benchmarks.bench_turns import NEEDS
    from data.settings import load_settings

    settings = load_settings(llm={"provider": args.provider, "model": args.model})
    assistant = build_assistant(settings, store=MemoryStore())
    model = get_chat_model(settings)
    shop, service = assistant.shop, assistant.service
    brands = catalog_brands(shop.catalog)
    outcomes: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    seconds: list[float] = []
    unsupported_shown = 0
    examples: list[dict[str, str]] = []
    done = 0
    for n, need in enumerate(NEEDS):
        session = f"explain-{n}"
        service.send(session, need)
        for message in ("show me products", "more like #1"):
            reply = service.send(session, message)
            profile = service.view(session).conversation.profile
            for card in reply.cards:
                if done >= args.cards:
                    break
                done += 1
                item = shop.catalog[card.item_id]
                evidence = shop.evidence(card.item_id, profile.liked)
                generated = shop.generated.get(card.item_id, "")
                result = rephrase_explanation(
                    model, card.explanation, item, profile, brands, evidence, generated
                )
                outcomes[result.outcome.value] += 1
                seconds.append(result.seconds)
                if result.outcome.value == "rejected":
                    for kind in re.findall(r"^(\w+):|; (\w+):", result.reason):
                        rejected[next(k for k in kind if k)] += 1
                shown = result.text
                shown_as = replace(card.explanation, text=shown)
                if audit(
                    shown_as,
                    item,
                    profile,
                    brands,
                    evidence,
                    generated,
                    words=result.outcome.value != "accepted",
                ):
                    unsupported_shown += 1
                if len(examples) < 4:
                    examples.append(
                        {
                            "template": card.explanation.text,
                            "model": result.raw_text,
                            "outcome": result.outcome.value,
                        }
                    )
    document = {
        "model": model_name(model),
        "cards": done,
        "outcomes": dict(outcomes),
        "accepted_share": outcomes["accepted"] / done if done else 0.0,
        "rejections_by_kind": dict(rejected.most_common()),
        "p50_s": float(np.percentile(seconds, 50)) if seconds else 0.0,
        "shown_with_unsupported_fact": unsupported_shown,
        "examples": examples,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"model: {document['model'] or 'none'}; {done} cards of the sample's conversations")
    print(
        f"rephrasings accepted by the fact check: {outcomes['accepted']} of {done} ({document['accepted_share']:.0%})"
    )
    print(f"outcomes: {dict(outcomes)}; p50 {document['p50_s']:.2f} s a rephrasing")
    print(f"rejections by finding kind: {dict(rejected.most_common())}")
    print(f"shown texts with a fact the catalog does not support: {unsupported_shown}")
    for example in examples[:2]:
        print(f"  template: {example['template']}\n  model ({example['outcome']}): {example['model']}")
    print(f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
