"""Training the ranking layer on a catalog: the cross-encoder's pairs, its fine-tuning, and the blends' weights.

``concierge train-reranker`` runs :func:`train_ranking`:

1. **Pairs from train users only.** For a seeded sample of ``ranking.reranker_train_users`` training users, the
   simulated shopper (:mod:`assistant.simulator`) looks for the user's last item that no validation or test
   episode looks for (:func:`held_out_targets`: the shopper's words depend on the item only, so such a positive
   would teach the model an evaluation episode's exact query) and answers K (1 to 5, drawn)
   questions in the need-first order: once in the ``vague`` or the ``specific`` vocabulary (drawn), and once
   more in the ``paraphrased`` one where the item has a stored paraphrase. The query is the profile text of
   those answers (:func:`retrieval.profile.profile_text`, the same code path as at serving time). The positive is
   that item; negatives are ``reranker_hard_negatives`` drawn from the hybrid's first 30 candidates for the same
   profile minus every item of the user, then ``reranker_random_negatives`` drawn from the rest of the catalog.
2. **Validation users choose the epoch.** Validation episodes (never test ones) become queries over the hybrid's
   first ``rerank_depth`` candidates at K = 1, 2, 3 (vague) and K = 1 (paraphrased, where stored), a seeded sample
   of ``ranking.reranker_validation_queries`` of them; the best epoch is kept
   (:func:`ranking.train_cross_encoder.train_cross_encoder`).
3. **The blends' weights** of ``hybrid_cross_encoder``, ``hybrid_prior`` and ``blend`` are fitted on a seeded
   sample of ``ranking.blend_validation_episodes`` validation episodes (vague, need-first, K = 1..5, without and
   with one liked earlier item) by :func:`ranking.blend.fit_blend`, and saved beside the model with the MF prior.

Everything is seeded from ``eval.seed``; the model folder carries a card with the data, settings and validation
figures, and the command that reproduces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.simulator import (
    Episode,
    Order,
    ShopperWorld,
    SimulatedShopper,
    Vocabulary,
    episodes_from_split,
)
from data.facets import discover_facets
from data.schema import Catalog, Interactions
from data.settings import Settings
from data.splits import Split, make_split, stable_seed
from ranking.blend import CROSS_ENCODER, PRIOR, RETRIEVAL, BlendExample, BlendFit, fit_blend, save_blends
from ranking.rerank import PRIOR_FOLDER, RERANKER_FOLDER, FullBlend
from ranking.system import TrainingData
from ranking.train_cross_encoder import TrainingQuery, TrainReport, ValidationQuery, train_cross_encoder
from retrieval.profile import Profile, profile_text

logger = logging.getLogger(__name__)

HARD_NEGATIVE_POOL = 30
BLEND_SYSTEMS = {
    "hybrid_cross_encoder": (RETRIEVAL, CROSS_ENCODER),
    "hybrid_prior": (RETRIEVAL, PRIOR),
    "blend": (RETRIEVAL, CROSS_ENCODER, PRIOR),
}


@dataclass(frozen=True)
class RankingTrainReport:
    """What :func:`train_ranking` did."""

    model_dir: Path
    reranker: TrainReport | None
    blends: Mapping[str, BlendFit]
    training_queries: int
    vocabularies: Mapping[str, int]
    validation_queries: int
    seconds: float

    def summary(self) -> str:
        lines = [f"Ranking layer trained in {self.seconds:.0f} s into {self.model_dir}"]
        used = ", ".join(f"{name} {count}" for name, count in self.vocabularies.items())
        lines.append(f"  cross-encoder: {self.training_queries} training queries ({used})")
        if self.reranker is not None:
            for epoch, figures in enumerate(self.reranker.validation, 1):
                marker = " (kept)" if epoch == self.reranker.best_epoch else ""
                shown = ", ".join(f"{key} {value:.3f}" for key, value in figures.items() if key != "epoch")
                lines.append(f"    epoch {epoch}: validation {shown}{marker}")
        for name, fit in self.blends.items():
            w = fit.weights
            lines.append(
                f"  blend {name}: retrieval {w.retrieval:g}, cross-encoder {w.cross_encoder:g}, prior {w.prior:g} "
                f"+ {w.prior_per_feedback:g}/feedback, diversity {w.diversity:g}; validation NDCG@10 "
                f"{fit.ndcg:.3f}, HR@10 {fit.hit_rate:.3f}"
                + (
                    f", new arrivals {fit.new_arrival_hit_rate:.3f} (retrieval order "
                    f"{fit.retrieval_new_arrival_hit_rate:.3f})"
                    if fit.new_arrival_hit_rate is not None
                    else ""
                )
            )
        return "\n".join(lines)


def _train_episodes(split: Split, settings: Settings, held_out: frozenset[str]) -> list[Episode]:
    """One episode per sampled training user: their last item that is not ``held_out``, their other items (users
    with nothing else are skipped)."""
    histories = split.train.histories()
    users = sorted(user for user, history in histories.items() if history)
    rng = np.random.default_rng(stable_seed(settings.eval.seed, "reranker", "users"))
    count = min(settings.ranking.reranker_train_users, len(users))
    chosen = sorted(rng.choice(len(users), size=count, replace=False).tolist()) if count else []
    episodes = []
    for index in chosen:
        user = users[index]
        history = histories[user]
        target = next((item for item in reversed(history) if item not in held_out), None)
        if target is None:
            continue
        seed = stable_seed(settings.eval.seed, "reranker", user)
        others = tuple(item for item in dict.fromkeys(history) if item != target)
        episodes.append(Episode(f"train-{seed:016x}", user, target, others, seed))
    return episodes


def held_out_targets(split: Split, settings: Settings) -> frozenset[str]:
    """The items some validation or test episode looks for. No training query has one as its positive: the
    simulated shopper says the same words for an item whoever asks, so a positive shared with an evaluation
    episode would hand the model that episode's exact query and answer."""
    return frozenset(
        episode.target
        for validation in (True, False)
        for episode in episodes_from_split(split, settings.eval, validation=validation)
    )


