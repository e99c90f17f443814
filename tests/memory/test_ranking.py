"""The ranking math: neutral weights, clamping, decay as a function of age."""

import pytest

from retrieval.ranking import (
    aggregate_eval_score,
    decayed_eval_score,
    eval_multiplier,
    rank,
    recency_factor,
    reuse_tier,
)


def test_eval_multiplier_is_neutral_for_unrated_and_for_five():
    assert eval_multiplier(None) == 1.0 == eval_multiplier(5)
    assert eval_multiplier(0) == 0.5 and eval_multiplier(10) == 1.5
    assert eval_multiplier(42) == 1.5 and eval_multiplier(-3) == 0.5


def test_aggregate_is_the_median_of_the_ten_most_recent():
    assert aggregate_eval_score([]) is None
    assert aggregate_eval_score([9, 1, 8]) == 8
    assert aggregate_eval_score([10] * 10 + [0] * 50) == 10  # old scores beyond ten do not count


def test_decay_pulls_toward_neutral_and_depends_only_on_age():
    assert decayed_eval_score(9.0, 0) == 9.0
    assert decayed_eval_score(9.0, 180) == 7.0
    assert decayed_eval_score(1.0, 180) == 3.0
    assert decayed_eval_score(None, 500) is None
    once = decayed_eval_score(9.0, 90)
    assert decayed_eval_score(9.0, 90) == once  # no compounding


def test_recency_blends_in_by_weight():
    assert recency_factor(1000, 0) == 1.0
    assert recency_factor(90, 1.0) == pytest.approx(0.5)
    assert recency_factor(90, 0.5) == pytest.approx(0.75)


def test_score_is_the_product_of_its_factors():
    ranked = rank(distance=0.2, eval_score=10, age_days=90, recency_weight=1.0)
    assert ranked.similarity == pytest.approx(0.8)
    assert ranked.score == pytest.approx(0.8 * 1.5 * 0.5)
    assert rank(distance=1.7, eval_score=None, age_days=0).similarity == 0.0


def test_reuse_tiers():
    assert [reuse_tier(s) for s in (0.99, 0.8, 0.3)] == ["duplicate", "adapt", "fresh"]
