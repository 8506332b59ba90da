import json
import logging

import numpy as np
import pytest
from scipy import sparse

from data.settings import RankingSettings
from ranking.mf import META_FILE, MODEL_FILE, REBUILD_COMMAND, MFPrior, PriorExplanation, PriorModelError

N = 50
EVEN, ODD = np.arange(0, N, 2), np.arange(1, N, 2)


def checkerboard(new_arrivals: int = 0) -> sparse.csr_matrix:
    """50 users x 50 items, even users like even items and odd users odd ones (implicit's own test fixture),
    plus ``new_arrivals`` item columns nobody touched."""
    dense = np.zeros((N, N + new_arrivals))
    for user in range(N):
        dense[user, user % 2 : N : 2] = 1.0
    return sparse.csr_matrix(dense)


def ids(n: int) -> list[str]:
    return [f"item-{position}" for position in range(n)]


def fit(matrix: sparse.csr_matrix, seed: int = 0) -> MFPrior:
    return MFPrior(factors=8, seed=seed).fit(matrix, ids(matrix.shape[1]))


@pytest.fixture(scope="module")
def prior() -> MFPrior:
    return fit(checkerboard())


@pytest.fixture(scope="module")
def with_new_arrival() -> MFPrior:
    """The checkerboard plus item 50, which has no training interaction."""
    return fit(checkerboard(new_arrivals=1))


@pytest.mark.parametrize("like", [0, 8, 7, 49])
def test_one_like_ranks_every_item_of_its_side_above_every_item_of_the_other(prior, like):
    scores = prior.scores(liked=[like])
    same, other = (EVEN, ODD) if like % 2 == 0 else (ODD, EVEN)
    assert scores[same].min() > scores[other].max()


def test_cold_shopper_scores_are_finite_and_ignore_no_side(prior):
    scores = prior.scores()
    assert scores.shape == (N,)
    assert np.isfinite(scores).all()
    # Both sides are equally popular, so the average training user ranks neither above the other.
    assert scores[EVEN].min() < scores[ODD].max() and scores[ODD].min() < scores[EVEN].max()


def test_disliking_an_even_item_lowers_even_items_relative_to_the_cold_ranking(prior):
    change = prior.scores(disliked=[4]) - prior.scores()
    assert change[EVEN].max() < change[ODD].min()
    assert change[4] < 0


def test_a_disliked_item_drops_by_dislike_weight_standard_deviations(prior):
    liked = prior.scores(liked=[1])
    pushed = prior.scores(liked=[1], disliked=[1])
    # Its cosine with itself is 1; the spread is the standard deviation of the request's scores before the push.
    assert liked[1] - pushed[1] == pytest.approx(prior.dislike_weight * liked.std(), rel=1e-9)


def test_new_arrival_gets_the_median_of_known_items_never_the_minimum(with_new_arrival):
    prior = with_new_arrival
    assert prior.known.tolist() == [True] * N + [False]
    for liked, disliked in [((), ()), ((0,), ()), ((3,), (5,)), ((), (2,))]:
        scores = prior.scores(liked, disliked)
        assert scores[N] == np.median(scores[:N])
        assert scores[N] > scores[:N].min()


def test_liked_new_arrival_adds_nothing_to_the_fold_in(with_new_arrival):
    prior = with_new_arrival
    np.testing.assert_array_equal(prior.scores(liked=[0, N]), prior.scores(liked=[0]))
    np.testing.assert_array_equal(prior.scores(liked=[N]), prior.scores())


@pytest.mark.parametrize("shape", [(5, 4), (0, 4)], ids=["no interactions", "no users"])
def test_nothing_to_learn_makes_a_neutral_prior_without_calling_implicit(monkeypatch, shape):
    from implicit.cpu.als import AlternatingLeastSquares

    def refuse(*args, **kwargs):
        raise AssertionError("implicit must not be fitted without interactions")

    monkeypatch.setattr(AlternatingLeastSquares, "fit", refuse)
    prior = MFPrior().fit(sparse.csr_matrix(shape), ids(4))
    assert prior.neutral
    assert "no training interactions" in prior.reason
    assert prior.known.tolist() == [False] * 4
    assert prior.scores(liked=[1], disliked=[2]).tolist() == [0.0] * 4
    assert prior.scores_batch([[1], []], [[], [3]]).tolist() == [[0.0] * 4] * 2
    assert prior.explain(1, liked=[2]) == PriorExplanation(1, (), personal=False)


def test_fitted_prior_is_not_neutral(prior):
    assert not prior.neutral
    assert prior.reason == ""