def training_targets(split: Split, settings: Settings) -> list[str]:
    """The items the training queries look for, in training-user order (what a paraphrase run does first after
    the test targets)."""
    episodes = _train_episodes(split, settings, held_out_targets(split, settings))
    return list(dict.fromkeys(episode.target for episode in episodes))


def _profiles_for_training(
    episodes: Sequence[Episode], world: ShopperWorld
) -> list[tuple[Episode, Profile, Vocabulary]]:
    """Each episode's training profiles: one in the vague or the specific vocabulary (drawn), and one more in the
    paraphrased vocabulary where the target has a stored paraphrase, each after K answers (drawn, 1 to 5).

    Every stored paraphrase is used: it is the scarcest vocabulary and the only one whose words the item's own
    text lacks, which is what the cross-encoder must learn to bridge."""
    out = []
    for episode in episodes:
        rng = np.random.default_rng(stable_seed(episode.seed, "query"))
        literal = (Vocabulary.VAGUE, Vocabulary.SPECIFIC)[int(rng.integers(2))]
        vocabularies = [literal]
        if episode.target in world.paraphrases:
            vocabularies.append(Vocabulary.PARAPHRASED)
        for vocabulary in vocabularies:
            shopper = SimulatedShopper(episode, world, vocabulary)
            profile = shopper.profile(int(rng.integers(1, 6)))
            if profile.need or profile.constraints:
                out.append((episode, profile, vocabulary))
    return out


def mine_training_queries(
    episodes: Sequence[Episode],
    world: ShopperWorld,
    hybrid: FullBlend,
    texts: Sequence[str],
    settings: Settings,
) -> tuple[list[TrainingQuery], dict[str, int]]:
    """The cross-encoder's training queries (rules in the module docstring) and how many per vocabulary."""
    ranking = settings.ranking
    catalog = world.catalog
    rows = _profiles_for_training(episodes, world)
    found = hybrid.candidates_batch([profile for _, profile, _ in rows])
    queries, used = [], {}
    for (episode, profile, vocabulary), candidates in zip(rows, found, strict=True):
        rng = np.random.default_rng(stable_seed(episode.seed, "negatives"))
        own = {catalog.position(item) for item in (episode.target, *episode.others) if item in catalog}
        pool = [c.position for c in candidates[:HARD_NEGATIVE_POOL] if c.position not in own]
        hard = rng.permutation(pool)[: ranking.reranker_hard_negatives].tolist() if pool else []
        taken = own | set(hard)
        random = []
        while len(random) < ranking.reranker_random_negatives and len(taken) < len(catalog):
            position = int(rng.integers(len(catalog)))
            if position not in taken:
                taken.add(position)
                random.append(position)
        negatives = tuple(texts[p] for p in (*hard, *random))
        if not negatives:
            continue
        query = profile_text(profile, world.facets)
        queries.append(
            TrainingQuery(query, texts[catalog.position(episode.target)], negatives, episode.user_id)
        )
        used[vocabulary.value] = used.get(vocabulary.value, 0) + 1
    return queries, used


