"""The benchmark harness: a planted perfect system wins, random loses, and the baselines behave as the brief says."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from assistant.evaluation import format_table, plot_report, report_to_json, run_evaluation
from assistant.simulator import NEED, Order, Vocabulary, episodes_from_split
from data.schema import Catalog, Interactions
from data.settings import EvalSettings, Settings
from data.splits import make_split
from ranking.system import RankingSystem, TrainingData, register, registered_systems, unregister
from retrieval.profile import Profile

# Few resamples keep the tests fast; the figures themselves do not depend on them.
FAST = Settings(eval=EvalSettings(bootstrap_samples=200))
BASELINES = ("random", "popularity", "faceted_popularity")


def _with_eval(**changes) -> Settings:
    return replace(FAST, eval=replace(FAST.eval, **changes))


class Oracle(RankingSystem):
    """Planted perfect system: finds each episode's target by its episode (a test-only cheat)."""

    name = "oracle"
    description = "Knows every target."

    def __init__(self, targets: dict[str, str]) -> None:
        super().__init__(FAST)
        self.targets = targets

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        self.catalog = data.catalog

    def score(self, profile: Profile) -> np.ndarray:
        scores = np.zeros(len(self.catalog))
        scores[self.catalog.position(self.targets[profile.session_id])] = 1.0
        return scores


class Constant(RankingSystem):
    """Every item ties: the ranking is the tie-break alone."""

    name = "constant"
    description = "All zeros."

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        self.n_items = len(data.catalog)

    def score(self, profile: Profile) -> np.ndarray:
        return np.zeros(self.n_items)


class OtherConstant(Constant):
    name = "other_constant"


class WrongShape(Constant):
    name = "wrong_shape"

    def score(self, profile: Profile) -> np.ndarray:
        return np.zeros(self.n_items + 1)


class Remembers(Constant):
    """Ranks the items the shopper liked first: it sees feedback and nothing else."""

    name = "remembers"

    def fit(self, data: TrainingData) -> None:
        super().fit(data)
        self.catalog = data.catalog

    def score(self, profile: Profile) -> np.ndarray:
        scores = np.zeros(self.n_items)
        for item_id in profile.liked:
            scores[self.catalog.position(item_id)] = 1.0
        return scores


def test_baselines_are_registered():
    systems = registered_systems()
    assert set(BASELINES) <= set(systems)
    assert all(issubclass(systems[name], RankingSystem) and systems[name].description for name in BASELINES)


def test_register_refuses_a_taken_name_and_a_missing_one():
    with pytest.raises(ValueError, match="already registered"):
        register(type("Impostor", (Constant,), {"name": "popularity"}))
    with pytest.raises(ValueError, match="name"):
        register(type("Nameless", (Constant,), {"name": ""}))
    register(Constant)
    try:
        assert registered_systems()["constant"] is Constant
    finally:
        unregister("constant")
    assert "constant" not in registered_systems()


def test_planted_perfect_system_ranks_first_and_random_last(office):
    catalog, interactions = office
    settings = FAST
    episodes = episodes_from_split(
        make_split(catalog, interactions, settings.eval), settings.eval, max_episodes=200
    )
    oracle = Oracle({episode.episode_id: episode.target for episode in episodes})
    report = run_evaluation(
        catalog, interactions, settings, answers=(0, 3), systems=[oracle, *BASELINES], max_episodes=200
    )
    assert report.sizes.episodes == 200
    for k in (0, 3):
        perfect = report.result("oracle", k).metrics
        assert perfect.hit_rate.value == perfect.ndcg.value == perfect.mrr.value == 1.0
        mrr = {name: report.result(name, k).metrics.mrr.value for name in (*BASELINES, "oracle")}
        assert max(mrr, key=mrr.get) == "oracle"
    # Popularity reads no answer: at K = 0 it may fall below random by chance, but an answer lifts the store's
    # faceted best sellers above random.
    faceted, random_mrr = (report.result(name, 3).metrics.mrr for name in ("faceted_popularity", "random"))
    assert faceted.low > random_mrr.high
    # New arrivals have no training signal, but the oracle still finds them.
    assert report.result("oracle", 3).metrics.new_hit_rate.value == 1.0


def test_faceted_popularity_beats_popularity_at_three_answers(office):
    catalog, interactions = office
    report = run_evaluation(
        catalog,
        interactions,
        FAST,
        answers=(0, 3),
        systems=["popularity", "faceted_popularity"],
        order=Order.FACETS_FIRST,
    )
    assert report.sizes.episodes == 490
    faceted = report.result("faceted_popularity", 3).metrics.hit_rate
    popular = report.result("popularity", 3).metrics.hit_rate
    assert faceted.low > popular.high
    assert popular.value < 0.05 < 0.3 < faceted.value
    # With nothing said, filtering has nothing to filter on.
    assert report.result("faceted_popularity", 0).metrics == report.result("popularity", 0).metrics
    assert report.order[:5] == ("category_1", "category_2", "brand", NEED, "category_3")


def _small_store(n_users: int = 300) -> tuple[Catalog, Interactions]:
    from data.schema import Interaction, Item

    rng = np.random.default_rng(4)
    items = [
        Item(f"i{n}", f"Widget {n}", brand=f"B{n % 5}", categories=(f"C{n % 3}", f"D{n % 6}"))
        for n in range(80)
    ]
    events = [
        Interaction(f"u{u}", f"i{int(rng.zipf(1.5)) % 80}", order=n)
        for u in range(n_users)
        for n in range(int(rng.integers(2, 7)))
    ]
    return Catalog(items), Interactions(events)


