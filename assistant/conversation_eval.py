"""The conversation benchmark (``concierge eval --conversation``): the real engine talks to simulated shoppers.

Each test episode's shopper (:class:`assistant.simulator.SimulatedShopper`, in the chosen vocabulary) opens with
its need and then, turn by turn:

- answers the engine's question from the target's metadata (the target's value of the facet asked, as a quick
  reply when it is offered and typed otherwise; "no preference" when the target has none);
- on a slate: likes one of its own earlier items when one is shown (a thumbs up), says "not <brand>" when every
  card shows one brand and it is not the target's maker (:attr:`assistant.simulator.SimulatedShopper.maker`),
  and otherwise asks to see others;
- on anything else, says its need again (once), then asks to see others.

An episode succeeds at the first turn whose cards hold the target; it stops there or after :data:`MAX_TURNS`
shopper turns. Reported, with 95% bootstrap intervals: success within T = 3, 5, 8 and 15 turns, the average
number of turns (a failure counts as 15, as the multi-round conversational recommendation literature does), and
the share of episodes whose target has been shown by each turn, and HR@10 per turn: after each turn, whether
the target is among the ten best items the ranking system would show next for the profile so far (unseen items
only; an episode whose target was shown counts as a hit from then on). The strategies share everything but the
question policy: ``engine`` (:class:`assistant.policy.QuestionPolicy`: the question of highest reach, or entropy
with ``conversation.question_choice``, and the question on title words when ``conversation.word_questions`` is
on), ``fixed order`` (the simulator's answer order over the catalog's
facets, :class:`assistant.policy.FixedOrderPolicy`), ``fixed + words`` (the same order, then the question on title
words: the engine's questions in a fixed order; run only when word questions are on) and ``no questions``
(recommend at once; feedback only).

A question on title words (:data:`assistant.policy.WORDS`) is answered with the first offered word the target's
title has (:meth:`assistant.simulator.SimulatedShopper.pick_word`), "no preference" when it has none of them.

The ranking system is the trained blend fitted on the training interactions of the benchmark's split (evaluation
targets held out), as in the ranking benchmark.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.policy import NO_PREFERENCE, WORDS, FixedOrderPolicy, QuestionPolicy
from assistant.simulator import (
    NEED,
    Episode,
    Order,
    ShopperWorld,
    SimulatedShopper,
    Vocabulary,
    episodes_from_split,
)
from data.facets import discover_facets
from data.normalize import brand_key
from data.schema import Catalog, Interactions
from data.settings import Settings
from data.splits import make_split, stable_seed

MAX_TURNS = 15
HR_K = 10
WITHIN = (3, 5, 8, 15)
STRATEGIES = ("engine", "fixed order", "fixed + words", "no questions")
BOOTSTRAP = 1000


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's outcome over the episodes.

    Attributes:
        strategy: The strategy's name.
        turns: Per episode, the turn whose cards held the target; ``0`` for a failure.
        seconds: Wall time of the strategy's conversations.
    """

    strategy: str
    turns: tuple[int, ...]
    seconds: float
    hits: tuple[tuple[bool, ...], ...] = ()
    asked: tuple[tuple[str, ...], ...] = ()
    explanations: int = 0
    unsupported: int = 0
    example: str = ""

    def success_within(self, t: int) -> np.ndarray:
        turns = np.array(self.turns)
        return (turns > 0) & (turns <= t)

    def hit_rate(self, turn: int) -> np.ndarray:
        """Per episode, 1.0 when the target was in the top 10 after ``turn`` (1-based), else 0.0."""
        return np.array([row[turn - 1] for row in self.hits], dtype=float)

    def average_turns(self) -> np.ndarray:
        turns = np.array(self.turns, dtype=float)
        return np.where(turns > 0, turns, MAX_TURNS)


@dataclass(frozen=True)
class ConversationReport:
    vocabulary: str
    episodes: int
    skipped: int
    results: tuple[StrategyResult, ...]
    seed: int
    shoppers: str = "test"


def _interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    if not len(values):
        return float("nan"), float("nan")
    samples = rng.integers(len(values), size=(BOOTSTRAP, len(values)))
    means = values[samples].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