def _sample(episodes: Sequence[Episode], count: int, seed: int, what: str) -> list[Episode]:
    """A seeded sample of ``count`` episodes (all of them when there are fewer), in their order."""
    if count >= len(episodes):
        return list(episodes)
    chosen = set(
        np.random.default_rng(stable_seed(seed, what)).choice(len(episodes), count, replace=False).tolist()
    )
    return [episode for position, episode in enumerate(episodes) if position in chosen]


def validation_queries(
    episodes: Sequence[Episode], world: ShopperWorld, hybrid: FullBlend, texts: Sequence[str], limit: int
) -> list[ValidationQuery]:
    """Validation episodes as queries over the hybrid's candidates (module docstring, step 2), at most ``limit``
    (a seeded sample: scoring them costs ``rerank_depth`` pairs each per epoch)."""
    profiles, targets = [], []
    for episode in episodes:
        for vocabulary, answers in ((Vocabulary.VAGUE, (1, 2, 3)), (Vocabulary.PARAPHRASED, (1,))):
            shopper = SimulatedShopper(episode, world, vocabulary)
            if not shopper.need:
                continue
            for k in answers:
                profiles.append(shopper.profile(k))
                targets.append(world.catalog.position(episode.target))
    if len(profiles) > limit:
        rng = np.random.default_rng(stable_seed(world.settings.seed, "validation queries"))
        keep = sorted(rng.choice(len(profiles), limit, replace=False).tolist())
        profiles, targets = [profiles[i] for i in keep], [targets[i] for i in keep]
    out = []
    for profile, target, (positions, _) in zip(
        profiles, targets, hybrid.candidate_parts(profiles, None, parts=()), strict=True
    ):
        candidates = positions.tolist()
        index = candidates.index(target) if target in candidates else -1
        out.append(
            ValidationQuery(profile_text(profile, world.facets), tuple(texts[p] for p in candidates), index)
        )
    return out


def blend_examples(
    episodes: Sequence[Episode],
    world: ShopperWorld,
    system: FullBlend,
    feedback: int,
    new_items: frozenset[str] = frozenset(),
) -> list[BlendExample]:
    """Validation episodes (vague, need-first, K = 1..5) as the blend fit sees them; ``new_items``: the split's new
    arrivals (their episodes are marked, for the fit's new-arrival floor)."""
    profiles, targets, fresh = [], [], []
    for episode in episodes:
        shopper = SimulatedShopper(episode, world, Vocabulary.VAGUE)
        for k in range(1, 6):
            profile = shopper.profile(k, feedback)
            if feedback and not profile.liked:
                continue
            profiles.append(profile)
            targets.append(world.catalog.position(episode.target))
            fresh.append(episode.target in new_items)
    examples = []
    for profile, target, new_arrival, (positions, parts) in zip(
        profiles, targets, fresh, system.candidate_parts(profiles), strict=True
    ):
        hits = np.flatnonzero(positions == target)
        examples.append(
            BlendExample(
                parts=parts,
                target=int(hits[0]) if len(hits) else -1,
                feedback=len(profile.liked) + len(profile.disliked),
                similarity=system.similarity(positions),
                new_arrival=new_arrival,
            )
        )
    return examples


@dataclass(frozen=True)
class RankingData:
    """What training the ranking layer reads: the split and its validation episodes, the systems' training data,
    the simulated shoppers' world and the hybrid's candidates (fitted, without the cross-encoder) with their item
    texts."""

    split: Split
    validation: list[Episode]
    training: TrainingData
    world: ShopperWorld
    candidates: FullBlend

    @classmethod
    def build(
        cls,
        settings: Settings,
        catalog: Catalog,
        interactions: Interactions,
        paraphrases: Mapping[str, str] | None = None,
        split: Split | None = None,
    ) -> RankingData:
        """``split``: the split of these settings when the caller has made it already."""
        facets = discover_facets(catalog)
        if split is None:
            split = make_split(catalog, interactions, settings.eval)
        validation = episodes_from_split(split, settings.eval, validation=True)
        training = TrainingData.from_split(catalog, facets, split)
        world = ShopperWorld.build(catalog, facets, settings.eval, Order.NEED_FIRST, paraphrases)
        # The candidates and item texts of the hybrid; the cross-encoder part is loaded after training.
        candidates = FullBlend(settings, cross_encoder=False)
        candidates.fit(training)
        return cls(split, validation, training, world, candidates)

    def validation_queries(self, settings: Settings) -> list[ValidationQuery]:
        """The queries that choose the cross-encoder's epoch (:func:`validation_queries`)."""
        return validation_queries(
            self.validation,
            self.world,
            self.candidates,
            self.candidates.texts,
            settings.ranking.reranker_validation_queries,
        )


