"""The blend: normalisation, weights, the diversity pass and the fit on validation examples."""

import json

import numpy as np
import pytest

from ranking.blend import (
    BlendError,
    BlendExample,
    BlendWeights,
    category_similarity,
    diversify,
    fit_blend,
    load_blend,
    normalise,
    save_blends,
)


def test_normalise_handles_flat_nan_and_infinite_scores(caplog):
    assert normalise(np.array([4.0, 4.0, 4.0])).tolist() == [0.0, 0.0, 0.0]
    assert normalise(np.array([])).tolist() == []
    out = normalise(np.array([1.0, np.inf, np.nan, 3.0]))
    assert np.isfinite(out).all()
    assert out[3] == out.max() and out[1] == out[2] == out.min()
    assert "NaN or infinite" in caplog.text


def test_prior_weight_grows_with_feedback_and_stops_at_the_cap():
    weights = BlendWeights(prior=0.25, prior_per_feedback=0.5, max_feedback=2)
    assert [weights.prior_weight(n) for n in (0, 1, 2, 5)] == [0.25, 0.75, 1.25, 1.25]
    assert weights.using(["retrieval"]).prior_weight(3) == 0.0


def test_blend_with_feedback_lets_the_prior_decide():
    parts = {"retrieval": np.array([2.0, 1.0, 0.0]), "prior": np.array([0.0, 0.0, 10.0])}
    weights = BlendWeights(retrieval=1.0, cross_encoder=0.0, prior=0.0, prior_per_feedback=4.0)
    assert int(np.argmax(weights.blend(parts, feedback=0))) == 0
    assert int(np.argmax(weights.blend(parts, feedback=1))) == 2


@pytest.mark.parametrize("bad", [{"retrieval": -1.0}, {"prior": float("nan")}, {"diversity": 1.5}])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="blend weight"):
        BlendWeights(**bad)


def test_diversify_interleaves_other_categories_only_when_asked():
    codes = np.array([[0, 0], [0, 0], [0, 0], [1, 1]])
    similarity = category_similarity(codes)
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    assert diversify(scores, similarity, 0.0, 3).tolist() == [0, 1, 2, 3]
    assert diversify(scores, similarity, 0.5, 3).tolist() == [0, 3, 1, 2]


