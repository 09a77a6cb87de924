"""Paired bootstrap differences: hand-computed cases."""

import numpy as np
import pytest

from aot.eval.metrics import pope_metrics
from aot.eval.paired import PAIRED_METRICS, paired_bootstrap

ACC = PAIRED_METRICS["vstar/greedy/accuracy"]
ATTACKED = PAIRED_METRICS["robust/greedy/attacked/accuracy"]


def rows(correct, meta=None):
    return [{"bench": "vstar", "text": f"q{i}", "options": ["a", "b"], "answer": "A", "pred": "A" if c else "B", "correct": bool(c),
             "meta": dict(meta[i]) if meta else {}} for i, c in enumerate(correct)]


def test_identical_arms_differ_by_exactly_zero():
    a = rows([1, 0, 1, 1, 0])
    r = paired_bootstrap([(a, a)], ACC, n_boot=500)
    assert (r["diff"], r["lo"], r["hi"]) == (0.0, 0.0, 0.0)
    assert r["units"] == 5 and r["seeds"] == 1


def test_all_wrong_to_all_right_is_one_with_no_spread():
    r = paired_bootstrap([(rows([0, 0, 0]), rows([1, 1, 1]))], ACC, n_boot=500)
    assert (r["diff"], r["lo"], r["hi"]) == (1.0, 1.0, 1.0)


def test_two_items_interval_by_hand():
    # a = [0, 0], b = [1, 0]: a resample of 2 items gives B - A = 0 (p 1/4), 1/2 (p 1/2), 1 (p 1/4)
    a, b = rows([0, 0]), rows([1, 0])
    wide = paired_bootstrap([(a, b)], ACC, n_boot=4000, level=0.95)
    assert wide["diff"] == 0.5 and wide["lo"] == 0.0 and wide["hi"] == 1.0
    narrow = paired_bootstrap([(a, b)], ACC, n_boot=4000, level=0.4)  # 30% and 70% quantiles
    assert narrow["lo"] == 0.5 and narrow["hi"] == 0.5


def test_seeds_are_averaged_inside_each_replicate():
    a = rows([0, 0, 0, 0])
    r = paired_bootstrap([(a, rows([1, 1, 1, 1])), (a, rows([0, 0, 0, 0]))], ACC, n_boot=300)
    assert r["seed_diffs"] == [1.0, 0.0]
    assert (r["diff"], r["lo"], r["hi"]) == (0.5, 0.5, 0.5)  # every replicate: (1 + 0) / 2


def test_robust_units_resample_together():
    # unit 0: two attacked rows (A wrong, B right); unit 1: one attacked row (both right).
    # By unit: B - A is 0 (both picks unit 1, p 1/4), 2/3 (p 1/2) or 1 (p 1/4): the 5% quantile is 0.
    # Resampling rows instead would put it at 1/3 (P(diff 0) = 1/27 < 5%).
    meta = [{"base": 0, "op": "add"}, {"base": 0, "op": "patch"}, {"base": 1, "op": "add"}]
    a, b = rows([0, 0, 1], meta), rows([1, 1, 1], meta)
    r = paired_bootstrap([(a, b)], ATTACKED, n_boot=4000, level=0.9)
    assert r["units"] == 2
    assert r["diff"] == pytest.approx(2 / 3)
    assert r["lo"] == 0.0 and r["hi"] == 1.0


def test_clean_rows_do_not_count_as_attacked():
    meta = [{"base": 0, "op": "clean"}, {"base": 0, "op": "add"}]
    assert ATTACKED(rows([1, 0], meta)) == 0.0 and ATTACKED(rows([0, 1], meta)) == 1.0


def test_pope_f1_matches_pope_metrics():
    rng = np.random.default_rng(3)
    rs = []
    for i in range(60):
        subset = ("random", "popular", "adversarial")[i % 3]
        answer = "A" if rng.random() < 0.5 else "B"
        pred = rng.choice(["A", "B", None])
        rs.append({"bench": "pope", "text": f"q{i}", "options": ["yes", "no"], "answer": answer, "pred": pred,
                   "correct": pred == answer, "meta": {"subset": subset}})
    text = {"A": "yes", "B": "no", None: None}
    per = []
    for subset in ("random", "popular", "adversarial"):
        sel = [r for r in rs if r["meta"]["subset"] == subset]
        per.append(pope_metrics([text[r["pred"]] for r in sel], [text[r["answer"]] for r in sel])["f1"])
    assert PAIRED_METRICS["pope/greedy/adversarial/f1"](rs) == pytest.approx(per[2])
    assert PAIRED_METRICS["pope/greedy/mean/f1"](rs) == pytest.approx(np.mean(per))


def test_unpaired_items_are_refused():
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([(rows([1, 0]), rows([1, 0, 1]))], ACC)
    b = rows([1, 0])
    b[1]["text"] = "another question"
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([(rows([1, 0]), b)], ACC)


def test_heldout_attacked_accuracy_counts_each_base_question_once():
    # unit 0: edit passed, clean right, attacked wrong; unit 1: edit failed, clean wrong;
    # unit 2: edit passed, clean right, attacked right -> attacked accuracy (0 + 0 + 1) / 3
    meta = [{"base": 0, "role": "clean", "valid": True}, {"base": 0, "role": "attacked", "valid": True},
            {"base": 1, "role": "clean", "valid": False}, {"base": 2, "role": "clean", "valid": True}, {"base": 2, "role": "attacked", "valid": True}]
    m = PAIRED_METRICS["heldout/greedy/attacked/accuracy"]
    assert m(rows([1, 0, 0, 1, 1], meta)) == pytest.approx(1 / 3)
    # B resists the edit of unit 0 and fails unit 2's: no change overall, three units
    r = paired_bootstrap([(rows([1, 0, 0, 1, 1], meta), rows([1, 1, 0, 1, 0], meta))], m, n_boot=300)
    assert r["diff"] == 0.0 and r["units"] == 3


def test_paired_rate_difference_hand_computed():
    from aot.eval.paired import paired_rate_difference

    a, b = [0, 0, 1, 0], [1, 0, 1, 1]  # differences 1, 0, 0, 1: mean 0.5
    r = paired_rate_difference(a, b, n_boot=2000, seed=1)
    assert (r["a"], r["b"], r["diff"], r["n"]) == (0.25, 0.75, 0.5, 4)
    assert 0.0 <= r["lo"] <= 0.5 <= r["hi"] <= 1.0 and r["lo"] < r["hi"]  # resampled means of {1, 0, 0, 1} lie in [0, 1]
    same = paired_rate_difference(a, a, n_boot=100)
    assert same["diff"] == same["lo"] == same["hi"] == 0.0  # identical arms: every resample differs by 0
    with pytest.raises(ValueError, match="equally long"):
        paired_rate_difference([1, 0], [1])