def train_ranking(
    settings: Settings,
    catalog: Catalog,
    interactions: Interactions,
    *,
    paraphrases: Mapping[str, str] | None = None,
    progress: bool = True,
    skip_reranker: bool = False,
    command: str = "concierge train-reranker",
) -> RankingTrainReport:
    """Train the cross-encoder and fit the blends (see the module docstring); returns what was done.

    Raises:
        ValueError: No training user with a history (nothing to learn from).
    """
    started = time.perf_counter()
    folder = Path(settings.paths.artifacts) / RERANKER_FOLDER
    split = make_split(catalog, interactions, settings.eval)
    held_out = held_out_targets(split, settings)
    train_episodes = _train_episodes(split, settings, held_out)
    if not train_episodes:
        raise ValueError("no training user has a history: the cross-encoder has nothing to learn from")
    data = RankingData.build(settings, catalog, interactions, paraphrases, split)
    training, world, candidates, validation = data.training, data.world, data.candidates, data.validation
    report = None
    queries, used = mine_training_queries(train_episodes, world, candidates, candidates.texts, settings)
    checks = data.validation_queries(settings)
    if not skip_reranker:
        ranking = settings.ranking
        report = train_cross_encoder(
            queries,
            checks,
            folder,
            epochs=ranking.reranker_epochs,
            batch_size=ranking.reranker_batch_size,
            learning_rate=ranking.reranker_learning_rate,
            max_length=ranking.reranker_max_length,
            seed=stable_seed(settings.eval.seed, "reranker"),
            precision=ranking.reranker_precision,
            layers=ranking.reranker_layers,
            progress=progress,
            card={
                "catalog": str(settings.paths.catalog),
                "interactions": str(settings.paths.interactions),
                "items": len(catalog),
                "train_users_sampled": len(train_episodes),
                "held_out_targets": len(held_out),
                "validation_episodes": len(validation),
                "vocabularies": used,
                "paraphrases": (
                    f"{len(paraphrases)} stored, {sum(e.target in paraphrases for e in train_episodes)} of them for "
                    "training items"
                    if paraphrases
                    else "none stored: trained on vague and specific only"
                ),
                "training_settings": {"ranking": vars(ranking), "eval": vars(settings.eval)},
                "command": command,
            },
        )
    system = FullBlend(settings)
    system.fit(training)
    # Saved for the serving process and later evaluations of the same split (reused only when it matches).
    system.prior.save(folder / PRIOR_FOLDER)
    tuning = _sample(
        validation, settings.ranking.blend_validation_episodes, settings.eval.seed, "blend episodes"
    )
    cold = blend_examples(tuning, world, system, feedback=0, new_items=split.new_items)
    liked = blend_examples(tuning, world, system, feedback=1, new_items=split.new_items)
    fits = {}
    for name, parts in BLEND_SYSTEMS.items():
        chosen = [replace(example, parts={p: example.parts[p] for p in parts}) for example in cold]
        with_like = [replace(example, parts={p: example.parts[p] for p in parts}) for example in liked]
        fits[name] = fit_blend(chosen, with_like if PRIOR in parts else (), parts)
    save_blends(
        folder,
        {name: fit.weights for name, fit in fits.items()},
        card={
            "validation_episodes": len(tuning),
            "command": command,
            "validation": {
                name: {
                    "ndcg@10": fit.ndcg,
                    "hr@10": fit.hit_rate,
                    "new_arrival_hr@10": fit.new_arrival_hit_rate,
                    "retrieval_new_arrival_hr@10": fit.retrieval_new_arrival_hit_rate,
                }
                for name, fit in fits.items()
            },
        },
    )
    return RankingTrainReport(
        model_dir=folder,
        reranker=report,
        blends=fits,
        training_queries=len(queries),
        vocabularies=used,
        validation_queries=len(checks),
        seconds=time.perf_counter() - started,
    )
