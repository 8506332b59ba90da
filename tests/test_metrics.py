"""Ranking metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranking import metrics


def test_rank_order_breaks_ties_by_the_tie_break_and_puts_nan_last():
    scores = np.array([0.5, 0.9, 0.5, np.nan, 0.5])
    tie_break = np.array([0.7, 0.0, 0.2, 0.0, 0.9])
    order = metrics.rank_order(scores, tie_break)
    assert order.tolist() == [1, 2, 0, 4, 3]
    assert metrics.ranks_from_order(order).tolist() == [3, 1, 2, 5, 4]


def test_rank_order_works_row_by_row():
    scores = np.array([[1.0, 2.0, 3.0], [3.0, 3.0, 3.0]])
    tie_break = np.array([[0.0, 0.0, 0.0], [0.5, 0.1, 0.3]])
    order = metrics.rank_order(scores, tie_break)
    assert order.tolist() == [[2, 1, 0], [1, 2, 0]]
    assert metrics.ranks_from_order(order).tolist() == [[3, 2, 1], [3, 1, 2]]


def test_hit_rate_ndcg_and_reciprocal_rank_exact():
    ranks = np.array([1, 2, 10, 11, 2417])
    assert metrics.hit_rate(ranks, 10).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert metrics.ndcg(ranks, 10) == pytest.approx([1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0, 0.0])
    assert metrics.reciprocal_rank(ranks) == pytest.approx([1.0, 0.5, 0.1, 1 / 11, 1 / 2417])
    assert metrics.reciprocal_rank(ranks).mean() == pytest.approx((1 + 0.5 + 0.1 + 1 / 11 + 1 / 2417) / 5)


def test_recall_of_other_items_skips_episodes_without_any():
    values = metrics.recall([np.array([1, 11, 3, 40]), np.array([], dtype=int), np.array([10])], 10)
    assert values[0] == 0.5 and math.isnan(values[1]) and values[2] == 1.0
    assert metrics.bootstrap_mean(values, 0, seed=0) == metrics.Estimate(0.75, 0.75, 0.75, 2)


def test_coverage_and_new_arrival_share_exact():
    slates = np.array([[0, 1, 2], [2, 3, 4], [0, 1, 5]])
    assert metrics.coverage(slates, 12) == 0.5
    is_new = np.zeros(12, dtype=bool)
    is_new[[2, 5]] = True
    assert metrics.new_arrival_share(slates, is_new) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert metrics.coverage(np.empty((0, 3), dtype=int), 12) == 0.0


def test_bootstrap_mean_is_seeded_and_brackets_the_value():
    values = np.random.default_rng(0).random(300) < 0.3
    first = metrics.bootstrap_mean(values, 1000, seed=7)
    assert first == metrics.bootstrap_mean(values, 1000, seed=7)
    assert first != metrics.bootstrap_mean(values, 1000, seed=8)
    assert first.value == pytest.approx(values.mean()) and first.n == 300
    assert first.low < first.value < first.high
    # The normal approximation of a proportion's 95% interval, within bootstrap noise.
    half_width = 1.96 * math.sqrt(first.value * (1 - first.value) / 300)
    assert first.high - first.low == pytest.approx(2 * half_width, rel=0.15)


def test_bootstrap_of_constant_and_empty_values():
    assert metrics.bootstrap_mean(np.ones(20), 100, seed=1) == metrics.Estimate(1.0, 1.0, 1.0, 20)
    empty = metrics.bootstrap_mean(np.array([]), 100, seed=1)
    assert math.isnan(empty.value) and empty.n == 0
    assert str(empty) == "n/a"
    assert str(metrics.Estimate(0.1234, 0.1011, 0.1456, 10)) == "0.123 [0.101, 0.146]"


def test_bootstrap_coverage_interval_contains_the_observed_coverage():
    rng = np.random.default_rng(2)
    slates = rng.integers(0, 500, size=(200, 10))
    estimate = metrics.bootstrap_coverage(slates, 500, 300, seed=3)
    assert estimate.value == metrics.coverage(slates, 500)
    assert estimate.low < estimate.value < estimate.high <= 1.0
    assert estimate == metrics.bootstrap_coverage(slates, 500, 300, seed=3)
