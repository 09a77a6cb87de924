import math

import pytest

from aot.eval.metrics import accuracy, hallusion_metrics, mean_ci95, pope_metrics, strict_accuracy


def test_accuracy_and_strict():
    assert accuracy([True, False, True, True]) == 0.75
    assert strict_accuracy([[True, True, True], [True, False, True], [True, True, True], [False, False, False]]) == 0.5
    assert strict_accuracy([[], [True]]) == 0.5  # an item with no trials does not count as correct
    assert math.isnan(accuracy([]))


def test_pope_hand_computed():
    # labels: 3 yes, 3 no. predictions: TP=2, FN=1 (said no), FP=1, TN=1, one unreadable on a 'no'
    labels = ["yes", "yes", "yes", "no", "no", "no"]
    preds = ["yes", "yes", "no", "yes", "no", None]
    m = pope_metrics(preds, labels)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(3 / 6)


def test_pope_against_independent_computation():
    # independent: confusion matrix counted with a dict, f1 as harmonic mean
    import random

    rnd = random.Random(0)
    labels = [rnd.choice(["yes", "no"]) for _ in range(500)]
    preds = [rnd.choice(["yes", "no", None]) if rnd.random() < 0.4 else l for l in labels]
    cm = {(p, l): 0 for p in ("yes", "no", None) for l in ("yes", "no")}
    for p, l in zip(preds, labels):
        cm[(p, l)] += 1
    tp, fp = cm[("yes", "yes")], cm[("yes", "no")]
    fn = cm[("no", "yes")] + cm[(None, "yes")]
    p, r = tp / (tp + fp), tp / (tp + fn)
    m = pope_metrics(preds, labels)
    assert m["precision"] == pytest.approx(p) and m["recall"] == pytest.approx(r)
    assert m["f1"] == pytest.approx(1 / ((1 / p + 1 / r) / 2))
    assert m["accuracy"] == pytest.approx((cm[("yes", "yes")] + cm[("no", "no")]) / 500)


def test_pope_errors_and_degenerate():
    with pytest.raises(ValueError):
        pope_metrics(["yes"], ["yes", "no"])
    with pytest.raises(ValueError):
        pope_metrics(["yes"], ["maybe"])
    m = pope_metrics(["no", "no"], ["yes", "no"])
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.5


def test_hallusion_hand_computed():
    # group g1: variants orig/edit, questions q1/q2; group g2: one variant, one question
    recs = [
        ("g1", "orig", "q1", True), ("g1", "orig", "q2", True),
        ("g1", "edit", "q1", True), ("g1", "edit", "q2", False),
        ("g2", "orig", "q1", False),
    ]
    m = hallusion_metrics(recs)
    assert m["aAcc"] == pytest.approx(3 / 5)
    assert m["fAcc"] == pytest.approx(1 / 3)  # figures: g1/orig all right; g1/edit no; g2/orig no
    assert m["qAcc"] == pytest.approx(1 / 3)  # questions: g1/q1 right on both; g1/q2 no; g2/q1 no


def test_mean_ci95():
    m, h = mean_ci95([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_ci95([5.0]) == (5.0, 0.0)