def test_save_and_load_round_trip_and_clear_errors(tmp_path):
    save_blends(tmp_path, {"blend": BlendWeights(retrieval=0.5, diversity=0.1)}, card={"episodes": 3})
    assert load_blend(tmp_path, "blend") == BlendWeights(retrieval=0.5, diversity=0.1)
    with pytest.raises(BlendError, match="no weights for the system 'other'"):
        load_blend(tmp_path, "other")
    with pytest.raises(BlendError, match=r"no blend weights; run `concierge train-reranker`"):
        load_blend(tmp_path / "missing", "blend")
    path = tmp_path / "blend.json"
    document = json.loads(path.read_text())
    document["version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(BlendError, match=str(path).replace("\\", "\\\\") + ": made by blend version 99"):
        load_blend(tmp_path, "blend")


def _examples(rng, n, target_part):
    """Candidates where only ``target_part`` knows the target: its score is highest there."""
    examples = []
    for _ in range(n):
        parts = {name: rng.normal(size=20) for name in ("retrieval", "cross_encoder", "prior")}
        parts[target_part][7] = 10.0
        examples.append(BlendExample(parts, target=7, feedback=0))
    return examples


def test_fit_finds_the_part_that_knows_the_target():
    rng = np.random.default_rng(0)
    fit = fit_blend(_examples(rng, 40, "retrieval"), parts=("retrieval", "prior"))
    assert fit.weights.retrieval > 0 and fit.weights.prior == 0 and fit.weights.cross_encoder == 0
    assert fit.hit_rate == 1.0
    fit = fit_blend(_examples(rng, 40, "prior"), parts=("retrieval", "prior"))
    assert fit.weights.retrieval == 0 and fit.weights.prior > 0


def test_fit_raises_the_prior_with_feedback_when_feedback_helps():
    rng = np.random.default_rng(1)
    cold = _examples(rng, 30, "retrieval")
    liked = [
        BlendExample({**example.parts, "prior": np.where(np.arange(20) == 7, 30.0, 0.0)}, 7, feedback=1)
        for example in _examples(rng, 30, "cross_encoder")
    ]
    fit = fit_blend(cold, liked, parts=("retrieval", "prior"))
    assert fit.weights.prior == 0 and fit.weights.prior_per_feedback > 0


def test_a_flat_blend_never_looks_good():
    flat = [BlendExample({"retrieval": np.zeros(10)}, target=3) for _ in range(5)]
    assert fit_blend(flat, parts=("retrieval",)).hit_rate == 1.0  # 10 tied items: rank 10 is still a hit
    flat = [BlendExample({"retrieval": np.zeros(30)}, target=3) for _ in range(5)]
    assert fit_blend(flat, parts=("retrieval",)).hit_rate == 0.0


def test_fit_refuses_nothing_to_fit_and_unknown_parts():
    with pytest.raises(ValueError, match="needs validation examples"):
        fit_blend([])
    with pytest.raises(ValueError, match="unknown blend parts"):
        fit_blend([BlendExample({"retrieval": np.zeros(3)}, 0)], parts=("magic",))


def test_new_arrivals_get_the_median_prior_of_the_known_candidates():
    from ranking.rerank import neutral_for_new_arrivals

    prior = np.array([4.0, -9.0, 2.0, 0.0, -9.0])
    known = np.array([True, False, True, True, False])
    out = neutral_for_new_arrivals(prior, known)
    assert out.tolist() == [4.0, 2.0, 2.0, 0.0, 2.0]
    assert prior.tolist() == [4.0, -9.0, 2.0, 0.0, -9.0]  # the input is left alone
    # Nothing to compare with, or nothing to replace: unchanged.
    assert neutral_for_new_arrivals(prior, np.zeros(5, bool)).tolist() == prior.tolist()
    assert neutral_for_new_arrivals(prior, np.ones(5, bool)).tolist() == prior.tolist()


def _shop(rng, known: int, fresh: int, mark: bool) -> list[BlendExample]:
    """Known targets the prior singles out; new-arrival targets that only retrieval finds, among popular items."""
    examples = []
    for n in range(known + fresh):
        parts = {name: rng.normal(size=40) for name in ("retrieval", "prior")}
        if n < known:
            parts["retrieval"][7], parts["prior"][7] = -2.5, 10.0
        else:
            parts["retrieval"][7], parts["prior"][7] = 3.5, -2.0
            parts["prior"][20:] += 4.0  # the popular half, which retrieval ranks at random
        examples.append(BlendExample(parts, target=7, new_arrival=mark and n >= known))
    return examples


def test_the_fit_keeps_the_retrieval_orders_hits_on_new_arrival_targets():
    parts = ("retrieval", "prior")
    unmarked = fit_blend(_shop(np.random.default_rng(5), 40, 10, mark=False), parts=parts)
    assert unmarked.new_arrival_hit_rate is None
    assert unmarked.weights.prior / unmarked.weights.retrieval >= 1  # the prior wins the known targets
    marked = fit_blend(_shop(np.random.default_rng(5), 40, 10, mark=True), parts=parts)
    assert marked.retrieval_new_arrival_hit_rate == 1.0
    assert marked.new_arrival_hit_rate == 1.0
    assert (
        marked.weights.prior / marked.weights.retrieval < unmarked.weights.prior / unmarked.weights.retrieval
    )
    assert marked.ndcg <= unmarked.ndcg  # the floor costs known targets something, and is kept anyway
    # Hybrid + cross-encoder has no prior: the floor is met by retrieval's own weight and changes nothing.
    plain = fit_blend(_shop(np.random.default_rng(5), 40, 10, mark=True), parts=("retrieval",))
    assert plain.weights.retrieval > 0 and plain.new_arrival_hit_rate == plain.retrieval_new_arrival_hit_rate
