"""How fast the cross-encoder reranker scores a profile's candidates, per backend, and how far each drifts from fp32.

Usage:
    python -m benchmarks.bench_reranker [--model DIR] [--backends torch,bf16,int8,onnx-int8]
        [--quality-lengths 64,48,32] [--quality-backend bf16]
        [--train-lengths 128,64] [--json]

Loads the trained reranker from ``--model`` (default ``<artifacts>/reranker``), or the untrained one (the packaged
MiniLM with a seeded head) when that folder holds no model (then ``onnx-int8``, which runs trained models only, is
skipped). The load time of ``onnx-int8`` includes its export the first time a trained model is loaded. Builds
``--queries`` (100) seeded need phrases like a shopper's profile text: the category leaf of a random catalog item
in lower case, for half of them followed by that item's category path and brand (what
:func:`retrieval.profile.profile_text` appends for answered facets). For each query it draws ``--candidates`` (50)
item texts (:func:`ranking.cross_encoder.reranker_text`, as the reranker reads them) and, per
backend, times one uncached scoring call of all of them: p50 and p95 milliseconds per call, the call's CPU time,
pairs per second, the load time, and how far the backend is from the ``torch`` (fp32) scores on the same pairs: the
largest absolute difference, the mean per-query Spearman correlation and the share of the fp32 top 10 it keeps.
The issue's budget: a 50-candidate call within 150 ms at p50 on 2 cores.

``--quality-lengths`` (e.g. ``64,48,40,32``) also loads the trained model at each window length under
``--quality-backend`` (bf16) and reports, beside the p50 of the same calls as above, its HR@10 and MRR on the
validation queries that choose the model's epoch in ``concierge train-reranker`` (the hybrid's candidates for
``ranking.reranker_validation_queries`` validation episodes; never test ones): what a faster, shorter window costs.

``--train-lengths`` also times training steps of :mod:`ranking.train_cross_encoder` (forward, backward, clipping
and AdamW with the word-piece embeddings frozen, on ``ranking.reranker_batch_size`` pairs of real item texts in
groups of a positive and four negatives) at each window length and ``--train-precisions``, and projects an epoch
of 3,000 such queries.

Torch's thread count is torch's own (all cores) unless ``--threads`` sets it. On a busy machine the CPU time of a
call (``cpu ms``) moves less than its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.facets import PATH_SEPARATOR
from data.load import load_catalog
from data.settings import load_settings
from ranking.cross_encoder import reranker_text

REFERENCE = "torch"
# The sample: about 3,000 training queries of five texts each.
PROJECTED_QUERIES = 3000
GROUP = 5


def _queries(catalog, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    items = [item for item in catalog if item.categories]
    out = []
    for index in range(count):
        item = rng.choice(items)
        need = item.categories[-1].lower()
        if index % 2:
            labels = [PATH_SEPARATOR.join(item.categories)] + ([item.brand] if item.brand else [])
            need = f"{need}. {', '.join(labels)}"
        out.append(need)
    return out


def _time_backend(
    scorer, queries: list[str], candidates: list[list[str]]
) -> tuple[list[float], list[float], np.ndarray]:
    """Wall and CPU seconds of each call (CPU: all threads of the process), and the scores."""
    scorer.score(queries[0], candidates[0])  # warm-up
    wall, cpu, scores = [], [], []
    for query, texts in zip(queries, candidates, strict=True):
        started, used = time.perf_counter(), time.process_time()
        scores.append(scorer.score(query, texts))
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return wall, cpu, np.stack(scores)


def _quality_by_length(
    settings,
    catalog,
    folder: Path,
    lengths: list[int],
    backend: str,
    queries: list[str],
    candidates: list[list[str]],
) -> list[dict[str, object]]:
    """Per window length: the p50 of a call on the speed queries, and validation HR@10 and MRR."""
    from assistant.train_ranking import RankingData
    from data.load import load_interactions
    from data.paraphrases import load_paraphrases, paraphrases_for
    from ranking.cross_encoder import load_scorer
    from ranking.train_cross_encoder import validation_metrics

    interactions, _ = load_interactions(settings.paths.interactions, catalog)
    paraphrases = paraphrases_for(catalog, load_paraphrases(settings.paths.paraphrases))
    checks = RankingData.build(settings, catalog, interactions, paraphrases).validation_queries(settings)
    rows = []
    for length in lengths:
        scorer = load_scorer(folder, backend, length, settings.ranking.reranker_batch_size)
        seconds, _, _ = _time_backend(scorer, queries, candidates)
        figures = validation_metrics(scorer, checks)
        rows.append(
            {
                "max_length": length,
                "backend": backend,
                "p50_ms": float(np.percentile(seconds, 50) * 1000),
                "hr@10": figures["hr@10"],
                "mrr": figures["mrr"],
                "validation_queries": len(checks),
            }
        )
    return rows


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(np.mean([spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]))


def _top_kept(scores: np.ndarray, reference: np.ndarray, k: int) -> float:
    """Mean share of each query's top ``k`` by ``reference`` that is also in its top ``k`` by ``scores``."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    wanted = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top, wanted, strict=True)]))