@dataclass
class _Audit:
    """Every explanation shown, checked against the catalog and the store's history (:func:`assistant.explain.
    audit`)."""

    shop: object
    brands: frozenset[str]
    shown: int = 0
    failed: int = 0
    example: str = ""

    def check(self, service, session: str, cards) -> None:
        from assistant.explain import audit

        shop = self.shop
        profile = service.view(session).conversation.profile
        for card in cards:
            evidence = shop.evidence(card.item_id, profile.liked)
            generated = shop.generated.get(card.item_id, "")
            findings = audit(
                card.explanation, shop.catalog[card.item_id], profile, self.brands, evidence, generated
            )
            self.shown += 1
            if findings:
                self.failed += 1
                self.example = self.example or f"{card.explanation.text!r}: {findings[0]}"


def _in_top_10(service, session: str, target: str) -> bool:
    """Whether the target is among the ten best unseen items for the session's profile now."""
    profile = service.view(session).conversation.profile
    ranked = service.engine.rank(profile, session, HR_K)
    return any(r.item_id == target for r in ranked)


def _talk(
    service,
    episode: Episode,
    shopper: SimulatedShopper,
    audit: _Audit | None = None,
    hits: list[bool] | None = None,
    asked: list[str] | None = None,
) -> int:
    """One conversation; the turn whose cards held the target, 0 when none did. ``hits``, when given, gets HR@10
    after each of the :data:`MAX_TURNS` turns; ``asked`` the facet of each question asked."""
    session = episode.episode_id
    service.start(session)
    target = episode.target
    own = set(episode.others)
    target_maker = shopper.maker
    said_need_again = False
    reply = service.send(session, shopper.need)
    for turn in range(1, MAX_TURNS + 1):
        if asked is not None and reply.question is not None:
            asked.append(reply.question.facet)
        if audit is not None and reply.cards:
            audit.check(service, session, reply.cards)
        if any(card.item_id == target for card in reply.cards):
            if hits is not None:
                hits.extend([True] * (MAX_TURNS - len(hits)))
            return turn
        if hits is not None:
            hits.append(_in_top_10(service, session, target))
        if turn == MAX_TURNS:
            break
        if reply.question is not None and reply.question.facet == WORDS:
            picked = shopper.pick_word(reply.question.keys)
            reply = service.send(session, NO_PREFERENCE if picked is None else reply.question.options[picked])
        elif reply.question is not None:
            answer = shopper.answer(reply.question.facet)
            offered = {label.casefold(): label for label in reply.question.options}
            text = NO_PREFERENCE if answer.value is None else offered.get(answer.text.casefold(), answer.text)
            reply = service.send(session, text)
        elif reply.cards:
            mine = [card.item_id for card in reply.cards if card.item_id in own]
            brands = {card.brand for card in reply.cards}
            if mine:
                own.discard(mine[0])
                reply = service.feedback(session, mine[0], liked=True)
            elif (
                len(brands) == 1
                and next(iter(brands))
                and target_maker
                and brand_key(next(iter(brands))) != target_maker
            ):
                reply = service.send(session, f"not {next(iter(brands))}")
            else:
                reply = service.send(session, "show me others")
        elif not said_need_again:
            said_need_again = True
            reply = service.send(session, shopper.need)
        else:
            reply = service.send(session, "show me others")
    return 0


