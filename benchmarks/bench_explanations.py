"""How often the language model's wording of an explanation passes the fact check, and what a shopper is shown.

Usage:
    python -m benchmarks.bench_explanations [--provider local] [--model auto] [--cards 60]
        [--half validation|test|all] [--json]

Builds the assistant on the bundled sample as ``make demo`` does (sessions in memory), has one session per need of
:data:`benchmarks.bench_turns.NEEDS` say its need, ask to see products and ask for more like the first card (so
that some explanations carry the evidence of a liked item), and for each card shown (up to ``--cards``) asks the
model to rephrase its template sentence, streamed as a channel streams it (:func:`assistant.explain.
stream_explanation`: a sentence at a time, each checked before it is shown). Reports the share of rephrasings
accepted by the check (:func:`assistant.explain.audit`; one cut after a passing sentence counts as accepted, and
how many were cut is printed), the rejections by kind, the time to the model's first token, to the first text
shown from it, and to its end, and the number of shown texts (every step's text) with an unsupported fact, which
must be 0. ``--half``: the needs at odd positions of the list are the validation half (the prompt may be tuned
on them), those at even positions the test half. A rephrasing may add English function words, but no other
word, number, model code, brand, name or claim that the catalog, the store's history and the shopper's words lack.
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
    parser.add_argument("--half", choices=("validation", "test", "all"), default="all", help="which needs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.build import build_assistant
    from assistant.explain import audit, stream_explanation
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
    if model is not None:
        # One call before timing: the first reads the model file from disk (page faults), which no later turn pays.
        model.invoke([("human", "Say yes.")])
    outcomes: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    seconds: list[float] = []
    first_token: list[float] = []
    first_shown: list[float] = []
    cut = 0
    unsupported_shown = 0
    examples: list[dict[str, str]] = []
    done = 0
    halves = {"validation": 1, "test": 0}
    for n, need in enumerate(NEEDS):
        if args.half != "all" and n % 2 != halves[args.half]:
            continue
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
                started = time.perf_counter()
                shown_at = None
                for step in stream_explanation(
                    model, card.explanation, item, profile, brands, evidence, generated
                ):
                    from_model = step.done is None or step.done.used_model
                    if from_model and shown_at is None:
                        shown_at = time.perf_counter() - started
                    # Every text a channel would show, each step of it, must be sourced.
                    shown_as = replace(card.explanation, text=step.text)
                    if audit(shown_as, item, profile, brands, evidence, generated, words=not from_model):
                        unsupported_shown += 1
                result = step.done
                if step.first_token_s is not None:
                    first_token.append(step.first_token_s)
                if shown_at is not None:
                    first_shown.append(shown_at)
                outcomes[result.outcome.value] += 1
                cut += result.used_model and result.reason.startswith("cut")
                seconds.append(result.seconds)
                if result.outcome.value == "failed":
                    failed[result.reason.split(":")[0]] += 1
                if result.outcome.value == "rejected":
                    for kind in re.findall(r"^(\w+):|; (\w+):", result.reason):
                        rejected[next(k for k in kind if k)] += 1
                if len(examples) < 4 or (result.used_model and len(examples) < 6):
                    examples.append(
                        {
                            "template": card.explanation.text,
                            "model": result.raw_text,
                            "shown": result.text,
                            "outcome": result.outcome.value,
                        }
                    )

    def p(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    document = {
        "model": model_name(model),
        "half": args.half,
        "cards": done,
        "outcomes": dict(outcomes),
        "accepted_share": outcomes["accepted"] / done if done else 0.0,
        "cut_after_a_passing_sentence": int(cut),
        "rejections_by_kind": dict(rejected.most_common()),
        "failures_by_error": dict(failed.most_common()),
        "first_token_p50_s": p(first_token, 50),
        "first_token_p95_s": p(first_token, 95),
        "first_shown_p50_s": p(first_shown, 50),
        "p50_s": p(seconds, 50),
        "shown_with_unsupported_fact": unsupported_shown,
        "examples": examples,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"model: {document['model'] or 'none'}; {done} cards of the sample's conversations ({args.half} needs)"
    )
    print(
        f"rephrasings accepted by the fact check: {outcomes['accepted']} of {done} ({document['accepted_share']:.0%}),"
        f" {cut} of them cut after a passing sentence"
    )
    print(
        f"outcomes: {dict(outcomes)}; rejections by finding kind: {dict(rejected.most_common())}; "
        f"failures by error: {dict(failed.most_common())}"
    )

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:,.0f} ms"

    print(
        f"first token p50 {ms(document['first_token_p50_s'])}, p95 {ms(document['first_token_p95_s'])}; "
        f"first checked text shown p50 {ms(document['first_shown_p50_s'])}; whole rephrasing p50 "
        f"{ms(document['p50_s'])}"
    )
    print(f"shown texts with a fact the catalog does not support: {unsupported_shown}")
    for example in examples[:2] + [e for e in examples[2:] if e["outcome"] == "accepted"][:2]:
        print(
            f"  template: {example['template']}\n  model ({example['outcome']}): {example['model']}"
            + (f"\n  shown: {example['shown']}" if example["shown"] != example["template"] else "")
        )
    print(f"load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
