"""Candidate generation benchmark: candidate recall on the cold-start episodes, and query latency as the catalog grows.

Usage:
    python -m benchmarks.bench_candidates [--sizes 10000,100000,300000] [--parts recall,latency,eval]
        [--shopper specific|vague] [--order facets-first|need-first] [--json]

The parts:

- ``recall``: on the benchmark's test episodes (the split, the simulated shopper and its answers of
  :mod:`assistant.evaluation`), the share of targets inside the ``k`` = 100 candidates after K answers, for each
  channel set (lexical; vector over item text; vector over item text and generated descriptions; hybrid), next to
  the faceted-popularity reference (the first 100 items the store's "filter by the answers, sort by
  bestsellers" shows). Candidate recall is the ceiling of every reranker that only reorders candidates.
- ``latency``: p50/p95 of hybrid candidate generation (every channel, hard filters, fusion; the query
  embedding, which does not grow with the catalog, is timed apart) at k = 100, on the real catalog and on larger
  ones made of the real items plus generated items (see :func:`scaled_catalog`) with real embeddings of their
  generated titles. Embeddings are cached under ``<artifacts>/bench/``, since 300,000 titles take several
  minutes to embed on 2 cores. Also compares the ways of applying hard filters to the vector channel
  (:class:`retrieval.channels.FilterMode`): Chroma's ``where`` and filtering an over-fetched list.
- ``weights`` (not in the default parts): hybrid's candidate recall on the validation episodes as its
  popularity weights vary, how their defaults were chosen.
- ``eval``: the ranking benchmark (:func:`assistant.evaluation.run_evaluation`) for the candidate systems of
  :mod:`ranking.candidate_systems` next to ``faceted_popularity``, K = 0..5.

The simulated shopper (:mod:`assistant.simulator`) is by default the one the documented figures
(``docs/benchmarks.md``, the README) were measured with: ``specific`` need statements and the facets answered
first (category_1, category_2, brand, need, ...). ``--shopper vague --order need-first`` runs the shopper of the
current headline benchmark instead; the labels ``K=n`` then count the need as the first answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from assistant.evaluation import format_table, report_to_json, run_evaluation
from assistant.simulator import NEED, Order, ShopperWorld, SimulatedShopper, Vocabulary, episodes_from_split
from data.descriptions import descriptions_for_retrieval, load_descriptions
from data.facets import Facets, discover_facets
from data.load import load_catalog, load_interactions
from data.schema import Catalog, Interactions, Item
from data.settings import EvalSettings, Settings, load_settings
from data.splits import make_split, stable_seed
from ranking import metrics
from ranking.baselines import FacetedPopularitySystem
from ranking.candidate_systems import (
    DESCRIPTIONS,
    LEXICAL,
    POPULARITY,
    VECTOR,
    CandidateSystem,
    HybridSystem,
    LexicalSystem,
    VectorDescriptionsSystem,
    VectorSystem,
    catalog_key,
    fusion_weights,
)
from ranking.system import TrainingData
from retrieval.candidates import Candidate, CandidateGenerator, truncate_query
from retrieval.channels import FilterMode, LexicalChannel, PriorChannel, VectorChannel
from retrieval.embeddings import DIMENSION, MODEL_NAME, TextEmbedder, get_embedder, item_text
from retrieval.index import DESCRIPTIONS as DESCRIBED
from retrieval.index import ITEMS, VectorIndex, build_index
from retrieval.lexical import LexicalIndex
from retrieval.profile import Constraint, Profile, ProfileQuery, profile_query

# Generated titles are embedded and cached in chunks, so a long run that is interrupted keeps what it made
# and a smaller size reuses the first chunks of a larger one.
EMBED_CHUNK = 10_000
# The shopper of the documented figures (docs/benchmarks.md, the README): see the module docstring.
DOCUMENTED_VOCABULARY = Vocabulary.SPECIFIC
DOCUMENTED_ORDER = Order.FACETS_FIRST


def add_shopper_options(parser: argparse.ArgumentParser) -> None:
    """``--shopper`` and ``--order``, defaulting to the shopper the documented figures were measured with."""
    parser.add_argument(
        "--shopper",
        type=Vocabulary,
        choices=[Vocabulary.SPECIFIC, Vocabulary.VAGUE],
        default=DOCUMENTED_VOCABULARY,
        help="how the simulated shopper words the need (default: %(default)s, as documented)",
    )
    parser.add_argument(
        "--order",
        type=Order,
        choices=list(Order),
        default=DOCUMENTED_ORDER,
        help="which questions the simulated shopper answers first (default: %(default)s, as documented)",
    )


# The generated catalogs are fixed (not drawn from the evaluation seed), so their cached embeddings serve every run.
GENERATED_SEED = 0
_DIGITS = re.compile(r"\d")


def _generated_item(number: int, template: Item, donor: Item, brand: Item, rng: np.random.Generator) -> Item:
    """A new item made from a real one: new model numbers and sizes, a word from a sibling, maybe a new brand.

    The category path is the template's, so hard filters are as selective on the generated catalog as on the
    real one; the brand is the template's or, one time in three, another brand of the same category.
    """
    brand_words = set(template.brand.split())
    words = [
        word if word in brand_words else _DIGITS.sub(lambda _: str(rng.integers(10)), word)
        for word in template.title.split()
    ]
    donor_words = [word for word in donor.title.split() if word.isalpha() and len(word) > 3]
    if donor_words and len(words) > 2:
        words[int(rng.integers(1, len(words)))] = donor_words[int(rng.integers(len(donor_words)))]
    title, own = " ".join(words), template.brand
    if brand.brand and brand.brand != own and rng.random() < 1 / 3:
        title = title.replace(own, brand.brand) if own and own in title else f"{brand.brand} {title}"
        own = brand.brand
    return Item(f"gen-{number}", title, brand=own, categories=template.categories)


def scaled_catalog(base: Catalog, size: int, seed: int = 0) -> Catalog:
    """The real items followed by generated ones, ``size`` items in all (the same items for the same seed).

    Example:
        >>> base = Catalog([Item("1", "Acme X100 Stapler, Black", brand="Acme", categories=("Desk",))])
        >>> grown = scaled_catalog(base, 3)
        >>> len(grown), grown.items[1].item_id, grown.items[1].categories
        (3, 'gen-1', ('Desk',))
    """
    items = list(base.items)[:size]
    siblings: dict[tuple[str, ...], list[Item]] = defaultdict(list)
    for item in base:
        siblings[item.categories].append(item)
    for number in range(len(items), size):
        rng = np.random.default_rng(stable_seed(seed, "generated item", number))
        template = base.items[int(rng.integers(len(base)))]
        family = siblings[template.categories]
        donor = family[int(rng.integers(len(family)))]
        brand = family[int(rng.integers(len(family)))]
        items.append(_generated_item(number, template, donor, brand, rng))
    return Catalog(items)


def cached_title_embeddings(
    titles: list[str], cache: Path, embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """Embeddings of ``titles``, computed chunk by chunk through ``embed`` and cached under ``cache``.

    A chunk's file name carries a digest of its titles, so a changed generator never reuses a stale chunk.
    """
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(titles), EMBED_CHUNK):
        chunk = titles[start : start + EMBED_CHUNK]
        digest = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
        path = cache / f"titles-{len(chunk)}-{digest}.npy"
        if path.exists():
            parts.append(np.load(path))
            continue
        vectors = np.asarray(embed(chunk), dtype=np.float32)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, vectors)
        partial.replace(path)
        parts.append(vectors)
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Candidate recall on the benchmark episodes
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecallRow:
    """Candidate recall of one system (or the faceted reference) for one kind of profile.

    Attributes:
        system: A candidate system's name, or ``"faceted_popularity"`` (its first ``k`` items).
        answers: What the shopper said: ``"K=3"`` (the first 3 answers of the run's order) or
            ``"need only"`` (the need statement and nothing else: a shopper who types what they want).
        recall: Share of episodes whose target is among the ``k`` candidates, as the generator returns them.
        found_by_channels: Share of episodes whose target a channel found (not a fill; see
            :mod:`retrieval.candidates`).
        random_fill: The recall expected if fills were drawn at random from the allowed items instead of in
            catalog order: the fair figure, since the bundled sample's catalog order follows popularity.
        allowed_median: Median number of items the answers' hard filters allow.
    """

    system: str
    answers: str
    recall: float
    found_by_channels: float
    random_fill: float
    allowed_median: float


class HybridTextSystem(CandidateSystem):
    """``hybrid`` without its popularity channel: what the text channels reach on their own (an ablation)."""

    name = "hybrid_text"
    description = (
        "Lexical + bi-encoder (item text, generated descriptions) candidates, RRF, facets as filters."
    )
    searches = (LEXICAL, VECTOR, DESCRIPTIONS)


def _episodes(
    catalog: Catalog,
    interactions: Interactions,
    settings: EvalSettings,
    *,
    vocabulary: Vocabulary,
    order: Order,
    validation: bool = False,
) -> tuple[Facets, TrainingData, list[SimulatedShopper]]:
    """The facets, the training data and one shopper per test (or validation) episode of the benchmark."""
    facets = discover_facets(catalog)
    split = make_split(catalog, interactions, settings)
    world = ShopperWorld.build(catalog, facets, settings, order)
    episodes = episodes_from_split(split, settings, validation=validation)
    shoppers = [SimulatedShopper(episode, world, vocabulary) for episode in episodes]
    return facets, TrainingData.from_split(catalog, facets, split), shoppers


def _profile_sets(shoppers: Sequence[SimulatedShopper], answers: Sequence[int]) -> dict[str, list[Profile]]:
    """Each shopper's profile after each count of answers (``"K=3"``), and with the need statement alone."""
    sets = {f"K={count}": [s.profile(count) for s in shoppers] for count in answers}
    sets["need only"] = [Profile(need=s.need, session_id=s.episode.episode_id) for s in shoppers]
    return sets


def _outcome(target: int, candidates: Sequence[Candidate], allowed: np.ndarray) -> tuple[float, float, float]:
    """In the list; found by a channel; chance of being in the list were the fills drawn at random."""
    found = {c.position for c in candidates if c.channels}
    listed = any(c.position == target for c in candidates)
    if target in found:
        return 1.0, 1.0, 1.0
    fills = len(candidates) - len(found)
    pool = int(allowed.sum()) - len(found)
    chance = fills / pool if allowed[target] and pool > 0 else 0.0
    return float(listed), 0.0, chance


def candidate_recall(
    catalog: Catalog,
    interactions: Interactions,
    settings: Settings,
    systems: Sequence[CandidateSystem],
    answers: Sequence[int] = (1, 3, 5),
    *,
    vocabulary: Vocabulary,
    order: Order,
) -> list[RecallRow]:
    """Candidate recall of the systems (fitted here) on the benchmark's test episodes, and the faceted reference,
    for shoppers who word their need in ``vocabulary`` and answer in ``order``."""
    facets, training, shoppers = _episodes(
        catalog, interactions, settings.eval, vocabulary=vocabulary, order=order
    )
    k = settings.retrieval.candidates
    reference = FacetedPopularitySystem(settings)
    reference.fit(training)
    for system in systems:
        system.fit(training)
    targets = np.array([catalog.position(shopper.episode.target) for shopper in shoppers])
    # The harness's tie-break, so the reference's ties among equally popular items fall as in the benchmark.
    tie = np.stack(
        [
            np.random.default_rng(stable_seed(settings.eval.seed, "tie", s.episode.episode_id)).random(
                len(catalog)
            )
            for s in shoppers
        ]
    )
    rows = []
    for label, profiles in _profile_sets(shoppers, answers).items():
        masks = [reference.filter_index.mask(profile_query(p, facets).filters) for p in profiles]
        allowed = float(np.median([mask.sum() for mask in masks]))
        top = metrics.rank_order(reference.score_batch(profiles), tie)[:, :k]
        inside = float(np.mean([target in row for target, row in zip(targets, top, strict=True)]))
        rows.append(RecallRow("faceted_popularity", label, inside, inside, inside, allowed))
        for system in systems:
            found = system.candidates_batch(profiles)
            outcomes = np.array(
                [_outcome(t, cands, mask) for t, cands, mask in zip(targets, found, masks, strict=True)]
            )
            recall, by_channels, random_fill = outcomes.mean(axis=0).tolist()
            rows.append(RecallRow(system.name, label, recall, by_channels, random_fill, allowed))
    return rows


@dataclass(frozen=True)
class WeightRow:
    """Candidate recall of ``hybrid`` with one popularity weight, for profiles with or without words."""

    requests: str
    weight: float
    recall: dict[str, float]


def popularity_weights(
    catalog: Catalog,
    interactions: Interactions,
    settings: Settings,
    hybrid: CandidateSystem,
    with_words: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0),
    without_words: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 100.0),
    *,
    vocabulary: Vocabulary,
    order: Order,
) -> list[WeightRow]:
    """Candidate recall of ``hybrid`` as its popularity weights vary, on the validation episodes (the test
    episodes stay unseen): how the defaults were chosen.

    The weight for profiles with words is tried on the K values (1 to 5) whose answers include the need
    statement, and on the need alone; the weight for profiles without words on the K values before it. Facets
    first, that is K = 4, 5 and K = 1, 2, 3 (the shopper gives words from the fourth answer on); need first,
    K = 1 to 5 and no K at all (no "without words" rows).
    """
    _, training, shoppers = _episodes(
        catalog, interactions, settings.eval, vocabulary=vocabulary, order=order, validation=True
    )
    hybrid.fit(training)
    generator = hybrid.generator
    targets = [catalog.position(shopper.episode.target) for shopper in shoppers]
    counts = (1, 2, 3, 4, 5)
    sets = _profile_sets(shoppers, counts)
    need_at = shoppers[0].order.index(NEED) + 1 if NEED in shoppers[0].order else len(counts) + 1
    worded = [f"K={count}" for count in counts if count >= need_at] + ["need only"]
    wordless = [f"K={count}" for count in counts if count < need_at]

    def recall(label: str) -> float:
        found = hybrid.candidates_batch(sets[label])
        listed = [any(c.position == t for c in cands) for t, cands in zip(targets, found, strict=True)]
        return float(np.mean(listed))

    rows = []
    saved = generator.weights, generator.weights_without_text
    try:
        for weight in with_words:
            generator.weights = {POPULARITY: weight}
            rows.append(WeightRow("with words", weight, {x: recall(x) for x in worded}))
        for weight in without_words if wordless else ():
            generator.weights_without_text = {POPULARITY: weight}
            rows.append(WeightRow("without words", weight, {x: recall(x) for x in wordless}))
    finally:
        generator.weights, generator.weights_without_text = saved
    return rows


