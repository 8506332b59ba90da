"""The cold-start benchmark harness: every ranking system, the same episodes, the same answers.

For each K in a list (default 0..5), the simulated shopper of every episode answers the first K questions of the
fixed order (:func:`assistant.simulator.question_order`); each system scores the whole catalog from those answers;
the catalog is ranked with a seeded random tie-break that is the same for every system and K in an episode (so
ties are never resolved by catalog order); the metrics of :mod:`ranking.metrics` are reported with 95% bootstrap
intervals over episodes.

Example:
    >>> from data.schema import Catalog, Interaction, Interactions, Item
    >>> items = [Item(f"i{n}", f"Item {n}", brand=f"B{n % 3}", categories=(f"C{n % 2}",)) for n in range(30)]
    >>> events = [Interaction(f"u{u}", f"i{(u * 7 + n) % 30}", order=n) for u in range(60) for n in range(4)]
    >>> settings = EvalSettings(test_share=0.25, bootstrap_samples=50)
    >>> report = run_evaluation(Catalog(items), Interactions(events), settings, answers=(0, 1))
    >>> report.sizes.episodes, report.order[:2], [r.system for r in report.results][:3]
    (15, ('category_1', 'brand'), ['random', 'popularity', 'faceted_popularity'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Importing a module registers its systems: the baselines, then the candidate generators.
import ranking.baselines
import ranking.candidate_systems  # noqa: F401
from assistant.simulator import Episode, ShopperWorld, SimulatedShopper, episodes_from_split
from data.facets import discover_facets
from data.schema import Catalog, Interactions
from data.settings import EvalSettings
from data.splits import make_split, stable_seed
from ranking import metrics
from ranking.system import RankingSystem, TrainingData, registered_systems

DEFAULT_ANSWERS = (0, 1, 2, 3, 4, 5)
# Episodes scored at once: bounds the (episodes x catalog) score matrices on large catalogs.
_CHUNK = 256


@dataclass(frozen=True)
class SplitSizes:
    """How much data the run used."""

    items: int
    train_users: int
    validation_users: int
    test_users: int
    train_interactions: int
    new_items: int
    episodes: int
    new_item_episodes: int


@dataclass(frozen=True)
class Metrics:
    """One system's metrics at one K, each with its 95% bootstrap interval.

    Attributes:
        hit_rate: HR@slate_size of the target.
        ndcg: NDCG@slate_size of the target.
        mrr: Mean reciprocal rank of the target over the full ranking.
        recall: Recall@slate_size of the user's other items (episodes with other items only).
        coverage: Share of the catalog shown in at least one slate.
        new_share: Share of slate items that are new arrivals.
        new_hit_rate: HR@slate_size on episodes whose target is a new arrival.
    """

    hit_rate: metrics.Estimate
    ndcg: metrics.Estimate
    mrr: metrics.Estimate
    recall: metrics.Estimate
    coverage: metrics.Estimate
    new_share: metrics.Estimate
    new_hit_rate: metrics.Estimate


@dataclass(frozen=True)
class SystemResult:
    """One row of the report: a system after K answers."""

    system: str
    answers: int
    metrics: Metrics
    seconds: float


@dataclass(frozen=True)
class EvalReport:
    """Everything a benchmark run measured, with what it needs to be reproduced.

    Attributes:
        settings: The evaluation settings used (seed, shares, bootstrap samples, slate size).
        sizes: Split and episode counts.
        order: The fixed answer order over this catalog's facets (``"need"`` is the need statement).
        answers: The K values run.
        systems: System names, in run order, with their descriptions.
        results: One result per K and system, K-major.
        seconds: Wall time of the whole run.
    """

    settings: EvalSettings
    sizes: SplitSizes
    order: tuple[str, ...]
    answers: tuple[int, ...]
    systems: tuple[tuple[str, str], ...]
    results: tuple[SystemResult, ...]
    seconds: float

    def result(self, system: str, answers: int) -> SystemResult:
        """The row of one system after ``answers`` answers.

        Raises:
            KeyError: No such row.
        """
        for row in self.results:
            if row.system == system and row.answers == answers:
                return row
        raise KeyError(f"no result for system '{system}' at K={answers}")


def _resolve(systems: Sequence[str | RankingSystem] | None) -> list[RankingSystem]:
    registry = registered_systems()
    if systems is None:
        return [cls() for cls in registry.values()]
    resolved = []
    for system in systems:
        if isinstance(system, RankingSystem):
            resolved.append(system)
        elif system in registry:
            resolved.append(registry[system]())
        else:
            raise KeyError(f"unknown ranking system '{system}'; registered: {', '.join(registry)}")
    names = [system.name for system in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"systems must have distinct names (report rows are keyed by name), got {names}")
    return resolved


def _tie_break(episodes: Sequence[Episode], n_items: int, seed: int) -> np.ndarray:
    return np.stack(
        [np.random.default_rng(stable_seed(seed, "tie", e.episode_id)).random(n_items) for e in episodes]
    )


@dataclass(frozen=True)
class _Ranked:
    """Per-episode outcomes of one system at one K."""

    target_ranks: np.ndarray
    other_ranks: list[np.ndarray]
    slates: np.ndarray


def _rank(
    system: RankingSystem,
    shoppers: Sequence[SimulatedShopper],
    answers: int,
    catalog: Catalog,
    settings: EvalSettings,
) -> _Ranked:
    target_ranks, other_ranks, slates = [], [], []
    slate_size = min(settings.slate_size, len(catalog))
    for start in range(0, len(shoppers), _CHUNK):
        chunk = shoppers[start : start + _CHUNK]
        requests = [shopper.to_request(shopper.answers(answers)) for shopper in chunk]
        scores = np.asarray(system.score_batch(requests), dtype=float)
        if scores.shape != (len(chunk), len(catalog)):
            raise ValueError(
                f"system '{system.name}' returned scores of shape {scores.shape}, "
                f"expected {(len(chunk), len(catalog))} (one per catalog item)"
            )
        order = metrics.rank_order(
            scores, _tie_break([s.episode for s in chunk], len(catalog), settings.seed)
        )
        ranks = metrics.ranks_from_order(order)
        for row, shopper in enumerate(chunk):
            episode = shopper.episode
            target_ranks.append(ranks[row, catalog.position(episode.target)])
            other_ranks.append(ranks[row, [catalog.position(item) for item in episode.others]])
        slates.append(order[:, :slate_size])
    return _Ranked(np.array(target_ranks), other_ranks, np.concatenate(slates))


def _measure(
    ranked: _Ranked, target_is_new: np.ndarray, is_new: np.ndarray, settings: EvalSettings
) -> Metrics:
    k, samples = settings.slate_size, settings.bootstrap_samples

    def estimate(name: str, values: np.ndarray) -> metrics.Estimate:
        # One seed per metric, shared by every system and K: systems are compared on the same resamples.
        return metrics.bootstrap_mean(values, samples, stable_seed(settings.seed, "bootstrap", name))

    hits = metrics.hit_rate(ranked.target_ranks, k)
    return Metrics(
        hit_rate=estimate("hit_rate", hits),
        ndcg=estimate("ndcg", metrics.ndcg(ranked.target_ranks, k)),
        mrr=estimate("mrr", metrics.reciprocal_rank(ranked.target_ranks)),
        recall=estimate("recall", metrics.recall(ranked.other_ranks, k)),
        coverage=metrics.bootstrap_coverage(
            ranked.slates, len(is_new), samples, stable_seed(settings.seed, "bootstrap", "coverage")
        ),
        new_share=estimate("new_share", metrics.new_arrival_share(ranked.slates, is_new)),
        new_hit_rate=estimate("new_hit_rate", hits[target_is_new]),
    )


def run_evaluation(
    catalog: Catalog,
    interactions: Interactions,
    settings: EvalSettings,
    *,
    answers: Sequence[int] = DEFAULT_ANSWERS,
    systems: Sequence[str | RankingSystem] | None = None,
    max_episodes: int | None = None,
) -> EvalReport:
    """Run the ranking-layer benchmark.

    Args:
        catalog: Any catalog.
        interactions: Its interactions.
        settings: Seed, split shares, brand "no preference" rate, bootstrap samples, slate size.
        answers: The K values: how many questions the shopper answers before the ranking.
        systems: Registered system names or system instances (fitted here); every registered system when
            ``None``.
        max_episodes: Cap on episodes (a seeded sample of the test users); all test users when ``None``.

    Raises:
        KeyError: An unknown system name.
        ValueError: No test episode, two systems with one name, a system returned scores of the wrong shape,
            or bad split shares.
    """
    started = time.perf_counter()
    facets = discover_facets(catalog)
    split = make_split(catalog, interactions, settings)
    training = TrainingData.from_split(catalog, facets, split)
    episodes = episodes_from_split(split, settings, max_episodes)
    if not episodes:
        raise ValueError("no test episodes: raise test_share or max_episodes, or pass more interactions")
    world = ShopperWorld.build(catalog, facets, settings)
    shoppers = [SimulatedShopper(episode, world) for episode in episodes]
    is_new = np.array([item.item_id in split.new_items for item in catalog])
    target_is_new = np.array([episode.target in split.new_items for episode in episodes], dtype=bool)

    resolved = _resolve(systems)
    results: dict[tuple[int, str], SystemResult] = {}
    for system in resolved:
        system.fit(training)
        for k in answers:
            begun = time.perf_counter()
            ranked = _rank(system, shoppers, k, catalog, settings)
            measured = _measure(ranked, target_is_new, is_new, settings)
            results[k, system.name] = SystemResult(system.name, k, measured, time.perf_counter() - begun)
    sizes = SplitSizes(
        items=len(catalog),
        train_users=len(split.train_users),
        validation_users=len(split.validation_users),
        test_users=len(split.test_users),
        train_interactions=len(split.train),
        new_items=len(split.new_items),
        episodes=len(episodes),
        new_item_episodes=int(target_is_new.sum()),
    )
    return EvalReport(
        settings=settings,
        sizes=sizes,
        order=world.order,
        answers=tuple(answers),
        systems=tuple((system.name, system.description) for system in resolved),
        results=tuple(results[k, system.name] for k in answers for system in resolved),
        seconds=time.perf_counter() - started,
    )


def format_table(report: EvalReport) -> str:
    """One readable table: a row per K and system, each metric as ``value [low, high]``."""
    k = report.settings.slate_size
    columns = (
        (f"HR@{k}", "hit_rate"),
        (f"NDCG@{k}", "ndcg"),
        ("MRR", "mrr"),
        (f"Recall@{k}", "recall"),
        ("coverage", "coverage"),
        ("new share", "new_share"),
        (f"new HR@{k}", "new_hit_rate"),
    )
    header = ["K", "system", *(title for title, _ in columns)]
    rows = [
        [str(row.answers), row.system, *(str(getattr(row.metrics, field)) for _, field in columns)]
        for row in report.results
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    sizes = report.sizes
    caption = [
        f"Cold-start benchmark: {sizes.episodes} episodes ({sizes.new_item_episodes} with a new-arrival target), "
        f"{sizes.items} items ({sizes.new_items} new arrivals), {sizes.train_users} training users, "
        f"{sizes.train_interactions} training interactions; seed {report.settings.seed}, "
        f"{report.settings.bootstrap_samples} bootstrap samples (95% intervals).",
        f"Answer order: {', '.join(report.order)}.",
    ]
    body = [line(header), line(["-" * width for width in widths])]
    previous = None
    for row, cells in zip(report.results, rows, strict=True):
        if previous is not None and row.answers != previous:
            body.append("")
        body.append(line(cells))
        previous = row.answers
    return "\n".join([*caption, "", *body])


def _finite(value: object) -> object:
    """JSON has no NaN: metrics that do not apply become ``null``."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def report_to_json(report: EvalReport) -> dict:
    """The report as plain JSON-ready data (``NaN`` -> ``None``)."""
    return _finite(asdict(report))
