"""How many word pieces the bi-encoder should read: embedding speed against vector recall, per window length.

Usage:
    python -m benchmarks.bench_embeddings [--lengths 256,128,64] [--shopper specific|vague]
        [--order facets-first|need-first] [--json]

For each window length (the model's ``max_seq_length``), embeds the bundled sample's item texts
(:func:`retrieval.embeddings.item_text`) on the CPU, timed, and measures exact vector recall@100 on the cold-start
benchmark's test episodes: for each shopper's profile, the query text and its context
(:func:`retrieval.profile.profile_query`) are embedded at the same length and the 100 nearest allowed items (exact
cosine over the items the profile's hard filters allow) are checked for the target. This is the vector channel
alone, without Chroma, lexical search or popularity, so that only the window changes. It also prints how long the
item texts are in word pieces.

The simulated shopper is by default the one the documented figures (``docs/benchmarks.md``) were measured with:
``specific`` need statements, facets answered first; ``--shopper vague --order need-first`` runs the current
headline shopper instead (see :mod:`benchmarks.bench_candidates`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from benchmarks.bench_candidates import _episodes, _profile_sets, add_shopper_options
from data.load import load_catalog, load_interactions
from data.settings import load_settings
from retrieval.embeddings import MAX_TOKENS, _load_model, item_text
from retrieval.filters import FilterIndex
from retrieval.profile import profile_query

ANSWERS = ("K=3", "K=5", "need only")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_embeddings", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--lengths", default="256,128,64", help="window lengths in word pieces, comma-separated"
    )
    add_shopper_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    args = parser.parse_args(argv)
    lengths = [int(length) for length in args.lengths.split(",") if length.strip()]

    settings = load_settings()
    catalog, _ = load_catalog(settings.paths.catalog)
    interactions, _ = load_interactions(settings.paths.interactions, catalog)
    facets, _, shoppers = _episodes(
        catalog, interactions, settings.eval, vocabulary=args.shopper, order=args.order
    )
    targets = [catalog.position(shopper.episode.target) for shopper in shoppers]
    sets = _profile_sets(shoppers, (3, 5))
    filter_index = FilterIndex(catalog)
    model = _load_model()
    texts = [item_text(item) for item in catalog]
    pieces = np.array([len(model.tokenizer(text, truncation=False)["input_ids"]) for text in texts])
    document: dict[str, object] = {
        "items": len(catalog),
        "episodes": len(shoppers),
        "shopper": {"vocabulary": args.shopper.value, "order": args.order.value},
        "word_pieces": {
            "p50": float(np.percentile(pieces, 50)),
            "p90": float(np.percentile(pieces, 90)),
            "max": int(pieces.max()),
            "share_over_128": float((pieces > 128).mean()),
        },
        "default": MAX_TOKENS,
        "lengths": [],
    }
    try:
        for length in lengths:
            model.max_seq_length = length
            model.encode(texts[:64], batch_size=64)  # warm-up
            started = time.perf_counter()
            matrix = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            seconds = time.perf_counter() - started
            recall = {}
            for label in ANSWERS:
                queries = [profile_query(profile, facets) for profile in sets[label]]
                vectors = model.encode(
                    [f"{q.text} {q.context}".strip() for q in queries],
                    batch_size=64,
                    normalize_embeddings=True,
                )
                found = 0
                for query, vector, target in zip(queries, vectors, targets, strict=True):
                    allowed = np.flatnonzero(filter_index.mask(query.filters))
                    best = allowed[np.argsort(-(matrix[allowed] @ vector), kind="stable")[:100]]
                    found += int(target in best)
                recall[label] = found / len(queries)
            document["lengths"].append(
                {
                    "max_tokens": length,
                    "items_per_s": len(texts) / seconds,
                    "seconds": seconds,
                    "recall": recall,
                }
            )
    finally:
        model.max_seq_length = MAX_TOKENS
    document["load_average"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    shape = document["word_pieces"]
    print(
        f"{len(catalog):,} item texts: word pieces p50 {shape['p50']:.0f}, p90 {shape['p90']:.0f}, max "
        f"{shape['max']}, {shape['share_over_128']:.0%} over 128; {len(shoppers)} test episodes ({args.shopper} "
        f"need statements, {args.order})"
    )
    for row in document["lengths"]:
        marks = "  ".join(f"{label} {value:.3f}" for label, value in row["recall"].items())
        default = " (default)" if row["max_tokens"] == MAX_TOKENS else ""
        print(
            f"max_seq_length {row['max_tokens']}{default}: {row['items_per_s']:.1f} items/s "
            f"({row['seconds']:.1f} s); exact vector recall@100: {marks}"
        )
    print(f"load average {document['load_average']:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