def format_weights(rows: Sequence[WeightRow]) -> str:
    body = [
        [r.requests, f"{r.weight:g}", "  ".join(f"{label} {value:.3f}" for label, value in r.recall.items())]
        for r in rows
    ]
    return _table(["requests", "popularity weight", "candidate recall"], body)


# ---------------------------------------------------------------------------------------------------------------
# Latency of hybrid candidates as the catalog grows
# ---------------------------------------------------------------------------------------------------------------

# Stand-in text for the descriptions collection of a generated catalog: the vectors are the titles', the
# collection's size (every third item, about the bundled sample's share of thin items) is what latency feels.
_STAND_IN = "generated description stand-in"


class _LookupEmbedder:
    """Serves cached vectors by text, under the real model's name, so an index of generated items builds fast."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self._vectors = vectors
        self.name = MODEL_NAME
        self.dimension = DIMENSION

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vectors[text] for text in texts]).astype(np.float32)


@dataclass(frozen=True)
class LatencyRow:
    """Hybrid candidate latency (every channel, hard filters, fusion), k = 100, the query vector given.

    The query embedding is timed apart (:class:`EmbeddingTiming`): it does not grow with the catalog, and on a
    shared machine its noise would hide how retrieval grows.

    Attributes:
        items: Catalog size.
        workload: Which filters the queries carry (all carry a need statement).
        filtering: How the vector channel applied the filters (:class:`retrieval.channels.FilterMode`).
        allowed_median: Median number of items the filters allow.
        p50_ms: Median latency of one request.
        p95_ms: 95th percentile.
        queries: How many requests were timed.
    """

    items: int
    workload: str
    filtering: str
    allowed_median: float
    p50_ms: float
    p95_ms: float
    queries: int


@dataclass(frozen=True)
class EmbeddingTiming:
    """Latency of embedding one query text (what a request adds to :class:`LatencyRow`)."""

    p50_ms: float
    p95_ms: float
    queries: int


# Latency workloads: a label and the questions whose answers join the need statement (category_2 implies
# category_1, whose label joins the context as in the benchmark's answers).
_WORKLOADS = (
    ("need only", ()),
    ("need + category_1", ("category_1",)),
    ("need + category_2 + brand", ("category_1", "category_2", "brand")),
)


def _workloads(
    shoppers: Sequence[SimulatedShopper], facets: Facets, limit: int
) -> dict[str, list[ProfileQuery]]:
    """Need statements with no filter, with the first category level, and with category_2 + brand: each
    shopper's own answers to those questions, whatever the run's answer order."""
    chosen = [shopper for shopper in shoppers if shopper.need][:limit]
    answered: list[tuple[Constraint, ...]] = [s.profile(len(s.order)).constraints for s in chosen]
    workloads = {}
    for label, questions in _WORKLOADS:
        profiles = [
            Profile(constraints=tuple(c for c in constraints if c.facet in questions), need=s.need)
            for s, constraints in zip(chosen, answered, strict=True)
        ]
        workloads[label] = [profile_query(profile, facets) for profile in profiles]
    return workloads


def _semantic_text(query: ProfileQuery) -> str:
    """The text the generator embeds for a query (its text, then its context)."""
    return truncate_query(f"{query.text} {query.context}")


def _time_generator(
    generator: CandidateGenerator, queries: Sequence[ProfileQuery], k: int
) -> tuple[float, float, float]:
    """Median allowed items, p50 and p95 milliseconds of :meth:`CandidateGenerator.generate`."""
    first = queries[0]
    # Warm-up: the first call pays one-off costs (Chroma's segment loading), which are not a request's latency.
    generator.generate(first.text, first.filters, k, first.context)
    seconds = []
    for query in queries:
        started = time.perf_counter()
        generator.generate(query.text, query.filters, k, query.context)
        seconds.append(time.perf_counter() - started)
    allowed = float(np.median([generator.filter_index.mask(query.filters).sum() for query in queries]))
    ms = np.array(seconds) * 1000
    return allowed, float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _time_embedding(embedder: TextEmbedder, texts: Sequence[str]) -> EmbeddingTiming:
    embedder.embed(texts[:1])
    seconds = []
    for text in texts:
        started = time.perf_counter()
        embedder.embed([text])
        seconds.append(time.perf_counter() - started)
    ms = np.array(seconds) * 1000
    return EmbeddingTiming(float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), len(texts))


def _scaled_generators(
    base: Catalog,
    size: int,
    settings: Settings,
    embedder: TextEmbedder,
    given: TextEmbedder,
    cache: Path,
    popularity: np.ndarray,
) -> tuple[Catalog, dict[FilterMode, CandidateGenerator]]:
    """Hybrid generators (one per filter mode) over ``size`` items: the real ones plus generated ones.

    ``embedder`` embeds generated titles (once, cached); ``given`` serves the benchmark's query vectors;
    ``popularity`` is the real items' training interaction counts (see :func:`_scaled_popularity`).
    """
    weights, wordless = fusion_weights(settings.retrieval)
    catalog = scaled_catalog(base, size, GENERATED_SEED)
    titles = [item.title for item in catalog]
    vectors = cached_title_embeddings(titles, cache / "titles", embedder.embed)
    described = {item.item_id: _STAND_IN for item in catalog.items[::3]}
    table = {}
    for item, vector in zip(catalog, vectors, strict=True):
        table[item_text(item)] = vector
        if item.item_id in described:
            table[item_text(item, _STAND_IN)] = vector
    lookup = _LookupEmbedder(table)
    store = replace(
        settings,
        paths=replace(settings.paths, artifacts=cache / f"index-{size}-{catalog_key(catalog)}"),
        retrieval=replace(settings.retrieval, chroma_host=""),
    )
    build_index(store, catalog, described, progress=True, embedder=lookup, replace_outdated=True)
    index = VectorIndex.open(store, embedder=lookup)
    lexical = LexicalChannel(LexicalIndex.build(catalog, described))
    members = np.array([item.item_id in described for item in catalog])
    collections = {ITEMS: None, DESCRIBED: members}
    generators = {}
    popular = PriorChannel(POPULARITY, _scaled_popularity(popularity, len(catalog)))
    for mode in FilterMode:
        channels = [lexical, VectorChannel("vector", index, catalog, collections, filtering=mode), popular]
        generators[mode] = CandidateGenerator(
            catalog, channels, given, settings.retrieval, weights=weights, weights_without_text=wordless
        )
    return catalog, generators


def _scaled_popularity(real: np.ndarray, size: int) -> np.ndarray:
    """Interaction counts for a grown catalog: the real items' own, then draws from the real distribution."""
    rng = np.random.default_rng(GENERATED_SEED)
    return np.concatenate([real[:size], rng.choice(real, size=max(0, size - len(real)))]).astype(np.float64)


