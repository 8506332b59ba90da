"""The cross-encoder reranker: seeded untrained scores, the score cache, a tiny training run that must learn and
load back exactly, refusals of broken model folders, non-finite logits, and the int8 backend."""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from scipy.stats import spearmanr

from ranking import cross_encoder
from ranking.cross_encoder import (
    CARD_FILE,
    REBUILD_COMMAND,
    VERSION,
    CrossEncoderScorer,
    RerankerModelError,
    load_scorer,
    read_card,
)
from ranking.onnx_runtime import EXPORT_FORMAT_KEY, MODEL_ID_KEY, ONNX_FILE, onnx_model_id, open_onnx
from ranking.train_cross_encoder import (
    TrainingQuery,
    TrainReport,
    ValidationQuery,
    train_cross_encoder,
    validation_metrics,
)
from retrieval.embeddings import item_text

LENGTH = 32
# Toy catalog: each query names a product word that only its positive item also holds.
WORDS = (
    "stapler",
    "envelope",
    "calculator",
    "notebook",
    "highlighter",
    "scissors",
    "binder",
    "laminator",
    "shredder",
    "whiteboard",
    "tape",
    "label",
    "folder",
    "eraser",
)
BRANDS = ("Acme", "Zenith", "Orbit", "Nova")


def _toy_item(word: str, brand: str) -> str:
    return f"{brand} {word}\nBrand: {brand}\nCategory: Office Products > Supplies"


def _toy_sets() -> tuple[list[TrainingQuery], list[ValidationQuery]]:
    rng = random.Random(0)
    train, validation = [], []
    for i, word in enumerate(WORDS[:12]):
        others = [other for other in WORDS if other != word]
        negatives = tuple(
            _toy_item(other, BRANDS[(i + k) % 4]) for k, other in enumerate(rng.sample(others, 4))
        )
        train.append(
            TrainingQuery(f"I need a {word}", _toy_item(word, BRANDS[i % 4]), negatives, group=str(i))
        )
        candidates = [
            _toy_item(other, BRANDS[(i + k + 1) % 4]) for k, other in enumerate(rng.sample(others, 4))
        ]
        target = rng.randrange(5)
        candidates.insert(target, _toy_item(word, BRANDS[(i + 2) % 4]))
        validation.append(ValidationQuery(f"looking for a good {word}", tuple(candidates), target))
    return train, validation


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for these tiny batches: on a busy 2-core machine, two threads waiting on each other
    made this file several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def base_model():
    """The packaged MiniLM with the head of seed 0, built once; tests wrap deep copies of it."""
    return cross_encoder.base_cross_encoder(LENGTH, seed=0)


@pytest.fixture
def scorer(base_model) -> CrossEncoderScorer:
    return CrossEncoderScorer(copy.deepcopy(base_model), cross_encoder.UNTRAINED)


def _count_model_calls(monkeypatch: pytest.MonkeyPatch, scorer: CrossEncoderScorer) -> list[int]:
    calls: list[int] = []
    logits = scorer._logits

    def counted(pairs):
        calls.append(len(pairs))
        return logits(pairs)

    monkeypatch.setattr(scorer, "_logits", counted)
    return calls


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[TrainReport, Path, list[np.ndarray]]:
    """One tiny training run; also the validation scores the in-memory model gave after each epoch."""
    train, validation = _toy_sets()
    folder = tmp_path_factory.mktemp("reranker") / "model"
    seen: list[np.ndarray] = []
    score_many = CrossEncoderScorer.score_many

    def spy(self, pairs, keys=None):
        scores = score_many(self, pairs, keys)
        seen.append(scores.copy())
        return scores

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CrossEncoderScorer, "score_many", spy)
        report = train_cross_encoder(
            train,
            validation,
            folder,
            epochs=2,
            batch_size=5,
            learning_rate=3e-4,
            max_length=LENGTH,
            seed=0,
            progress=False,
            card={"data": "toy", "command": "pytest tests/test_cross_encoder.py"},
        )
    return report, folder, seen


