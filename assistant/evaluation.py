"""The cold-start benchmark harness: every ranking system, the same episodes, the same answers.

For each K in a list (default 0..5), the simulated shopper of every episode answers the first K questions of the
run's :class:`assistant.simulator.Order` in its :class:`assistant.simulator.Vocabulary`, optionally after liking
``feedback`` of their own earlier items; each system scores the whole catalog from the resulting
:class:`retrieval.profile.Profile`; the catalog is ranked with a seeded random tie-break that is the same for
every system and K in an episode (so ties are never resolved by catalog order); the metrics of
:mod:`ranking.metrics` are reported with 95% bootstrap intervals over episodes. ``top-N`` (N =
``retrieval.candidates``, 100) is the share of targets ranked within the first N: for the systems that rerank the
hybrid candidates, the candidate recall that bounds what a reranker can reach.

The ``paraphrased`` vocabulary runs on the episodes whose target has a stored paraphrase (see
:mod:`data.paraphrases`); the report says how many that is.

Example:
    >>> from data.schema import Catalog, Interaction, Interactions, Item
    >>> from data.settings import EvalSettings, Settings
    >>> items = [Item(f"i{n}", f"Item {n}", brand=f"B{n % 3}", categories=(f"C{n % 2}",)) for n in range(30)]
    >>> events = [Interaction(f"u{u}", f"i{(u * 7 + n) % 30}", order=n) for u in range(60) for n in range(4)]
    >>> settings = Settings(eval=EvalSettings(test_share=0.25, bootstrap_samples=50))
    >>> systems = ["random", "popularity", "faceted_popularity"]
    >>> report = run_evaluation(Catalog(items), Interactions(events), settings, answers=(0, 1), systems=systems)
    >>> report.sizes.episodes, report.order[:2], [r.system for r in report.results][:3]
    (15, ('need', 'category_1'), ['random', 'popularity', 'faceted_popularity'])
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Importing a module registers its systems: the baselines, the candidate generators, then the rerankers.
import ranking.baselines
import ranking.candidate_systems
import ranking.rerank  # noqa: F401
from assistant.simulator import (
    Episode,
    Order,
    ShopperWorld,
    SimulatedShopper,
    Vocabulary,
    episodes_from_split,
)
from data.facets import Facets, discover_facets
from data.schema import Catalog, Interactions
from data.settings import EvalSettings, Settings
from data.splits import make_split, stable_seed
from ranking import metrics
from ranking.system import RankingSystem, TrainingData, create_system, registered_systems

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
    # Episodes of the test users that were left out because the target has no need in this vocabulary (a
    # target without a stored paraphrase), and episodes whose shopper liked an earlier item (--feedback).
    episodes_without_need: int = 0
    feedback_episodes: int = 0


@dataclass(frozen=True)
class Metrics:
    """One system's metrics at one K, each with its 95% bootstrap interval.

    Attributes:
        hit_rate: HR@slate_size of the target.
        ndcg: NDCG@slate_size of the target.
        mrr: Mean reciprocal rank of the target over the full ranking.
        top_n: Share of targets ranked within the first ``retrieval.candidates`` (the candidate recall).
        recall: Recall@slate_size of the user's other items (episodes with other items only).
        coverage: Share of the catalog shown in at least one slate.
        diversity: Intra-list diversity of the slates (:func:`ranking.metrics.intra_list_diversity`).
        new_share: Share of slate items that are new arrivals.
        new_hit_rate: HR@slate_size on episodes whose target is a new arrival.
    """

    hit_rate: metrics.Estimate
    ndcg: metrics.Estimate
    mrr: metrics.Estimate
    top_n: metrics.Estimate
    recall: metrics.Estimate
    coverage: metrics.Estimate
    diversity: metrics.Estimate
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
        vocabulary: The shoppers' vocabulary.
        answer_order: The order setting (need first or facets first).
        feedback: How many earlier items each shopper liked before the slate.
        top_n: The N of the ``top-N`` metric.
        sizes: Split and episode counts.
        order: The answer order over this catalog's facets (``"need"`` is the need statement).
        answers: The K values run.
        systems: System names, in run order, with their descriptions.
        results: One result per K and system, K-major.
        seconds: Wall time of the whole run.
        episodes: Whose episodes were run: ``"test"`` (the figures to report) or ``"validation"`` (to choose
            settings on).
    """

    settings: EvalSettings
    vocabulary: str
    answer_order: str
    feedback: int
    top_n: int
    sizes: SplitSizes
    order: tuple[str, ...]
    answers: tuple[int, ...]
    systems: tuple[tuple[str, str], ...]
    results: tuple[SystemResult, ...]
    seconds: float
    episodes: str = "test"

    def result(self, system: str, answers: int) -> SystemResult:
        """The row of one system after ``answers`` answers.

        Raises:
            KeyError: No such row.
        """
        for row in self.results:
            if row.system == system and row.answers == answers:
                return row
        raise KeyError(f"no result for system '{system}' at K={answers}")