def test_positions_outside_the_catalog_are_ignored_with_a_warning(prior, caplog):
    expected = prior.scores(liked=[0, 6], disliked=[3])
    with caplog.at_level(logging.WARNING, logger="ranking.mf"):
        scores = prior.scores(liked=[0, 999, 6, -1], disliked=[3, N])
    np.testing.assert_array_equal(scores, expected)
    messages = [record.getMessage() for record in caplog.records]
    assert any("liked" in m and "[-1, 999]" in m for m in messages), messages
    assert any("disliked" in m and f"[{N}]" in m for m in messages), messages


def test_scores_batch_equals_stacked_scores(with_new_arrival):
    prior = with_new_arrival
    liked = [[], [0], [1, 3], [N], [2, 5, 9], [0, 999]]
    disliked = [[], [], [2], [4], [], [7, N]]
    batch = prior.scores_batch(liked, disliked)
    stacked = np.stack([prior.scores(like, dislike) for like, dislike in zip(liked, disliked, strict=True)])
    assert batch.shape == (len(liked), N + 1)
    np.testing.assert_allclose(batch, stacked, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="2 liked lists but 1 disliked"):
        prior.scores_batch([[], []], [[]])


def test_same_seed_same_scores_other_seed_other_factors():
    first, again, other = (
        fit(checkerboard(), seed=3),
        fit(checkerboard(), seed=3),
        fit(checkerboard(), seed=4),
    )
    for liked in ([], [0], [1, 2]):
        np.testing.assert_array_equal(first.scores(liked), again.scores(liked))
    assert not np.array_equal(first.scores([0]), other.scores([0]))


def test_explain_with_likes_splits_the_score_over_the_liked_items(prior):
    liked = [0, 4, 6, 7]
    explanation = prior.explain(2, liked=liked, n=len(liked))
    assert explanation.personal and explanation.item_position == 2
    assert sorted(position for position, _ in explanation.contributors) == liked
    contributions = [value for _, value in explanation.contributors]
    assert contributions == sorted(contributions, reverse=True)
    assert sum(contributions) == pytest.approx(prior.scores(liked=liked)[2], rel=1e-4)
    # The odd like says least about an even item.
    assert explanation.contributors[-1][0] == 7
    assert len(prior.explain(2, liked=liked).contributors) == 3


def test_explain_without_likes_names_popular_similar_items(prior):
    explanation = prior.explain(2, n=5)
    assert not explanation.personal
    assert len(explanation.contributors) == 5
    assert all(position % 2 == 0 and position != 2 for position, _ in explanation.contributors)
    with pytest.raises(ValueError, match="outside the catalog of 50 items"):
        prior.explain(N)


def test_explain_of_a_new_arrival_has_no_contributors(with_new_arrival):
    assert with_new_arrival.explain(N, liked=[0]).contributors == ()


def test_save_and_load_give_identical_scores(with_new_arrival, tmp_path):
    with_new_arrival.save(tmp_path)
    loaded = MFPrior.load(tmp_path, ids(N + 1))
    for liked, disliked in [((), ()), ((0, 3), (5,)), ((N,), (2,))]:
        np.testing.assert_array_equal(
            loaded.scores(liked, disliked), with_new_arrival.scores(liked, disliked)
        )
    assert loaded.explain(2, liked=[0, 1]) == with_new_arrival.explain(2, liked=[0, 1])
    assert loaded.known.tolist() == with_new_arrival.known.tolist()
    assert (loaded.factors, loaded.seed, loaded.item_ids) == (8, 0, tuple(ids(N + 1)))


def test_neutral_prior_round_trips(tmp_path):
    MFPrior().fit(sparse.csr_matrix((3, 2)), ["a", "b"]).save(tmp_path)
    loaded = MFPrior.load(tmp_path, ["a", "b"])
    assert loaded.neutral and loaded.reason
    assert not (tmp_path / MODEL_FILE).exists()


def test_load_for_another_catalog_names_the_folder(prior, tmp_path):
    prior.save(tmp_path)
    other = ids(N)
    other[7] = "replaced"
    with pytest.raises(PriorModelError, match="another catalog") as error:
        MFPrior.load(tmp_path, other)
    assert str(tmp_path) in str(error.value)
    assert "position 7 is 'item-7' there, 'replaced' here" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_load_of_another_version_names_the_rebuild_command(prior, tmp_path):
    prior.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    meta["version"] = 99
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(PriorModelError) as error:
        MFPrior.load(tmp_path)
    message = str(error.value)
    assert f"made by version 99, this is version {MFPrior.VERSION}" in message
    assert f"`{REBUILD_COMMAND}`" in message and str(tmp_path) in message


