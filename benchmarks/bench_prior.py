"""How much a folded-in like is worth to the MF prior, on validation episodes: the choice of ``mf_fold_in_weight``.

Usage:
    python -m benchmarks.bench_prior [--weights 0,0.1,0.25,0.5,1] [--prior-weights 0.3,0.45,0.6] [--episodes N] [--json]

Validation episodes only (never test ones): the vague shopper, need first, answers K = 1..5 after liking one of
their own earlier items (as ``concierge eval --feedback 1``). For each request the hybrid finds its candidates
(the rerankers' first ``ranking.rerank_depth``); among the requests whose target is one of them, each row ranks
the candidates by ``normalise(retrieval) + w * normalise(prior)`` and reports HR@10, where the prior is
:class:`ranking.mf.MFPrior` with the like folded in at ``fold_in_weight`` (0 ignores the like: the cold prior) and
``w`` is ``--prior-weights``. The cross-encoder is left out so that the prior's own effect shows; the blend's
weights are fitted afterwards by ``concierge train-reranker``. 95% intervals from 1,000 bootstrap samples of
requests; ``gain`` is the paired difference from ``fold_in_weight`` 0 at the same ``w``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from assistant.simulator import Order, ShopperWorld, SimulatedShopper, Vocabulary, episodes_from_split
from data.facets import discover_facets
from data.load import load_catalog, load_interactions
from data.settings import load_settings
from data.splits import make_split, stable_seed
from ranking.blend import normalise
from ranking.mf import MFPrior
from ranking.rerank import RETRIEVAL, HybridPrior
from ranking.system import TrainingData

SLATE = 10
BOOTSTRAP = 1000


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    samples = rng.integers(len(values), size=(BOOTSTRAP, len(values)))
    means = values[samples].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help="settings file (TOML)")
    parser.add_argument(
        "--weights", default="0,0.1,0.25,0.5,1", help="fold_in_weight values, comma-separated"
    )
    parser.add_argument(
        "--prior-weights", default="0.3,0.45,0.6", help="weights w of the prior, comma-separated"
    )
    parser.add_argument("--episodes", type=int, default=None, help="cap on validation episodes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    catalog, _ = load_catalog(settings.paths.catalog)
    interactions, _ = load_interactions(settings.paths.interactions, catalog)
    facets = discover_facets(catalog)
    split = make_split(catalog, interactions, settings.eval)
    data = TrainingData.from_split(catalog, facets, split)
    world = ShopperWorld.build(catalog, facets, settings.eval, Order.NEED_FIRST)
    episodes = episodes_from_split(split, settings.eval, args.episodes, validation=True)
    system = HybridPrior(settings)
    system.fit(data)

    profiles, targets = [], []
    for episode in episodes:
        shopper = SimulatedShopper(episode, world, Vocabulary.VAGUE)
        for k in range(1, 6):
            profile = shopper.profile(k, 1)
            if profile.liked:
                profiles.append(profile)
                targets.append(catalog.position(episode.target))
    requests = []
    for profile, target, (positions, parts) in zip(
        profiles, targets, system.candidate_parts(profiles, parts=(RETRIEVAL,)), strict=True
    ):
        if target in positions:
            liked = [catalog.position(item) for item in profile.liked if item in catalog]
            requests.append((positions, normalise(parts[RETRIEVAL]), liked, target))

    seed = stable_seed(data.seed, "mf")
    fitted = MFPrior.from_settings(settings.ranking, seed=seed).fit(data.matrix(), system.item_ids)
    rows, hits_at = [], {}
    for fold_in in _floats(args.weights):
        fitted.fold_in_weight = fold_in
        scores = fitted.scores_batch([liked for _, _, liked, _ in requests], [[] for _ in requests])
        for weight in _floats(args.prior_weights):
            hits = np.array(
                [
                    target
                    in positions[
                        np.argsort(-(retrieval + weight * normalise(row[positions])), kind="stable")
                    ][:SLATE]
                    for (positions, retrieval, _, target), row in zip(requests, scores, strict=True)
                ],
                dtype=float,
            )
            hits_at[fold_in, weight] = hits
            rng = np.random.default_rng(stable_seed(settings.eval.seed, "bench prior", fold_in, weight))
            base = hits_at.get((_floats(args.weights)[0], weight), hits)
            rows.append(
                {
                    "fold_in_weight": fold_in,
                    "prior_weight": weight,
                    "hr@10": float(hits.mean()),
                    "interval": _interval(hits, rng),
                    "gain": float((hits - base).mean()),
                    "gain_interval": _interval(hits - base, rng),
                }
            )
    document = {
        "validation_episodes": len(episodes),
        "requests": len(profiles),
        "target_among_candidates": len(requests),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"Validation episodes: {len(episodes)} vague shoppers, need first, K = 1..5, one earlier item liked: "
        f"{len(profiles)} requests, {len(requests)} with the target among the hybrid's candidates (the rows)."
    )
    print(
        f"HR@10 of normalise(retrieval) + w * normalise(MF prior); gain: paired, from fold_in_weight "
        f"{_floats(args.weights)[0]} at the same w; 95% intervals."
    )
    print(f"{'fold_in_weight':>14}  {'w':>5}  {'HR@10':>22}  {'gain':>25}")
    for row in rows:
        low, high = row["interval"]
        glow, ghigh = row["gain_interval"]
        print(
            f"{row['fold_in_weight']:>14.2f}  {row['prior_weight']:>5.2f}  {row['hr@10']:.3f} [{low:.3f}, {high:.3f}]"
            f"  {row['gain']:+.3f} [{glow:+.3f}, {ghigh:+.3f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