def _training_speed(
    texts: list[str], queries: list[str], length: int, precision: str, batch_size: int, steps: int
) -> dict:
    import torch

    from ranking.cross_encoder import base_cross_encoder
    from ranking.train_cross_encoder import MAX_GRAD_NORM, TrainingQuery, _step_loss, _steps, _trainable

    rng = random.Random(length)
    train = []
    for _ in range((steps + 1) * batch_size):
        positive, *negatives = rng.sample(texts, GROUP)
        train.append(TrainingQuery(rng.choice(queries), positive, tuple(negatives)))
    model = base_cross_encoder(length, seed=0)
    model.train()
    trained = _trainable(model)
    optimizer = torch.optim.AdamW(trained, lr=5e-5)
    step_seconds, step_cpu, step_pairs = [], [], []
    for step in list(_steps(train, list(range(len(train))), batch_size))[: steps + 1]:
        started, used = time.perf_counter(), time.process_time()
        loss = _step_loss(model, [train[i] for i in step], precision)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_seconds.append(time.perf_counter() - started)
        step_cpu.append(time.process_time() - used)
        step_pairs.append(GROUP * len(step))
    pairs_per_s = sum(step_pairs[1:]) / sum(step_seconds[1:])  # the first step warms up
    return {
        "max_length": length,
        "precision": precision,
        "pairs_per_step": step_pairs[1],
        "step_s_p50": float(np.median(step_seconds[1:])),
        "pairs_per_s": pairs_per_s,
        "pairs_per_cpu_s": sum(step_pairs[1:]) / sum(step_cpu[1:]),
        "projected_epoch_min": PROJECTED_QUERIES * GROUP / pairs_per_s / 60,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_reranker", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="trained model folder (default <artifacts>/reranker)"
    )
    parser.add_argument("--backends", default="torch,bf16,int8,onnx-int8", help="backends, comma-separated")
    parser.add_argument("--queries", type=int, default=100, help="need phrases to score")
    parser.add_argument("--candidates", type=int, default=50, help="candidates per query")
    parser.add_argument(
        "--max-length", type=int, default=None, help="word pieces read (default: the model's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the queries and candidates")
    parser.add_argument(
        "--train-lengths", default="", help="also time training steps at these lengths (e.g. 128,64)"
    )
    parser.add_argument(
        "--train-precisions", default="fp32,bf16", help="training precisions timed per length"
    )
    parser.add_argument(
        "--train-steps", type=int, default=8, help="training steps timed per length and precision"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's, all cores)"
    )
    parser.add_argument(
        "--quality-lengths", default="", help="also score validation queries at these lengths (e.g. 64,48,32)"
    )
    parser.add_argument("--quality-backend", default="bf16", help="backend of the --quality-lengths runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if REFERENCE not in backends:
        backends.insert(0, REFERENCE)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    folder = args.model or settings.paths.artifacts / "reranker"
    catalog, _ = load_catalog(settings.paths.catalog)
    texts = [reranker_text(item) for item in catalog]
    queries = _queries(catalog, args.queries, args.seed)
    rng = random.Random(args.seed + 1)
    candidates = [rng.sample(texts, args.candidates) for _ in queries]

    # Imported before the clock starts: load times exclude imports.
    import sentence_transformers  # noqa: F401
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ranking.cross_encoder import CARD_FILE, TRAINED_ONLY, CrossEncoderScorer, load_scorer

    trained = (folder / CARD_FILE).is_file()
    if not trained:
        skipped = [backend for backend in backends if backend in TRAINED_ONLY]
        if skipped:
            print(f"no trained model in {folder}: skipping {', '.join(skipped)}", file=sys.stderr)
        backends = [backend for backend in backends if backend not in TRAINED_ONLY]
    max_length = args.max_length or settings.ranking.reranker_max_length
    document: dict[str, object] = {
        "model": str(folder) if trained else "untrained",
        "queries": len(queries),
        "candidates": args.candidates,
        "threads": torch.get_num_threads(),
        "backends": [],
    }
    reference = None
    for backend in backends:
        started = time.perf_counter()
        if trained:
            scorer = load_scorer(folder, backend, args.max_length, settings.ranking.reranker_batch_size)
        else:
            scorer = CrossEncoderScorer.untrained(
                max_length, seed=args.seed, backend=backend, batch_size=settings.ranking.reranker_batch_size
            )
        load_s = time.perf_counter() - started
        seconds, cpu, scores = _time_backend(scorer, queries, candidates)
        if backend == REFERENCE:
            reference = scores
        document["max_length"] = scorer.max_length
        document["backends"].append(
            {
                "backend": backend,
                "load_s": load_s,
                "p50_ms": float(np.percentile(seconds, 50) * 1000),
                "p95_ms": float(np.percentile(seconds, 95) * 1000),
                "cpu_p50_ms": float(np.percentile(cpu, 50) * 1000),
                "pairs_per_s": len(queries) * args.candidates / sum(seconds),
                "max_abs_diff": float(np.max(np.abs(scores - reference))),
                "spearman": _spearman(scores, reference),
                "top10_kept": _top_kept(scores, reference, 10),
                "score_std": float(np.std(scores)),
            }
        )
    lengths = [int(length) for length in args.train_lengths.split(",") if length.strip()]
    precisions = [name.strip() for name in args.train_precisions.split(",") if name.strip()]
    document["training"] = [
        _training_speed(
            texts, queries, length, precision, settings.ranking.reranker_batch_size, args.train_steps
        )
        for length in lengths
        for precision in precisions
    ]
    quality_lengths = [int(length) for length in args.quality_lengths.split(",") if length.strip()]
    if quality_lengths and not trained:
        parser.error(f"--quality-lengths needs a trained model in {folder} (run `concierge train-reranker`)")
    document["quality"] = (
        _quality_by_length(
            settings, catalog, folder, quality_lengths, args.quality_backend, queries, candidates
        )
        if quality_lengths
        else []
    )
    document["load_average"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"reranker {document['model']}, max_length {document['max_length']}: {len(queries)} queries x "
        f"{args.candidates} candidates, {document['threads']} torch threads"
    )
    print(
        f"{'backend':9} {'load s':>7} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>8} {'pairs/s':>8} {'max|d|':>8} "
        f"{'spearman':>8} {'top10':>6}"
    )
    for row in document["backends"]:
        print(
            f"{row['backend']:9} {row['load_s']:7.2f} {row['p50_ms']:8.0f} {row['p95_ms']:8.0f} "
            f"{row['cpu_p50_ms']:8.0f} {row['pairs_per_s']:8.1f} {row['max_abs_diff']:8.4f} "
            f"{row['spearman']:8.3f} {row['top10_kept']:6.2f}"
        )
    print(
        "(cpu ms: p50 CPU time of a call over all threads; max|d|, spearman, top10: against torch's scores, "
        f"whose standard deviation is {document['backends'][0]['score_std']:.4f})"
    )
    for row in document["training"]:
        print(
            f"training at max_length {row['max_length']}, {row['precision']}: {row['pairs_per_s']:.1f} pairs/s, "
            f"{row['pairs_per_cpu_s']:.1f} per CPU second ({row['pairs_per_step']} pairs a step, "
            f"{row['step_s_p50']:.2f} s p50); an epoch of "
            f"{PROJECTED_QUERIES:,} x {GROUP} texts: {row['projected_epoch_min']:.1f} min"
        )
    if document["quality"]:
        first = document["quality"][0]
        print(
            f"window length against quality ({first['backend']}; validation HR@10 and MRR on "
            f"{first['validation_queries']} validation queries)"
        )
        print(f"{'length':>6} {'p50 ms':>8} {'HR@10':>6} {'MRR':>6}")
        for row in document["quality"]:
            print(f"{row['max_length']:>6} {row['p50_ms']:8.0f} {row['hr@10']:6.3f} {row['mrr']:6.3f}")
    print(f"load average {document['load_average']:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
