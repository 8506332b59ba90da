"""Every registered ranking system keeps the ranking contract (tests/ranking_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ranking.baselines
import ranking.candidate_systems
import ranking.rerank
from data.settings import PathSettings, RankingSettings, Settings
from ranking.system import RankingSystem, create_system, registered_systems
from retrieval.embeddings import item_text
from retrieval.profile import Profile
from tests.ranking_contract import CONTRACT_CATALOG, RankingContract, contract_training
from tests.retrieval_fixtures import WordsEmbedder


def _settings(folder: Path) -> Settings:
    return Settings(
        paths=PathSettings(artifacts=folder / "artifacts", descriptions=folder / "descriptions.jsonl"),
        ranking=RankingSettings(reranker_max_length=48, rerank_depth=8),
    )


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> Path:
    """A cross-encoder fine-tuned for one epoch on the contract catalog: real training, tiny data."""
    from ranking.train_cross_encoder import TrainingQuery, ValidationQuery, train_cross_encoder

    texts = {item.item_id: item_text(item) for item in CONTRACT_CATALOG}
    pairs = [("black ink", "hp61", ("paper", "lamp")), ("desk stapler", "stapler", ("hp61", "toner"))]
    queries = [
        TrainingQuery(query, texts[pos], tuple(texts[n] for n in neg), "u") for query, pos, neg in pairs
    ]
    validation = [ValidationQuery("black ink", (texts["hp61"], texts["paper"]), 0)]
    folder = tmp_path_factory.mktemp("reranker") / "reranker"
    train_cross_encoder(
        queries,
        validation,
        folder,
        epochs=1,
        batch_size=4,
        learning_rate=5e-5,
        max_length=48,
        seed=1,
        progress=False,
    )
    return folder


class _Baseline(RankingContract):
    system_name: str

    def make_system(self, folder: Path) -> RankingSystem:
        return create_system(self.system_name, _settings(folder))


class _WithIndexes(RankingContract):
    system_class: type[RankingSystem]

    def make_system(self, folder: Path) -> RankingSystem:
        return self.system_class(_settings(folder), embedder=WordsEmbedder())


class _WithReranker(_WithIndexes):
    @pytest.fixture(autouse=True)
    def _model(self, tmp_path: Path, tiny_reranker: Path) -> None:
        (tmp_path / "artifacts").mkdir(exist_ok=True)
        (tmp_path / "artifacts" / "reranker").symlink_to(tiny_reranker, target_is_directory=True)


class TestRandom(_Baseline):
    system_name = "random"


class TestPopularity(_Baseline):
    system_name = "popularity"


class TestFacetedPopularity(_Baseline):
    system_name = "faceted_popularity"


class TestLexical(_WithIndexes):
    system_class = ranking.candidate_systems.LexicalSystem


class TestVector(_WithIndexes):
    system_class = ranking.candidate_systems.VectorSystem


class TestVectorDescriptions(_WithIndexes):
    system_class = ranking.candidate_systems.VectorDescriptionsSystem


class TestHybrid(_WithIndexes):
    system_class = ranking.candidate_systems.HybridSystem


class TestBiEncoderOrder(_WithIndexes):
    system_class = ranking.rerank.BiEncoderOrder


class TestHybridPrior(_WithIndexes):
    system_class = ranking.rerank.HybridPrior


class TestUntrainedCrossEncoder(_WithIndexes):
    system_class = ranking.rerank.UntrainedCrossEncoder


class TestCrossEncoder(_WithReranker):
    system_class = ranking.rerank.CrossEncoderOrder


class TestHybridCrossEncoder(_WithReranker):
    system_class = ranking.rerank.HybridCrossEncoder


class TestFullBlend(_WithReranker):
    system_class = ranking.rerank.FullBlend


def test_every_registered_system_has_a_contract_test():
    tested = {cls.system_name for cls in _Baseline.__subclasses__()}
    tested |= {
        cls.system_class.name
        for base in (_WithIndexes, _WithReranker)
        for cls in base.__subclasses__()
        if hasattr(cls, "system_class")
    }
    real = {name for name, cls in registered_systems().items() if cls.__module__.startswith("ranking.")}
    assert real <= tested, f"no contract test for {sorted(real - tested)}"


def test_a_reranker_ranks_with_parts_from_one_pass_over_the_candidates(tmp_path, monkeypatch):
    system = ranking.rerank.HybridPrior(_settings(tmp_path), embedder=WordsEmbedder())
    system.fit(contract_training())
    calls = []
    original = system.candidates_batch
    monkeypatch.setattr(system, "candidates_batch", lambda profiles: calls.append(1) or original(profiles))
    ranked = system.rank(Profile(need="black ink cartridge"), k=3)
    assert len(calls) == 1
    assert ranked[0].parts.retrieval is not None and ranked[0].parts.prior is not None


@pytest.mark.parametrize("floor", ["none", "retrieval", "content", "both"])
def test_the_prior_cannot_push_a_new_arrival_below_its_content_place(tmp_path, floor):
    from dataclasses import replace

    from ranking.blend import BlendWeights, save_blends

    settings = _settings(tmp_path)
    settings = replace(settings, ranking=replace(settings.ranking, new_arrival_floor=floor))
    # A prior that outweighs retrieval ten to one: left alone, it sinks "bare", which no training shopper bought.
    weights = BlendWeights(retrieval=0.1, cross_encoder=0.0, prior=1.0, prior_per_feedback=0.0)
    save_blends(settings.paths.artifacts / "reranker", {"hybrid_prior": weights})
    system = ranking.rerank.HybridPrior(settings, embedder=WordsEmbedder())
    system.fit(contract_training())
    assert system.prior.known.tolist() == [item.item_id != "bare" for item in CONTRACT_CATALOG]
    ranked = [r.item_id for r in system.rank(Profile(need="organizer"), k=8)]
    found = [c for c in system.candidates_batch([Profile(need="organizer")])[0] if c.channels]
    assert CONTRACT_CATALOG.items[found[0].position].item_id == "bare"  # the retrieval order puts it first
    if floor == "none":
        assert ranked.index("bare") > 0
    else:
        assert ranked[0] == "bare"


def test_the_cross_encoder_reads_an_item_with_its_deepest_category_only(tmp_path, tiny_reranker):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "reranker").symlink_to(tiny_reranker, target_is_directory=True)
    system = ranking.rerank.CrossEncoderOrder(_settings(tmp_path), embedder=WordsEmbedder())
    system.fit(contract_training())
    position = CONTRACT_CATALOG.position("hp61")
    assert system.texts[position].splitlines()[:3] == [
        "HP 61 Black Ink Cartridge",
        "Brand: HP",
        "Category: Ink",
    ]