def run_conversations(
    settings: Settings,
    catalog: Catalog,
    interactions: Interactions,
    *,
    vocabulary: str = "vague",
    max_episodes: int | None = None,
    paraphrases: Mapping[str, str] | None = None,
    strategies: Sequence[str] = STRATEGIES,
    system=None,
    validation: bool = False,
    hit_rate: bool = True,
) -> ConversationReport:
    """Run the conversation benchmark (see the module docstring). ``system``: a fitted ranking system to use
    instead of the trained blend (tests); ``validation``: the validation shoppers' episodes instead of the test
    shoppers' (to choose settings on); ``hit_rate``: measure HR@10 after every turn (one more ranking a turn)."""
    from assistant.build import build_assistant
    from assistant.sessions import MemoryStore
    from ranking.rerank import FullBlend
    from ranking.system import TrainingData

    facets = discover_facets(catalog)
    split = make_split(catalog, interactions, settings.eval)
    world = ShopperWorld.build(catalog, facets, settings.eval, Order.NEED_FIRST, paraphrases)
    episodes = episodes_from_split(split, settings.eval, max_episodes, validation=validation)
    if system is None:
        system = FullBlend(settings)
        system.fit(TrainingData.from_split(catalog, facets, split))
    shoppers = [(e, SimulatedShopper(e, world, Vocabulary(vocabulary))) for e in episodes]
    usable = [(e, s) for e, s in shoppers if s.need]
    results = []
    for strategy in strategies:
        assistant = build_assistant(settings, catalog, split.train, system=system, store=MemoryStore())
        shop = assistant.shop
        conversation = settings.conversation
        options = {
            "min_entropy": conversation.min_entropy,
            "min_coverage": conversation.min_coverage,
            "horizon": conversation.slate_size,
            "min_reach_gain": conversation.min_reach_gain,
        }
        order = tuple(name for name in world.order if name != NEED)
        if strategy == "fixed order":
            shop.policy = FixedOrderPolicy(facets, order, budget=conversation.question_budget, **options)
        elif strategy == "fixed + words":
            if shop.policy.words is None:
                continue  # the same as the fixed order
            shop.policy = FixedOrderPolicy(
                facets,
                (*order, WORDS),
                budget=conversation.question_budget,
                words=shop.policy.words,
                **options,
            )
        elif strategy == "no questions":
            shop.policy = QuestionPolicy(facets, budget=0, **options)
        elif strategy != "engine":
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        started = time.perf_counter()
        checked = _Audit(shop, shop.brands)
        hits: list[list[bool]] = []
        asked: list[tuple[str, ...]] = []
        turns = []
        for e, s in usable:
            row: list[bool] | None = [] if hit_rate else None
            facets_asked: list[str] = []
            turns.append(_talk(assistant.service, e, s, checked, row, facets_asked))
            asked.append(tuple(facets_asked))
            if row is not None:
                hits.append(row)
        seconds = time.perf_counter() - started
        results.append(
            StrategyResult(
                strategy,
                tuple(turns),
                seconds,
                tuple(tuple(row) for row in hits),
                tuple(asked),
                checked.shown,
                checked.failed,
                checked.example,
            )
        )
    return ConversationReport(
        vocabulary,
        len(usable),
        len(shoppers) - len(usable),
        tuple(results),
        settings.eval.seed,
        "validation" if validation else "test",
    )


def conversation_json(report: ConversationReport) -> dict[str, object]:
    """The report as plain data, with intervals."""
    rng = np.random.default_rng(stable_seed(report.seed, "conversation bootstrap"))
    rows = []
    for result in report.results:
        row: dict[str, object] = {"strategy": result.strategy, "seconds": result.seconds}
        for t in WITHIN:
            values = result.success_within(t).astype(float)
            row[f"success@{t}"] = {"value": float(values.mean()), "interval": _interval(values, rng)}
        turns = result.average_turns()
        row["average_turns"] = {"value": float(turns.mean()), "interval": _interval(turns, rng)}
        row["shown_by_turn"] = [float(result.success_within(t).mean()) for t in range(1, MAX_TURNS + 1)]
        if result.hits:
            row["hr@10_by_turn"] = [
                {"value": float(result.hit_rate(t).mean()), "interval": _interval(result.hit_rate(t), rng)}
                for t in range(1, MAX_TURNS + 1)
            ]
        row["questions_per_episode"] = float(np.mean([len(a) for a in result.asked])) if result.asked else 0.0
        row["first_question"] = dict(Counter(a[0] if a else "none" for a in result.asked).most_common())
        row["explanations_shown"] = result.explanations
        row["explanations_with_unsourced_facts"] = result.unsupported
        row["unsourced_example"] = result.example
        rows.append(row)
    by_name = {result.strategy: result for result in report.results}
    engine = by_name.get("engine")

    def same_first(fixed: StrategyResult | None) -> float | None:
        if engine is None or fixed is None or not engine.asked or not fixed.asked:
            return None
        # The conversations part once their cards differ, so only the first questions are compared.
        pairs = [(a, b) for a, b in zip(engine.asked, fixed.asked, strict=True) if a and b]
        return float(np.mean([a[0] == b[0] for a, b in pairs])) if pairs else None

    same = same_first(by_name.get("fixed order"))
    same_words = same_first(by_name.get("fixed + words"))
    return {
        "vocabulary": report.vocabulary,
        "engine_first_question_same_as_fixed_order": same,
        "engine_first_question_same_as_fixed_words": same_words,
        "episodes": report.episodes,
        "shoppers": report.shoppers,
        "skipped_without_need": report.skipped,
        "max_turns": MAX_TURNS,
        "results": rows,
    }


