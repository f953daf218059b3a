"""The Rogan-Gladen corrected distress rate, checked against hand computations."""

from __future__ import annotations

import pytest

from obedience.analysis._correction import (
    Accuracy,
    measured_accuracy,
    rogan_gladen,
    rogan_gladen_point,
    with_correction,
)

# Se = 90/100 = 0.9, Sp = 190/200 = 0.95
ACC = Accuracy("c", "distress", tp=90, fp=10, fn=10, tn=190, source="hand")


def test_point_estimate_matches_the_hand_computation() -> None:
    # 30 of 100 labelled positive: (0.30 + 0.95 - 1) / (0.90 + 0.95 - 1) = 0.25 / 0.85
    result = rogan_gladen(30, 100, ACC)
    assert result.observed == pytest.approx(0.30)
    assert result.corrected == pytest.approx(0.25 / 0.85)
    assert result.corrected == pytest.approx(0.294118, abs=1e-6)
    assert result.sensitivity == pytest.approx(0.9)
    assert result.specificity == pytest.approx(0.95)


def test_a_perfect_classifier_changes_nothing() -> None:
    assert rogan_gladen_point(0.37, 1.0, 1.0) == pytest.approx(0.37)


def test_the_correction_is_clipped_and_undefined_at_chance() -> None:
    # fewer positives than the false-alarm rate alone would give: clipped to 0
    assert rogan_gladen_point(0.01, 0.9, 0.95) == 0.0
    assert rogan_gladen_point(0.99, 0.9, 0.95) == 1.0
    assert rogan_gladen_point(0.5, 0.5, 0.5) is None
    chance = Accuracy("c", "distress", tp=5, fp=5, fn=5, tn=5, source="hand")
    result = rogan_gladen(10, 20, chance)
    assert result.corrected is None and result.ci is None and "chance" in result.note


def test_interval_holds_the_point_and_narrows_with_more_data() -> None:
    small = rogan_gladen(30, 100, ACC)
    big_acc = Accuracy("c", "distress", tp=9000, fp=1000, fn=1000, tn=19000, source="hand")
    big = rogan_gladen(3000, 10000, big_acc)
    assert small.ci is not None and big.ci is not None
    assert small.ci[0] < small.corrected < small.ci[1]  # type: ignore[operator]
    assert big.ci[0] < big.corrected < big.ci[1]  # type: ignore[operator]
    assert big.ci[1] - big.ci[0] < (small.ci[1] - small.ci[0]) / 3
    # the same inputs give the same interval (fixed seed)
    assert rogan_gladen(30, 100, ACC).ci == small.ci


def test_interval_is_wider_than_the_uncorrected_one() -> None:
    """Folding in the classifier's error can only add uncertainty."""
    from obedience.analysis._stats import wilson_interval

    result = rogan_gladen(30, 100, ACC)
    wilson = wilson_interval(30, 100)
    assert result.ci is not None and wilson is not None
    assert result.ci[1] - result.ci[0] > (wilson[1] - wilson[0]) / 0.85 * 0.9


def test_stats_block_gets_corrected_rates_for_the_shipped_classifier() -> None:
    from obedience.analysis.classifiers import default_classifier

    name = default_classifier().name
    accuracy = measured_accuracy(name)
    assert accuracy is not None and "sealed fold 0" in accuracy.source
    from obedience.analysis.classifiers import assign_folds, load_census_set

    sealed = sum(1 for fold in assign_folds(load_census_set()).values() if fold == 0)
    from obedience.analysis.classifiers import load_ai_coded_set

    blind = len(load_ai_coded_set("blind"))
    # Only replies never used to write the rules: the sealed fold and the blind batch.
    assert accuracy.tp + accuracy.fp + accuracy.fn + accuracy.tn == sealed + blind == 66 + 300
    linear = measured_accuracy("linear-v8+rules-v9")
    assert linear is not None and "cross-fitted" in linear.source
    assert linear.tp + linear.fp + linear.fn + linear.tn == 320 + blind
    block = {
        "available": True,
        "classifier": name,
        "overall": {"k": 12, "n": 40},
        "per_model": [{"model": "m", "k": 12, "n": 40}],
    }
    out = with_correction(block)["corrected"]
    expected = rogan_gladen_point(12 / 40, accuracy.sensitivity, accuracy.specificity)
    assert out["overall"]["corrected"] == pytest.approx(expected)
    assert out["per_model"][0]["model"] == "m"
    assert out["overall"]["classifier"] == name


def test_an_unmeasured_judge_is_left_uncorrected_and_says_so() -> None:
    block = {"available": True, "classifier": "judge:openai:x", "overall": {"k": 1, "n": 2}}
    assert "no measured accuracy" in with_correction(block)["corrected"]["note"]
    assert with_correction({"available": False, "classifier": None})["corrected"] is None