def test_untrained_scores_are_finite_one_per_text_and_fixed_by_the_seed(scorer: CrossEncoderScorer) -> None:
    texts = ["HP 61 Black Ink Cartridge", "Swingline stapler", "", "ink " * 500]
    scores = scorer.score("black ink", texts)
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert scorer.score("black ink", []).shape == (0,)
    # The longer side (the item text) is cut from its end: what lies past the window is never read.
    cut = scorer.score("black ink", ["ink " * 500 + "chair", "ink " * 500 + "table"])
    assert cut[0] == pytest.approx(cut[1], abs=1e-6)
    again = CrossEncoderScorer(cross_encoder.base_cross_encoder(LENGTH, seed=0), "again")
    np.testing.assert_array_equal(again.score("black ink", texts), scores)
    other = CrossEncoderScorer(cross_encoder.base_cross_encoder(LENGTH, seed=1), "other")
    assert not np.allclose(other.score("black ink", texts), scores, atol=1e-4)
    with pytest.raises(TypeError, match="sequence of texts"):
        scorer.score("black ink", "one text")


def test_the_cache_returns_the_same_scores_without_running_the_model(
    scorer: CrossEncoderScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_model_calls(monkeypatch, scorer)
    texts = ["Swingline stapler", "Staples copy paper", "HP 61 ink"]
    first = scorer.score("stapler", texts, keys=[4, 8, 15])
    assert calls == [3] and scorer.cached == 3
    np.testing.assert_array_equal(scorer.score("stapler", texts, keys=[4, 8, 15]), first)
    assert calls == [3]
    # Only the new key runs, and cached scores equal the uncached ones.
    mixed = scorer.score("stapler", [texts[2], "Desk lamp"], keys=[15, 16])
    assert calls == [3, 1] and mixed[0] == first[2]
    np.testing.assert_allclose(scorer.score("stapler", texts), first, atol=1e-5)
    assert calls == [3, 1, 3]
    # The same key under another query is another pair.
    scorer.score("paper", texts[:1], keys=[4])
    assert calls == [3, 1, 3, 1]
    with pytest.raises(ValueError, match="one key per pair"):
        scorer.score("stapler", texts, keys=[1])


def test_the_cache_drops_the_least_recently_used_queries_beyond_its_size(base_model) -> None:
    scorer = CrossEncoderScorer(copy.deepcopy(base_model), "small", cache_size=4)
    scorer.score("a", ["x", "y"], keys=[1, 2])
    scorer.score("b", ["x", "y"], keys=[1, 2])
    scorer.score("a", ["x"], keys=[1])  # "a" is now the most recent
    scorer.score("c", ["x", "y"], keys=[1, 2])
    assert scorer.cached == 4
    assert list(scorer._cache) == ["a", "c"]


def test_untrained_and_loaded_scorers_are_shared_per_process(trained) -> None:
    assert CrossEncoderScorer.untrained(LENGTH, seed=0) is CrossEncoderScorer.untrained(LENGTH, seed=0)
    _, folder, _ = trained
    assert load_scorer(folder) is CrossEncoderScorer.load(folder, "torch", LENGTH)


def test_training_learns_the_toy_set_and_the_saved_model_scores_like_the_trained_one(trained) -> None:
    report, folder, seen = trained
    _, validation = _toy_sets()
    untrained = validation_metrics(CrossEncoderScorer.untrained(LENGTH, seed=0), validation)
    best = report.validation[report.best_epoch - 1]
    # Five candidates a query: an untrained head orders them about at random (MRR 0.39 here); after 24 steps
    # the candidate holding the query's product word comes first for (nearly) every query (MRR 1.0 here).
    assert untrained["mrr"] < 0.6
    assert best["mrr"] >= 0.9
    assert report.epochs_run == 2 and [row["epoch"] for row in report.validation] == [1, 2]
    assert report.pairs == 60 and report.model_dir == folder

    loaded = load_scorer(folder)
    assert loaded.name == report.model_id and loaded.max_length == LENGTH
    pairs = [(v.query, text) for v in validation for text in v.candidates]
    np.testing.assert_allclose(loaded.score_many(pairs), seen[report.best_epoch - 1], atol=1e-5)

    card = read_card(folder)
    assert card["version"] == VERSION and card["id"] == report.model_id
    assert card["best_epoch"] == report.best_epoch and card["validation"] == report.validation
    assert card["settings"]["max_length"] == LENGTH and card["settings"]["seed"] == 0
    assert card["counts"]["training_queries"] == 12 and card["counts"]["training_pairs"] == 60
    assert card["data"] == "toy" and "all-MiniLM-L6-v2" in card["base_model"] and card["created"]
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert report.model_id in readme and "pytest tests/test_cross_encoder.py" in readme


def test_a_model_cut_to_its_first_layers_trains_saves_and_loads_with_them(tmp_path: Path, base_model) -> None:
    train, validation = _toy_sets()
    report = train_cross_encoder(
        train,
        validation,
        tmp_path / "m",
        epochs=1,
        batch_size=5,
        learning_rate=3e-4,
        max_length=LENGTH,
        seed=0,
        layers=2,
        progress=False,
    )
    card = read_card(tmp_path / "m")
    assert card["settings"]["layers"] == 2
    config = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert config["num_hidden_layers"] == 2
    assert "through the base model's first 2 layers" in (tmp_path / "m" / "README.md").read_text(
        encoding="utf-8"
    )
    loaded = load_scorer(tmp_path / "m")
    assert len(loaded._model.model.bert.encoder.layer) == 2
    assert report.model_id == loaded.name
    scores = loaded.score_many([(v.query, text) for v in validation[:2] for text in v.candidates])
    assert scores.shape == (10,) and np.isfinite(scores).all()
    cut = cross_encoder.base_cross_encoder(LENGTH, seed=0, layers=2)
    assert len(cut.model.bert.encoder.layer) == 2 and cut.model.config.num_hidden_layers == 2
    assert len(base_model.model.bert.encoder.layer) == 6 and base_model.model.config.num_hidden_layers == 6
    for wrong in (-1, 7):
        with pytest.raises(ValueError, match=f"cannot keep {wrong}"):
            cross_encoder.base_cross_encoder(LENGTH, seed=0, layers=wrong)


def test_training_refuses_card_fields_it_writes_itself(tmp_path: Path) -> None:
    train, validation = _toy_sets()
    with pytest.raises(ValueError, match="version"):
        train_cross_encoder(
            train[:1],
            validation[:1],
            tmp_path / "m",
            epochs=1,
            batch_size=5,
            learning_rate=1e-5,
            max_length=16,
            seed=0,
            progress=False,
            card={"version": 2},
        )
    assert not (tmp_path / "m" / CARD_FILE).exists()


def test_load_refuses_a_missing_folder_a_folder_without_card_and_another_version(
    tmp_path: Path, trained
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(RerankerModelError) as error:
        load_scorer(missing)
    assert str(missing) in str(error.value) and REBUILD_COMMAND in str(error.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RerankerModelError) as error:
        CrossEncoderScorer.load(empty)
    assert str(empty) in str(error.value) and REBUILD_COMMAND in str(error.value)

    _, folder, _ = trained
    old = tmp_path / "old"
    old.mkdir()
    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    (old / CARD_FILE).write_text(json.dumps({**card, "version": VERSION + 1}), encoding="utf-8")
    with pytest.raises(RerankerModelError) as error:
        load_scorer(old)
    assert str(old) in str(error.value) and REBUILD_COMMAND in str(error.value)
    assert f"version {VERSION + 1}" in str(error.value)

    (old / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")  # a card, but no weights beside it
    with pytest.raises(RerankerModelError, match=REBUILD_COMMAND):
        load_scorer(old)


def test_non_finite_logits_are_replaced_by_the_lowest_finite_score_and_logged(
    scorer: CrossEncoderScorer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outputs = iter([np.array([np.nan, 1.5, np.inf, -2.0]), np.array([np.nan, np.nan]), np.array([np.nan])])
    monkeypatch.setattr(scorer._model, "predict", lambda pairs, **_: next(outputs))
    with caplog.at_level(logging.WARNING, logger="ranking.cross_encoder"):
        scores = scorer.score("q", ["a", "b", "c", "d"], keys=[1, 2, 3, 4])
    assert scores.tolist() == [-2.0, 1.5, -2.0, -2.0]
    assert "2 non-finite scores of 4" in caplog.text
    assert scorer.score("q", ["e", "f"]).tolist() == [0.0, 0.0]
    # A replaced score is not cached: the model is asked again.
    assert scorer.score("q", ["a", "b"], keys=[1, 2]).tolist() == [1.5, 1.5]


def test_bf16_and_int8_scores_rank_like_fp32_on_real_item_texts(office, trained) -> None:
    catalog, _ = office
    rng = random.Random(3)
    items = rng.sample([item for item in catalog if item.categories], 50)
    pairs = [(rng.choice(items).categories[-1].lower(), item_text(item)) for item in items]
    _, folder, _ = trained
    fp32 = load_scorer(folder, "torch").score_many(pairs)
    for backend, least in (("bf16", 0.98), ("int8", 0.9)):
        scores = load_scorer(folder, backend).score_many(pairs)
        assert np.isfinite(scores).all() and not np.array_equal(scores, fp32), backend
        assert spearmanr(fp32, scores).statistic > least, backend


def test_onnx_int8_is_exported_once_per_model_ranks_like_fp32_and_is_redone_for_other_weights(
    office, trained, tmp_path: Path
) -> None:
    catalog, _ = office
    rng = random.Random(4)
    items = rng.sample([item for item in catalog if item.categories], 50)
    pairs = [(rng.choice(items).categories[-1].lower(), item_text(item)) for item in items]
    _, trained_folder, _ = trained
    folder = tmp_path / "model"
    shutil.copytree(trained_folder, folder)
    card = read_card(folder)
    fp32 = load_scorer(folder, "torch").score_many(pairs)
    scores = load_scorer(folder, "onnx-int8").score_many(pairs)
    assert onnx_model_id(folder / ONNX_FILE) == card["id"]
    assert scores.dtype == np.float32 and np.isfinite(scores).all() and not np.array_equal(scores, fp32)
    assert spearmanr(fp32, scores).statistic > 0.9
    # Activations are quantised per batch, so a pair's score moves a little with its batch mates, not its rank.
    small = load_scorer(folder, "onnx-int8", batch_size=7).score_many(pairs)
    assert spearmanr(small, scores).statistic > 0.98
    # The file of other weights (a retrained model has a new id) is exported again; a truncated one too.
    stamp = (folder / ONNX_FILE).stat().st_mtime_ns
    card["id"] = "retrained"
    (folder / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    load_scorer(folder, "onnx-int8")
    assert (
        onnx_model_id(folder / ONNX_FILE) == "retrained" and (folder / ONNX_FILE).stat().st_mtime_ns != stamp
    )
    # A file of an older export format is exported again too.
    graph = onnx.load(str(folder / ONNX_FILE))
    onnx.helper.set_model_props(graph, {MODEL_ID_KEY: "retrained", EXPORT_FORMAT_KEY: "1"})
    onnx.save(graph, str(folder / ONNX_FILE))
    assert onnx_model_id(folder / ONNX_FILE) is None
    from sentence_transformers import CrossEncoder

    open_onnx(CrossEncoder(str(folder), max_length=LENGTH), folder, "retrained", LENGTH)
    assert onnx_model_id(folder / ONNX_FILE) == "retrained"
    (folder / ONNX_FILE).write_bytes((folder / ONNX_FILE).read_bytes()[:1000])
    assert onnx_model_id(folder / ONNX_FILE) is None
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".onnx-")]


def test_backends_other_than_the_four_are_refused_and_onnx_needs_a_trained_model() -> None:
    with pytest.raises(ValueError, match="runs trained models only"):
        CrossEncoderScorer.untrained(LENGTH, backend="onnx-int8")
    with pytest.raises(ValueError, match="unknown reranker backend 'fp16'"):
        CrossEncoderScorer.untrained(LENGTH, backend="fp16")


def test_training_and_validation_queries_are_checked() -> None:
    with pytest.raises(ValueError, match="no negatives"):
        TrainingQuery("q", "positive", ())
    with pytest.raises(ValueError, match="target 2"):
        ValidationQuery("q", ("a", "b"), target=2)
    miss = ValidationQuery("q", ("a", "b"), target=-1)
    assert validation_metrics(CrossEncoderScorer.untrained(LENGTH, seed=0), [miss]) == {
        "hr@10": 0.0,
        "mrr": 0.0,
    }
