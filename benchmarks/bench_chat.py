"""How the Gradio shopper chat holds up with many shoppers at once, measured as a user meets it: over loopback with
``gradio_client``.

Usage:
    python -m benchmarks.bench_chat [--shoppers 20] [--turns 6] [--json]

Builds the assistant on the bundled sample as ``make demo`` serves it (its built indexes and trained ranking
layer; sessions in memory so that disk speed is not measured), serves the chat and the API in one process
(:func:`ui.serve.make_server`) on a free port of 127.0.0.1, then:

- **one shopper**: a client says the needs of :data:`benchmarks.bench_turns.NEEDS` in turn, each turn timed;
- **at once**: ``--shoppers`` clients, one thread each, each its own browser session, each saying ``--turns``
  messages (a need new to the process, a category label of the catalog, then "show me products", and so on);
  every turn timed, errors counted (an exception, or a reply that is the service's failure text).

A turn's time is from the call to the final output (with no language model configured, the cards' reply is the
final output). The chat's events run without Gradio's default limit of one at a time (``concurrency_limit=None``
in :mod:`ui.app`): the service takes concurrent turns, with a lock per session.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_chat", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--shoppers", type=int, default=20, help="shoppers chatting at once")
    parser.add_argument("--turns", type=int, default=6, help="messages per shopper at once")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from dataclasses import replace

    from gradio_client import Client

    from assistant.build import build_assistant
    from assistant.service import FAILURE_TEXT
    from assistant.sessions import MemoryStore
    from benchmarks.bench_turns import NEEDS, fresh_needs, percentiles
    from benchmarks.loopback import free_port
    from data.settings import load_settings
    from ui.serve import make_server

    settings = load_settings()
    settings = replace(settings, server=replace(settings.server, port=free_port()))
    assistant = build_assistant(settings, store=MemoryStore())
    server = make_server(assistant.service, settings.server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.server.host}:{settings.server.port}/"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            print("error: the server did not start within 60 s", file=sys.stderr)
            return 1
        time.sleep(0.1)

    def say(client: Client, text: str) -> str:
        # The first reply gives the conversation's id (a browser keeps it in its storage); later turns send it.
        _, history, *_, sid = client.predict(text, [], getattr(client, "chat_id", None), api_name="/respond")
        client.chat_id = sid
        content = history[-1]["content"]
        return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)

    try:
        alone: list[float] = []
        client = Client(url, verbose=False)
        say(client, NEEDS[0])  # warm-up
        for need in NEEDS:
            for text in (need, "show me products"):
                started = time.perf_counter()
                say(client, text)
                alone.append(time.perf_counter() - started)

        fresh = fresh_needs(assistant.shop.facets, args.shoppers * args.turns)
        together: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def shopper(n: int) -> None:
            try:
                client = Client(url, verbose=False)
            except Exception as error:
                with lock:
                    errors.append(f"shopper {n}: no client: {error!r}")
                return
            for turn in range(args.turns):
                text = fresh[(n * args.turns + turn) % len(fresh)] if turn % 2 == 0 else "show me products"
                started = time.perf_counter()
                try:
                    failed = FAILURE_TEXT in say(client, text)
                except Exception as error:
                    failed = True
                    with lock:
                        errors.append(f"shopper {n}: {error!r}")
                took = time.perf_counter() - started
                with lock:
                    together.append(took)
                    if failed:
                        errors.append(f"shopper {n}: failure reply")

        started = time.perf_counter()
        threads = [threading.Thread(target=shopper, args=(n,)) for n in range(args.shoppers)]
        for worker in threads:
            worker.start()
        for worker in threads:
            worker.join()
        wall = time.perf_counter() - started
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    document = {
        "ranking": assistant.ranking,
        "one_shopper": percentiles(alone),
        "at_once": {
            **percentiles(together),
            "shoppers": args.shoppers,
            "wall_s": wall,
            "errors": len(errors),
        },
        "error_examples": errors[:3],
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"Gradio chat over loopback (gradio_client); ranking: {assistant.ranking}")
    print(f"{'turns':28} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    row = document["one_shopper"]
    print(f"{'one shopper':28} {row['n']:>4} {row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f}")
    row = document["at_once"]
    print(
        f"{f'{args.shoppers} shoppers at once':28} {row['n']:>4} {row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f}"
        f"   ({row['errors']} errors, {row['wall_s']:.1f} s)"
    )
    for example in document["error_examples"]:
        print(f"  e.g. {example}")
    print(f"load average {document['load_average']:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
