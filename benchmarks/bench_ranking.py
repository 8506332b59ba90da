"""The ranking layer's table: every reranker and its baselines, for each shopper vocabulary, without and with one
liked earlier item, in one process.

It runs :func:`assistant.evaluation.run_evaluation` once per (vocabulary, feedback) pair, exactly as ``concierge
eval --shopper V --feedback F`` does, but in one process so that the cross-encoders' score caches are shared
between the runs (the same profile text and item are scored once). Prints each table, writes the JSON of every
run with ``--json FILE``, and draws HR@10 against K for the headline run (vague, need-first, no feedback) with
``--plot FILE.png``.

    python -m benchmarks.bench_ranking --plot docs/ranking_hr.png --json artifacts/bench/ranking.json

Needs the trained reranker (``concierge train-reranker``); the ``paraphrased`` runs need stored paraphrases
(``concierge paraphrase``) and cover the test episodes whose target has one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from assistant.evaluation import format_table, plot_report, report_to_json, run_evaluation
from assistant.simulator import Order, Vocabulary
from data.load import load_catalog, load_interactions
from data.paraphrases import load_paraphrases, paraphrases_for
from data.settings import load_settings

SYSTEMS = (
    "faceted_popularity",
    "lexical",
    "hybrid",
    "bi_encoder_order",
    "cross_encoder_untrained",
    "cross_encoder",
    "hybrid_cross_encoder",
    "hybrid_prior",
    "blend",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument(
        "--shoppers", default="vague,paraphrased,specific", help="vocabularies, comma-separated"
    )
    parser.add_argument("--feedback", default="0,1", help="liked earlier items, comma-separated counts")
    parser.add_argument("--order", default="need-first", choices=("need-first", "facets-first"))
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated system names")
    parser.add_argument("--answers", default="1,2,3,4,5", help="K values, comma-separated")
    parser.add_argument("--episodes", type=int, help="cap on test episodes")
    parser.add_argument(
        "--validation", action="store_true", help="the validation episodes instead (to choose settings on)"
    )
    parser.add_argument("--json", type=Path, help="write every run's report here")
    parser.add_argument("--plot", type=Path, help="HR@10 against K of the first run, as a PNG")
    args = parser.parse_args(argv)

    settings = load_settings(args.config)
    catalog, _ = load_catalog(settings.paths.catalog)
    interactions, _ = load_interactions(settings.paths.interactions, catalog)
    paraphrases = paraphrases_for(catalog, load_paraphrases(settings.paths.paraphrases))
    systems = args.systems.split(",")
    answers = tuple(int(k) for k in args.answers.split(","))
    documents = []
    for shopper in args.shoppers.split(","):
        for feedback in (int(f) for f in args.feedback.split(",")):
            started = time.perf_counter()
            report = run_evaluation(
                catalog,
                interactions,
                settings,
                answers=answers,
                systems=systems,
                max_episodes=args.episodes,
                vocabulary=Vocabulary(shopper),
                order=Order(args.order),
                feedback=feedback,
                paraphrases=paraphrases,
                validation=args.validation,
            )
            flags = " --validation" if args.validation else ""
            print(f"## --shopper {shopper} --order {args.order} --feedback {feedback}{flags}", flush=True)
            print(format_table(report), flush=True)
            print(f"({time.perf_counter() - started:.0f} s)\n", flush=True)
            documents.append(report_to_json(report))
            if args.plot and len(documents) == 1:
                print(f"plot: {plot_report(report, args.plot)}", file=sys.stderr)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(documents, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