def latency(
    catalog: Catalog,
    interactions: Interactions,
    settings: Settings,
    sizes: Sequence[int],
    queries: int,
    hybrid: CandidateSystem,
    *,
    vocabulary: Vocabulary,
) -> tuple[list[LatencyRow], EmbeddingTiming]:
    """Hybrid latency on the real catalog (the fitted system) and on generated catalogs of the given sizes, for
    the need statements of shoppers who word them in ``vocabulary``."""
    # The workloads name their questions (see _WORKLOADS), so the answer order changes nothing here.
    facets, training, shoppers = _episodes(
        catalog, interactions, settings.eval, vocabulary=vocabulary, order=DOCUMENTED_ORDER
    )
    workloads = _workloads(shoppers, facets, queries)
    embedder = get_embedder(settings.retrieval.embedding_batch_size)
    texts = sorted({_semantic_text(query) for batch in workloads.values() for query in batch})
    timing = _time_embedding(embedder, texts[:queries])
    given = _LookupEmbedder(dict(zip(texts, embedder.embed(texts), strict=True)))
    k = settings.retrieval.candidates
    rows = []
    hybrid.fit(training)
    fitted = hybrid.generator
    real = CandidateGenerator(
        catalog,
        fitted.channels,
        given,
        settings.retrieval,
        weights=fitted.weights,
        weights_without_text=fitted.weights_without_text,
    )
    for workload, batch in workloads.items():
        allowed, p50, p95 = _time_generator(real, batch, k)
        rows.append(
            LatencyRow(len(catalog), workload, FilterMode.OVERFETCH.value, allowed, p50, p95, len(batch))
        )
    cache = Path(settings.paths.artifacts).resolve() / "bench"
    for size in sizes:
        grown, generators = _scaled_generators(
            catalog, size, settings, embedder, given, cache, training.item_counts().astype(np.float64)
        )
        for workload, batch in workloads.items():
            for mode, generator in generators.items():
                if workload == "need only" and mode is not FilterMode.OVERFETCH:
                    continue  # without filters every mode runs the same search
                allowed, p50, p95 = _time_generator(generator, batch, k)
                rows.append(LatencyRow(len(grown), workload, mode.value, allowed, p50, p95, len(batch)))
    return rows, timing