def _resolve(systems: Sequence[str | RankingSystem] | None, settings: Settings) -> list[RankingSystem]:
    names = list(registered_systems()) if systems is None else systems
    resolved = [
        system if isinstance(system, RankingSystem) else create_system(system, settings) for system in names
    ]
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
    feedback: int,
    catalog: Catalog,
    settings: EvalSettings,
) -> _Ranked:
    target_ranks, other_ranks, slates = [], [], []
    slate_size = min(settings.slate_size, len(catalog))
    for start in range(0, len(shoppers), _CHUNK):
        chunk = shoppers[start : start + _CHUNK]
        profiles = [shopper.profile(answers, feedback) for shopper in chunk]
        scores = np.asarray(system.score_batch(profiles), dtype=float)
        if scores.shape != (len(chunk), len(catalog)):
            raise ValueError(
                f"system '{system.name}' returned scores of shape {scores.shape}, "
                f"expected {(len(chunk), len(catalog))} (one per catalog item)"
            )
        order = metrics.rank_order(
            scores, _tie_break([s.episode for s in chunk], len(catalog), settings.seed)
        )
        ranks = metrics.ranks_from_order(order)
        for row, (shopper, profile) in enumerate(zip(chunk, profiles, strict=True)):
            episode = shopper.episode
            target_ranks.append(ranks[row, catalog.position(episode.target)])
            # An item the shopper liked before the slate is known to them: it does not count as recalled.
            others = [item for item in episode.others if item not in profile.liked]
            other_ranks.append(ranks[row, [catalog.position(item) for item in others]])
        slates.append(order[:, :slate_size])
    return _Ranked(np.array(target_ranks), other_ranks, np.concatenate(slates))


def _category_codes(facets: Facets) -> np.ndarray:
    levels = facets.category_levels()
    if not levels:
        return np.full((facets.n_items, 1), -1, dtype=np.int32)
    return np.stack([facet.codes for facet in levels], axis=1)


def _measure(
    ranked: _Ranked,
    target_is_new: np.ndarray,
    is_new: np.ndarray,
    category_codes: np.ndarray,
    settings: EvalSettings,
    top_n: int,
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
        top_n=estimate("top_n", metrics.hit_rate(ranked.target_ranks, top_n)),
        recall=estimate("recall", metrics.recall(ranked.other_ranks, k)),
        coverage=metrics.bootstrap_coverage(
            ranked.slates, len(is_new), samples, stable_seed(settings.seed, "bootstrap", "coverage")
        ),
        diversity=estimate("diversity", metrics.intra_list_diversity(ranked.slates, category_codes)),
        new_share=estimate("new_share", metrics.new_arrival_share(ranked.slates, is_new)),
        new_hit_rate=estimate("new_hit_rate", hits[target_is_new]),
    )