@pytest.mark.parametrize("missing", [None, META_FILE, MODEL_FILE])
def test_load_of_missing_files_names_the_folder(prior, tmp_path, missing):
    folder = tmp_path / "prior"
    if missing is not None:
        prior.save(folder)
        (folder / missing).unlink()
    with pytest.raises(PriorModelError, match=REBUILD_COMMAND) as error:
        MFPrior.load(folder)
    assert str(folder) in str(error.value)


def test_non_finite_factors_never_reach_the_scores(prior, tmp_path, caplog):
    prior.save(tmp_path)
    path = tmp_path / MODEL_FILE
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["item_factors"][3] = np.nan
    arrays["item_factors"][5, 0] = np.inf
    np.savez(path, **arrays)
    with caplog.at_level(logging.WARNING, logger="ranking.mf"):
        loaded = MFPrior.load(tmp_path)
    assert "non-finite factors for 2 items" in caplog.text
    for liked, disliked in [((), ()), ((3, 1), (5,))]:
        scores = loaded.scores(liked, disliked)
        assert np.isfinite(scores).all()
        assert scores[3] == scores[5] == np.median(np.delete(scores, [3, 5]))


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_fold_in_weight_moves_the_shopper_that_far_from_the_average_user(prior, weight):
    cold, full = prior.scores(), prior.scores(liked=[0, 2])
    prior_at = MFPrior(factors=8, fold_in_weight=weight).fit(checkerboard(), ids(N))
    np.testing.assert_allclose(
        prior_at.scores(liked=[0, 2]), cold + weight * (full - cold), rtol=1e-9, atol=1e-9
    )
    if weight > 0:
        scores = prior_at.scores(liked=[0, 2])
        assert scores[EVEN].min() > scores[ODD].max()


def test_fold_in_weight_is_saved_and_a_prior_saved_without_it_folds_in_fully(prior, tmp_path):
    partial = MFPrior(factors=8, fold_in_weight=0.25).fit(checkerboard(), ids(N))
    partial.save(tmp_path / "partial")
    assert MFPrior.load(tmp_path / "partial").fold_in_weight == 0.25
    meta_path = tmp_path / "partial" / "mf_prior.json"
    meta = json.loads(meta_path.read_text())
    del meta["fold_in_weight"]
    meta_path.write_text(json.dumps(meta))
    assert MFPrior.load(tmp_path / "partial").fold_in_weight == 1.0


def test_settings_and_bad_hyper_parameters():
    prior = MFPrior.from_settings(RankingSettings(mf_factors=16, mf_iterations=3, mf_alpha=5.0), seed=7)
    assert (prior.factors, prior.iterations, prior.alpha, prior.regularization, prior.seed) == (
        16,
        3,
        5.0,
        0.05,
        7,
    )
    with pytest.raises(ValueError, match="factors must be a whole number >= 1"):
        MFPrior(factors=0)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        MFPrior(alpha=float("nan"))
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="fold_in_weight must be a number from 0 to 1"):
            MFPrior(fold_in_weight=weight)
    assert MFPrior.from_settings(RankingSettings(mf_fold_in_weight=0.5)).fold_in_weight == 0.5
    with pytest.raises(ValueError, match="item_ids names 3 items"):
        MFPrior().fit(checkerboard(), ids(3))
    with pytest.raises(RuntimeError, match="call fit"):
        MFPrior().scores()


def test_on_the_sample_cold_is_popularity_like_and_a_like_brings_co_purchases(office):
    catalog, interactions = office
    users = {user: row for row, user in enumerate(interactions.users())}
    rows = [users[event.user_id] for event in interactions.events]
    columns = [catalog.position(event.item_id) for event in interactions.events]
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(users), len(catalog)))
    matrix.data[:] = 1.0
    prior = MFPrior().fit(matrix, [item.item_id for item in catalog])

    counts = np.asarray(matrix.sum(axis=0)).ravel()
    by_count = np.argsort(-counts, kind="stable")
    cold = prior.scores()
    cold_top = np.argsort(-cold, kind="stable")
    assert len(set(cold_top[:50].tolist()) & set(by_count[:50].tolist())) >= 25

    buyers = matrix.tocsc()
    for rank in (100, 500, 1000, 2000):
        liked = int(by_count[rank])
        co_purchased = set(matrix[buyers[:, liked].indices].indices.tolist()) - {liked}
        top = [int(p) for p in np.argsort(-prior.scores(liked=[liked]), kind="stable") if p != liked][:20]
        # Co-purchases the like brought in: not already in the cold shopper's top 20.
        assert co_purchased & (set(top) - set(cold_top[:20].tolist())), (rank, liked)