# ---------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def format_recall(rows: Sequence[RecallRow], k: int) -> str:
    header = ["answers", "system", f"recall@{k}", "by channels", "random fill", "allowed (median)"]
    body = [
        [
            r.answers,
            r.system,
            f"{r.recall:.3f}",
            f"{r.found_by_channels:.3f}",
            f"{r.random_fill:.3f}",
            f"{r.allowed_median:.0f}",
        ]
        for r in rows
    ]
    return _table(header, body)


def format_latency(rows: Sequence[LatencyRow]) -> str:
    header = ["items", "workload", "filtering", "allowed", "p50 ms", "p95 ms", "queries"]
    body = [
        [
            f"{r.items:,}",
            r.workload,
            r.filtering,
            f"{r.allowed_median:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            str(r.queries),
        ]
        for r in rows
    ]
    return _table(header, body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,300000", help="generated catalog sizes, comma-separated"
    )
    parser.add_argument("--parts", default="recall,latency,eval", help="which parts to run, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="timed requests per workload and size")
    add_shopper_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args(argv)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    unknown = parts - {"recall", "weights", "latency", "eval"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; use recall, weights, latency, eval")
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    shopper = {"vocabulary": args.shopper, "order": args.order}

    settings = load_settings()
    catalog, _ = load_catalog(settings.paths.catalog)
    interactions, _ = load_interactions(settings.paths.interactions, catalog)
    systems = [LexicalSystem(settings), VectorSystem(settings), VectorDescriptionsSystem(settings)]
    systems += [HybridTextSystem(settings), HybridSystem(settings)]
    k = settings.retrieval.candidates
    described = len(descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog))
    document: dict[str, object] = {
        "items": len(catalog),
        "generated_descriptions": described,
        "k": k,
        "rrf_k": settings.retrieval.rrf_k,
        "shopper": {"vocabulary": args.shopper.value, "order": args.order.value},
    }
    output = [
        f"{len(catalog):,} items, {described:,} with a current generated description; shopper: "
        f"{args.shopper} need statements, {args.order}"
    ]
    if "recall" in parts:
        rows = candidate_recall(catalog, interactions, settings, systems, answers=(1, 2, 3, 4, 5), **shopper)
        document["recall"] = [asdict(row) for row in rows]
        document["systems"] = {system.name: system.description for system in systems}
        output.append(f"\nCandidate recall (share of test episodes whose target is among the {k} candidates)")
        output.append(format_recall(rows, k))
    if "weights" in parts:
        rows = popularity_weights(catalog, interactions, settings, systems[-1], **shopper)
        document["weights"] = [asdict(row) for row in rows]
        output.append(
            "\nHybrid candidate recall on the validation episodes as the popularity weight varies (defaults: "
        )
        output[-1] += (
            f"{settings.retrieval.popularity_weight:g} with words, "
            f"{settings.retrieval.popularity_weight_without_text:g} without)"
        )
        output.append(format_weights(rows))
    if "latency" in parts:
        rows, timing = latency(
            catalog, interactions, settings, sizes, args.queries, systems[-1], vocabulary=args.shopper
        )
        document["latency"] = [asdict(row) for row in rows]
        document["query_embedding"] = asdict(timing)
        load = os.getloadavg()[0]
        document["load_average"] = load
        output.append(
            f"\nHybrid candidate latency, k = {k}: channels, filters and fusion, the query vector given "
            f"(load average {load:.1f} on {os.cpu_count()} cores)"
        )
        output.append(format_latency(rows))
        output.append(
            f"Query embedding, one text: p50 {timing.p50_ms:.1f} ms, p95 {timing.p95_ms:.1f} ms "
            f"({timing.queries} texts); a request costs the row's latency plus this."
        )
    if "eval" in parts:
        report = run_evaluation(
            catalog, interactions, settings, systems=["faceted_popularity", *systems], **shopper
        )
        document["eval"] = report_to_json(report)
        output.append("\n" + format_table(report))
    print(json.dumps(document, indent=2) if args.json else "\n".join(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