def run_evaluation(
    catalog: Catalog,
    interactions: Interactions,
    settings: Settings,
    *,
    answers: Sequence[int] = DEFAULT_ANSWERS,
    systems: Sequence[str | RankingSystem] | None = None,
    max_episodes: int | None = None,
    vocabulary: Vocabulary = Vocabulary.VAGUE,
    order: Order = Order.NEED_FIRST,
    feedback: int = 0,
    paraphrases: Mapping[str, str] | None = None,
    validation: bool = False,
) -> EvalReport:
    """Run the ranking-layer benchmark.

    Args:
        catalog: Any catalog.
        interactions: Its interactions.
        settings: The settings every system is built with; ``settings.eval`` holds the seed, split shares,
            brand "no preference" rate, bootstrap samples and slate size.
        answers: The K values: how many questions the shopper answers before the ranking.
        systems: Registered system names or system instances (fitted here); every registered system when
            ``None``.
        max_episodes: Cap on episodes (a seeded sample of the test users); all test users when ``None``.
        vocabulary: How shoppers word their need.
        order: Which questions come first.
        feedback: How many of their own earlier items shoppers have liked before the slate (0 or more).
        paraphrases: Item id -> stored paraphrase, for the ``paraphrased`` vocabulary.
        validation: The validation users' episodes instead of the test users' (to choose settings on, so that
            the test episodes stay unseen).

    Raises:
        KeyError: An unknown system name.
        ValueError: No test episode (for the ``paraphrased`` vocabulary: no target with a paraphrase), two
            systems with one name, a system returned scores of the wrong shape, a negative feedback count, or
            bad split shares.
    """
    started = time.perf_counter()
    if feedback < 0:
        raise ValueError(f"feedback must be 0 or more liked items, got {feedback}")
    vocabulary, order = Vocabulary(vocabulary), Order(order)
    evaluation = settings.eval
    facets = discover_facets(catalog)
    split = make_split(catalog, interactions, evaluation)
    training = TrainingData.from_split(catalog, facets, split)
    episodes = episodes_from_split(split, evaluation, max_episodes, validation=validation)
    world = ShopperWorld.build(catalog, facets, evaluation, order, paraphrases)
    shoppers = [SimulatedShopper(episode, world, vocabulary) for episode in episodes]
    without_need = 0
    if vocabulary is Vocabulary.PARAPHRASED:
        kept = [shopper for shopper in shoppers if shopper.need]
        without_need, shoppers = len(shoppers) - len(kept), kept
    if not shoppers:
        raise ValueError(
            "no test episodes: raise test_share or max_episodes, or pass more interactions"
            + (" (or write paraphrases: concierge paraphrase)" if without_need else "")
        )
    episodes = [shopper.episode for shopper in shoppers]
    is_new = np.array([item.item_id in split.new_items for item in catalog])
    target_is_new = np.array([episode.target in split.new_items for episode in episodes], dtype=bool)
    category_codes = _category_codes(facets)
    top_n = settings.retrieval.candidates

    resolved = _resolve(systems, settings)
    results: dict[tuple[int, str], SystemResult] = {}
    for system in resolved:
        system.fit(training)
        for k in answers:
            begun = time.perf_counter()
            ranked = _rank(system, shoppers, k, feedback, catalog, evaluation)
            measured = _measure(ranked, target_is_new, is_new, category_codes, evaluation, top_n)
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
        episodes_without_need=without_need,
        feedback_episodes=sum(bool(e.others) for e in episodes) if feedback else 0,
    )
    return EvalReport(
        settings=evaluation,
        vocabulary=vocabulary.value,
        answer_order=order.value,
        feedback=feedback,
        top_n=top_n,
        sizes=sizes,
        order=world.order,
        answers=tuple(answers),
        systems=tuple((system.name, system.description) for system in resolved),
        results=tuple(results[k, system.name] for k in answers for system in resolved),
        seconds=time.perf_counter() - started,
        episodes="validation" if validation else "test",
    )


def format_table(report: EvalReport) -> str:
    """One readable table: a row per K and system, each metric as ``value [low, high]``."""
    k = report.settings.slate_size
    columns = (
        (f"HR@{k}", "hit_rate"),
        (f"NDCG@{k}", "ndcg"),
        ("MRR", "mrr"),
        (f"top-{report.top_n}", "top_n"),
        (f"Recall@{k}", "recall"),
        ("coverage", "coverage"),
        ("diversity", "diversity"),
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
    left_out = (
        f"; {sizes.episodes_without_need} {report.episodes} targets without a {report.vocabulary} need left out"
        if sizes.episodes_without_need
        else ""
    )
    liked = (
        f"; feedback: {sizes.feedback_episodes} shoppers liked {report.feedback} earlier item(s) first"
        if report.feedback
        else ""
    )
    caption = [
        f"Shoppers: {report.vocabulary} vocabulary, {report.answer_order} order{left_out}{liked}.",
        f"Cold-start benchmark: {sizes.episodes} {report.episodes} episodes "
        f"({sizes.new_item_episodes} with a new-arrival target), "
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


def plot_report(report: EvalReport, path: Path, metric: str = "hit_rate") -> Path:
    """Draw a metric (default HR@slate) against K, one line per system with its 95% interval as a band, into
    a PNG file; returns the path.

    Raises:
        ValueError: ``metric`` is not a field of :class:`Metrics`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metric not in Metrics.__dataclass_fields__:
        raise ValueError(f"unknown metric '{metric}'; known: {', '.join(Metrics.__dataclass_fields__)}")
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for system, _ in report.systems:
        rows = [report.result(system, k) for k in report.answers]
        values = [getattr(row.metrics, metric) for row in rows]
        axes.plot(report.answers, [v.value for v in values], marker="o", label=system)
        axes.fill_between(report.answers, [v.low for v in values], [v.high for v in values], alpha=0.12)
    title = "HR@" + str(report.settings.slate_size) if metric == "hit_rate" else metric
    axes.set_xlabel("questions answered (K)")
    axes.set_ylabel(title)
    axes.set_xticks(list(report.answers))
    axes.set_title(
        f"{title} by K: {report.vocabulary} shoppers, {report.answer_order}"
        + (f", {report.feedback} liked item(s)" if report.feedback else "")
        + f" ({report.sizes.episodes} episodes)"
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