def format_conversation(report: ConversationReport) -> str:
    """The report as a table: success within T turns and average turns, each with its 95% interval."""
    document = conversation_json(report)
    lines = [
        f"Conversation benchmark: {report.episodes} {report.shoppers} episodes, {report.vocabulary} shoppers"
        + (f" ({report.skipped} without a need statement left out)" if report.skipped else "")
        + f"; at most {MAX_TURNS} turns, a failure counts as {MAX_TURNS}; "
        + f"95% intervals from {BOOTSTRAP} bootstrap samples.",
        "",
    ]
    header = f"{'strategy':14}" + "".join(f"{f'success@{t}':>22}" for t in WITHIN) + f"{'average turns':>24}"
    lines.append(header)
    for row in document["results"]:
        cells = []
        for key in [f"success@{t}" for t in WITHIN] + ["average_turns"]:
            value, (low, high) = row[key]["value"], row[key]["interval"]
            cells.append(f"{value:.3f} [{low:.3f}, {high:.3f}]")
        lines.append(f"{row['strategy']:14}" + "".join(f"{c:>22}" for c in cells[:-1]) + f"{cells[-1]:>24}")
    lines.append("")
    lines.append("target shown by turn 1..15:")
    for row in document["results"]:
        lines.append(f"  {row['strategy']:14} " + " ".join(f"{v:.2f}" for v in row["shown_by_turn"]))
    if any("hr@10_by_turn" in row for row in document["results"]):
        lines.append(
            f"HR@{HR_K} after turn t (the ten best unseen items for the profile; a shown target counts), "
            "with 95% intervals:"
        )
        lines.append(f"  {'t':>3} " + "".join(f"{row['strategy']:>22}" for row in document["results"]))
        for t in (1, 2, 3, 4, 5, 8, 15):
            cells = []
            for row in document["results"]:
                cell = row["hr@10_by_turn"][t - 1]
                low, high = cell["interval"]
                cells.append(f"{cell['value']:.3f} [{low:.3f}, {high:.3f}]")
            lines.append(f"  {t:>3} " + "".join(f"{c:>22}" for c in cells))
    lines.append("questions asked per episode, and the facet asked first:")
    for row in document["results"]:
        firsts = ", ".join(f"{facet} {n}" for facet, n in row["first_question"].items())
        lines.append(f"  {row['strategy']:14} {row['questions_per_episode']:.2f}; first: {firsts}")
    for key, name in (
        ("engine_first_question_same_as_fixed_order", "fixed order"),
        ("engine_first_question_same_as_fixed_words", "fixed + words"),
    ):
        if document[key] is not None:
            lines.append(
                f'  the engine\'s first question is the same as "{name}" in {document[key]:.1%} of the episodes '
                "where both asked"
            )
    lines.append("explanations shown (template sentences, as the benchmark shows them), and those with a")
    lines.append("fact that the catalog, the store's history and the shopper's words do not support:")
    for row in document["results"]:
        example = row["unsourced_example"]
        lines.append(
            f"  {row['strategy']:14} {row['explanations_shown']:,} shown, "
            f"{row['explanations_with_unsourced_facts']} unsupported"
            + (f", e.g. {example}" if example else "")
        )
    lines.append(
        "(" + ", ".join(f"{row['strategy']} {row['seconds']:.0f} s" for row in document["results"]) + ")"
    )
    return "\n".join(lines)


__all__ = [
    "ConversationReport",
    "StrategyResult",
    "conversation_json",
    "format_conversation",
    "run_conversations",
]