def test_ties_are_broken_the_same_way_for_every_system_and_not_by_catalog_order():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3)
    report = run_evaluation(
        catalog, interactions, settings, answers=(0,), systems=[Constant(FAST), OtherConstant(FAST)]
    )
    first, second = report.results
    assert (first.system, second.system) == ("constant", "other_constant")
    assert first.metrics == second.metrics
    # Catalog order would show the same ten items to everyone.
    assert first.metrics.coverage.value > 10 / len(catalog)


def test_report_is_deterministic_and_complete():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3)
    report = run_evaluation(catalog, interactions, settings, answers=(0, 1, 2), systems=BASELINES)
    again = run_evaluation(catalog, interactions, settings, answers=(0, 1, 2), systems=BASELINES)
    assert [row.metrics for row in report.results] == [row.metrics for row in again.results]
    assert [(row.answers, row.system) for row in report.results][:3] == [(0, name) for name in BASELINES]
    assert report.answers == (0, 1, 2)
    assert report.sizes.test_users == report.sizes.episodes == 90
    assert report.sizes.train_users + report.sizes.validation_users + report.sizes.test_users == 300
    assert report.order == (NEED, "category_1", "category_2", "brand")
    assert (report.vocabulary, report.answer_order, report.feedback) == ("vague", "need-first", 0)
    assert [name for name, _ in report.systems] == list(BASELINES)

    table = format_table(report)
    assert "HR@10" in table and "new HR@10" in table and "top-100" in table and "diversity" in table
    assert "Answer order: need, category_1, category_2, brand" in table
    assert "Shoppers: vague vocabulary, need-first order." in table
    assert "Cold-start benchmark: 90 test episodes" in table
    assert sum(line.startswith(("0 ", "1 ", "2 ")) for line in table.splitlines()) == 3 * len(report.systems)

    document = report_to_json(report)
    assert document["sizes"]["episodes"] == 90
    assert document["results"][0]["metrics"]["hit_rate"].keys() == {"value", "low", "high", "n"}
    json.dumps(document, allow_nan=False)


def test_validation_runs_the_validation_shoppers_and_says_so():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3, validation_share=0.2)
    test = run_evaluation(catalog, interactions, settings, answers=(1,), systems=["random"])
    validation = run_evaluation(
        catalog, interactions, settings, answers=(1,), systems=["random"], validation=True
    )
    assert (test.episodes, validation.episodes) == ("test", "validation")
    assert validation.sizes.episodes == validation.sizes.validation_users == 60
    assert test.sizes.episodes == test.sizes.test_users == 90
    assert "Cold-start benchmark: 60 validation episodes" in format_table(validation)
    assert report_to_json(validation)["episodes"] == "validation"


def test_episode_cap_and_bad_systems():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3)
    capped = run_evaluation(catalog, interactions, settings, answers=(1,), systems=["random"], max_episodes=7)
    assert capped.sizes.episodes == 7 and capped.result("random", 1).metrics.hit_rate.n == 7
    with pytest.raises(KeyError, match="unknown ranking system"):
        run_evaluation(catalog, interactions, settings, systems=["no_such_system"])
    with pytest.raises(ValueError, match="no test episodes"):
        run_evaluation(catalog, interactions, _with_eval(test_share=0.0), systems=["random"])
    with pytest.raises(ValueError, match="distinct names"):
        run_evaluation(
            catalog, interactions, settings, answers=(0,), systems=[Constant(FAST), Constant(FAST)]
        )
    with pytest.raises(ValueError, match="shape"):
        run_evaluation(catalog, interactions, settings, answers=(0,), systems=[WrongShape(FAST)])
    with pytest.raises(ValueError, match="feedback must be 0 or more"):
        run_evaluation(catalog, interactions, settings, systems=["random"], feedback=-1)
    with pytest.raises(ValueError, match="concierge paraphrase"):
        run_evaluation(catalog, interactions, settings, systems=["random"], vocabulary=Vocabulary.PARAPHRASED)


def test_feedback_gives_systems_the_previous_purchase_and_it_stops_counting_as_recalled():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3)
    cold = run_evaluation(catalog, interactions, settings, answers=(1,), systems=[Remembers(FAST)])
    warm = run_evaluation(
        catalog, interactions, settings, answers=(1,), systems=[Remembers(FAST)], feedback=1
    )
    assert warm.feedback == 1 and 0 < warm.sizes.feedback_episodes <= warm.sizes.episodes
    assert "liked 1 earlier item(s) first" in format_table(warm)
    # The liked item is ranked first but is no longer one of the "other items" to recall.
    assert (
        warm.result("remembers", 1).metrics.recall.value <= cold.result("remembers", 1).metrics.recall.value
    )


def test_paraphrased_runs_on_targets_with_a_paraphrase_and_says_how_many_were_left_out():
    catalog, interactions = _small_store()
    settings = _with_eval(test_share=0.3)
    paraphrases = {f"i{n}": "something for the desk" for n in range(0, 80, 2)}
    report = run_evaluation(
        catalog,
        interactions,
        settings,
        answers=(1,),
        systems=["random"],
        vocabulary=Vocabulary.PARAPHRASED,
        paraphrases=paraphrases,
    )
    assert report.sizes.episodes + report.sizes.episodes_without_need == 90
    assert report.sizes.episodes_without_need > 0
    assert f"{report.sizes.episodes_without_need} test targets without a paraphrased need" in format_table(
        report
    )


def test_plot_draws_a_png(tmp_path):
    catalog, interactions = _small_store()
    report = run_evaluation(
        catalog, interactions, _with_eval(test_share=0.3), answers=(0, 1), systems=BASELINES
    )
    path = plot_report(report, tmp_path / "hr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="unknown metric"):
        plot_report(report, tmp_path / "x.png", metric="nope")
