"""Pure metrics: classification, SQuAD-style QA, math (numbers checked by hand)."""

import pytest

from gold_ray.core.metrics import (
    accuracy,
    confusion,
    exact_match,
    macro_f1,
    normalize_answer,
    numeric_accuracy,
    parse_math_prediction,
    squad_scores,
    token_f1,
)


def test_accuracy_and_macro_f1_by_hand():
    gold = ["pos", "pos", "pos", "neg"]
    pred = ["pos", "neg", "pos", "neg"]
    assert accuracy(pred, gold) == 0.75
    # pos: tp=2 fp=0 fn=1 -> 4/5; neg: tp=1 fp=1 fn=0 -> 2/3
    assert macro_f1(pred, gold, ["pos", "neg"]) == pytest.approx((0.8 + 2 / 3) / 2)


def test_macro_f1_punishes_a_constant_predictor_that_accuracy_rewards():
    gold = ["a"] * 9 + ["b"]
    pred = ["a"] * 10
    assert accuracy(pred, gold) == 0.9
    # a: tp=9 fp=1 fn=0 -> 18/19; b: 0
    assert macro_f1(pred, gold, ["a", "b"]) == pytest.approx(18 / 19 / 2)


def test_confusion_counts_each_gold_labels_predictions():
    gold = ["pos", "pos", "pos", "neg"]
    pred = ["pos", "neg", "pos", "neg"]
    assert confusion(pred, gold, ["pos", "neg", "neutral"]) == {
        "pos": {"pos": 2, "neg": 1, "neutral": 0}, "neg": {"pos": 0, "neg": 1, "neutral": 0},
        "neutral": {"pos": 0, "neg": 0, "neutral": 0}}


def test_metrics_reject_empty_and_mismatched_input():
    with pytest.raises(ValueError, match="no examples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="differ in length"):
        macro_f1(["a"], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="differ in length"):
        confusion(["a"], ["a", "b"], ["a", "b"])


def test_squad_normalisation_and_max_over_answers():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower.", ["Eiffel Tower", "Paris"]) == 1.0
    assert exact_match("tower", ["Eiffel Tower"]) == 0.0
    # "tower" vs "eiffel tower": p=1, r=1/2 -> 2/3; vs "tower of paris": p=1, r=1/3 -> 1/2
    assert token_f1("tower", ["Eiffel Tower", "tower of Paris"]) == pytest.approx(2 / 3)
    assert token_f1("nothing", ["Eiffel Tower"]) == 0.0
    scores = squad_scores(["1764", "a bridge"], [["1764"], ["the old bridge"]])
    # second: "bridge" vs "old bridge": p=1 r=1/2 -> 2/3
    assert scores == pytest.approx({"exact_match": 0.5, "f1": (1 + 2 / 3) / 2})


def test_math_prediction_prefers_the_equation_then_the_last_number():
    assert parse_math_prediction("48 - 31 = 99") == 17.0  # the equation wins over bad arithmetic
    assert parse_math_prediction("they have 1,200 apples") == 1200.0
    assert parse_math_prediction("no idea") is None
    assert numeric_accuracy([17.0, None, 3.00001], [17, 2, 3]) == pytest.approx(2 / 3)
