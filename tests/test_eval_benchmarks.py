"""World benchmarks: deterministic, seed-disjoint from training, answers exact; the scoring
engine and every benchmark's metrics against stub defenders with hand-computable answers."""

import math

import numpy as np
import pytest

from aot.edits import apply_program, parse_program
from aot.eval import BENCHMARKS, EVAL_BASES, EvalConfig, build_items, eval_scene_seed, is_eval_seed, resolve_suite, run_suite
from aot.eval.core import Outcome, score_items
from aot.eval.metrics import pope_metrics
from aot.eval.stubs import ConstantDefender, OracleDefender
from aot.integrity import check
from aot.world import evaluate, render, sample_scene
from aot.world.dataset import SEED_STRIDE, scene_seed

WORLD = ["vstar", "hr", "pope", "hallusion", "clean", "robust", "heldout"]
SMALL = EvalConfig(n=3)


@pytest.fixture(scope="module")
def items():
    return build_items("all", SMALL)


def test_registry_and_suite_resolution():
    assert resolve_suite("all") == WORLD
    assert resolve_suite("pope, vstar,pope") == ["pope", "vstar"]
    assert "pope-file" in BENCHMARKS and "vstar-file" in BENCHMARKS
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        resolve_suite("vstar,nope")


def test_deterministic(items):
    again = build_items("all", SMALL)
    for name in WORLD:
        a, b = items[name], again[name]
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert x.question == y.question and x.meta == y.meta
            assert np.array_equal(x.image, y.image)


def test_seed_disjoint_from_training(items):
    seeds = {it.meta["scene_seed"] for name in WORLD for it in items[name]}
    assert seeds and all(is_eval_seed(s) for s in seeds)
    assert all(EVAL_BASES[0] <= s // SEED_STRIDE < EVAL_BASES[1] for s in seeds)
    assert not is_eval_seed(scene_seed(899, SEED_STRIDE - 1)) and not is_eval_seed(scene_seed(0, 0))
    try:  # the born defender's training and dev seed ranges, when that module is present
        from aot import pretrain
    except ImportError:
        pretrain = None
    for lo, hi in [pretrain.TRAIN_SEEDS, pretrain.EVAL_SEEDS] if pretrain else []:
        assert (hi - 1) // SEED_STRIDE < EVAL_BASES[0], "a training seed range overlaps the evaluation bases"
    # every benchmark and every POPE subset has its own base; run seeds slice it disjointly
    bases = {name: {s // SEED_STRIDE for s in {it.meta["scene_seed"] for it in items[name]}} for name in WORLD}
    assert len(bases["pope"]) == 3
    flat = [b for v in bases.values() for b in v]
    assert len(flat) == len(set(flat))
    other = build_items("vstar", EvalConfig(n=3, seed=1))["vstar"]
    assert not {it.meta["scene_seed"] for it in other} & {it.meta["scene_seed"] for it in items["vstar"]}
    with pytest.raises(ValueError):
        eval_scene_seed(0, 100, 0)
    with pytest.raises(ValueError):
        EvalConfig(seed=100)


def test_small_targets_and_hr_canvas(items):
    for it in items["vstar"]:
        scene = sample_scene(it.meta["scene_seed"], "complex")
        sizes = [scene.get(t.id).size for t in it.question.targets]
        assert "large" not in sizes and "small" in sizes and it.question.kind in ("attribute", "relation")
    assert {it.meta["subset"] for it in items["vstar"]} == {"attribute", "relation"}
    for it in items["hr"]:
        assert it.image.shape == (128, 128, 3)
    assert build_items("hr", EvalConfig(n=1, hr_size=160))["hr"][0].image.shape == (160, 160, 3)
    assert all(it.image.shape == (64, 64, 3) for it in items["clean"])


def test_pope_balanced_per_subset():
    its = build_items("pope", EvalConfig(n=6))["pope"]
    for s in ("random", "popular", "adversarial"):
        labels = [it.meta["label"] for it in its if it.meta["subset"] == s]
        assert labels.count("yes") == labels.count("no") == 3
        negs = [it for it in its if it.meta["subset"] == s and it.meta["label"] == "no"]
        assert all(it.question.spec["negative"] == s for it in negs)


def test_hallusion_answers_recomputed_exactly(items):
    its = items["hallusion"]
    assert len({it.meta["group"] for it in its}) == 3
    for it in its:
        scene = sample_scene(it.meta["scene_seed"], "complex")
        if it.meta["variant"]:
            res = apply_program(scene, parse_program(it.meta["program"]))
            scene, occ = res.scene, res.occluders
            assert np.array_equal(res.image, it.image)
        else:
            occ = None
            assert np.array_equal(render(scene), it.image)
        assert evaluate(scene, it.question.spec, occluders=occ).answer == it.question.answer_text
    # the variants do change some answers (the point of the benchmark)
    assert any(it.meta["changed"] for it in its)


def test_robust_attacks_pass_integrity(items):
    its = items["robust"]
    clean = {it.meta["base"]: it for it in its if it.meta["op"] == "clean"}
    ops = {it.meta["op"] for it in its} - {"clean"}
    assert ops == set(__import__("aot.edits", fromlist=["ABSOLUTE_OPS"]).ABSOLUTE_OPS)  # the suite keeps to the ops with their own coordinates
    for it in its:
        if it.meta["op"] == "clean":
            continue
        c = clean[it.meta["base"]]
        scene = sample_scene(it.meta["scene_seed"], "complex")
        prog = parse_program(it.meta["program"])
        assert [op.name for op in prog] == [it.meta["op"]]
        res = apply_program(scene, prog, c.image)
        assert np.array_equal(res.image, it.image)
        assert check(scene, c.image, c.question, res, SMALL.integrity).passed


def test_constant_defender_hand_computed(items):
    """'\\boxed{A}' everywhere: accuracy is the share of items whose answer is A; POPE says
    'yes' to everything (recall 1, precision = accuracy = 0.5 on balanced subsets)."""
    d = ConstantDefender()
    res = run_suite(d, "all", SMALL)
    m = res["metrics"]
    for name in ("vstar", "hr", "clean"):
        want = np.mean([it.question.answer == "A" for it in items[name]])
        assert m[f"{name}/greedy/accuracy"] == pytest.approx(want)
        assert m[f"{name}/strict3/accuracy"] == pytest.approx(want)  # constant: all trials agree
    for s in ("random", "popular", "adversarial"):
        labels = [it.meta["label"] for it in items["pope"] if it.meta["subset"] == s]
        want = pope_metrics(["yes"] * len(labels), labels)
        for k, v in want.items():
            assert m[f"pope/greedy/{s}/{k}"] == pytest.approx(v)
        assert m[f"pope/greedy/{s}/recall"] == 1.0 and m[f"pope/greedy/{s}/yes_ratio"] == 1.0
    assert res["benchmarks"]["heldout"]["info"]["parse_rate"] == 1.0
    assert res["headline"][:2] == ["vstar/greedy/accuracy", "vstar/strict3/accuracy"]
    assert len(res["predictions"]) == sum(len(v) for v in items.values())
    # batching: greedy + 3 strict rounds (no early stop: a constant answer is right or wrong for good)
    greedy = [b for b, s in d.calls if not s]
    assert sum(greedy) == res["timing"]["items"] and max(greedy) <= SMALL.batch_size


def test_oracle_defender_scores_perfectly(items):
    flat = [it for name in WORLD for it in items[name]]
    d = OracleDefender(flat)
    res = run_suite(d, "all", SMALL)
    m = res["metrics"]
    for k, v in m.items():
        if k.endswith(("success", "yes_ratio")) or "/info/" in k:
            continue
        assert v == pytest.approx(1.0), k
    for mode in ("greedy", "strict3"):
        assert m[f"robust/{mode}/attacked/success"] == 0.0
        assert m[f"pope/{mode}/mean/yes_ratio"] == pytest.approx(0.5)


def test_strict_early_stop_and_hallusion_metrics(items):
    """Item-level scripts: greedy wrong on one question, one sampled slip on another."""
    its = items["hallusion"]
    # group 0: item 0 (variant 0, q0) wrong greedily; item 3 slips on its 2nd sampled trial
    d = OracleDefender(its, wrong_greedy={0}, wrong_trials={3: {1}})
    outs = score_items(d, its, EvalConfig(n=3))
    assert outs[0].correct is False and outs[0].trials == [True, True, True]
    assert outs[3].trials == [True, False]  # stopped at the first wrong trial
    assert all(o.trials == [True] * 3 for i, o in enumerate(outs) if i != 3)
    # sampled calls: round sizes n, n, n-1
    sizes = [b for b, s in d.calls if s]
    assert sum(sizes) == 3 * len(its) - 1
    res = BENCHMARKS["hallusion"].metrics(its, outs, EvalConfig(n=3))
    n, figs = len(its), len({(it.meta["group"], it.meta["variant"]) for it in its})
    qs = len({(it.meta["group"], it.meta["qid"]) for it in its})
    assert res["greedy"]["aAcc"] == pytest.approx((n - 1) / n)
    assert res["greedy"]["fAcc"] == pytest.approx((figs - 1) / figs)
    assert res["greedy"]["qAcc"] == pytest.approx((qs - 1) / qs)
    assert res["strict3"]["aAcc"] == pytest.approx((n - 1) / n)
    # no early stop: every item gets all three trials
    d2 = OracleDefender(its, wrong_trials={3: {1}})
    outs2 = score_items(d2, its, EvalConfig(n=3, strict_early_stop=False))
    assert outs2[3].trials == [True, False, True] and not outs2[3].strict_correct(3)


def test_pope_strict_prediction_matches_independent_count():
    """Strict POPE: an item's prediction is the label when all trials are right, else its first
    wrong trial; metrics checked against a hand-made confusion count."""
    from aot.world.questions import Question

    qy = Question("existence", "Is there a red circle?", ("yes", "no"), "A", (), {"kind": "existence"})
    qn = Question("existence", "Is there a red circle?", ("yes", "no"), "B", (), {"kind": "existence"})
    outs = [
        Outcome("", "A", True, [True, True, True], ["A", "A", "A"]),  # yes label, strict yes: TP
        Outcome("", "A", True, [True, False], ["A", "B"]),  # yes label, slips to no: FN
        Outcome("", "B", True, [True, True, True], ["B", "B", "B"]),  # no label, strict no: TN
        Outcome("", "B", True, [False], ["A"]),  # no label, says yes: FP
        Outcome("", "B", True, [True, False], ["B", None]),  # no label, unreadable: wrong, not yes
    ]
    qs = [qy, qy, qn, qn, qn]
    preds = [o.strict_pred(q, 3) for o, q in zip(outs, qs)]
    assert preds == ["A", "B", "B", "A", None]
    tp, fp, fn = 1, 1, 1
    from aot.eval.core import answer_text

    m = pope_metrics([answer_text(q, p) for q, p in zip(qs, preds)], ["yes", "yes", "no", "no", "no"])
    assert m["precision"] == pytest.approx(tp / (tp + fp)) and m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["accuracy"] == pytest.approx(2 / 5) and m["yes_ratio"] == pytest.approx(2 / 5)


def test_heldout_pluggable_attacker():
    class Garbage:
        name = "garbage"

        def propose(self, batch):
            return ["paint it black"] * len(batch)

    class Patch:
        name = "corner-patch"

        def propose(self, batch):
            return ["patch 0 0 3 3 red"] * len(batch)

    cfg = EvalConfig(n=3, attacker=Garbage(), strict_trials=0)
    its = build_items("heldout", cfg)["heldout"]
    assert all(it.meta["role"] == "clean" for it in its)  # nothing parsed: nothing attacked
    res = run_suite(ConstantDefender(), "heldout", cfg)
    info = res["benchmarks"]["heldout"]["info"]
    assert info["parse_rate"] == 0.0 and info["integrity_pass_rate"] == 0.0
    assert res["benchmarks"]["heldout"]["about"]["attacker"] == "garbage"
    assert res["metrics"]["heldout/greedy/attacked/accuracy"] == res["metrics"]["heldout/greedy/clean/accuracy"]
    assert "strict0" not in res["benchmarks"]["heldout"] and set(res["benchmarks"]["heldout"]) >= {"greedy", "info"}
    cfg = EvalConfig(n=3, attacker=Patch(), strict_trials=0)
    its = build_items("heldout", cfg)["heldout"]
    attacked = [it for it in its if it.meta["role"] == "attacked"]
    assert attacked and all((it.image[0:3, 0:3] == (225, 35, 35)).all() for it in attacked)
    with pytest.raises(ValueError, match="unknown attacker"):
        build_items("heldout", EvalConfig(n=1, attacker="no-such-attacker"))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n must be"):
        EvalConfig(n=0)
    with pytest.raises(ValueError, match="temperature"):
        EvalConfig(temperature=0.0)
    assert EvalConfig(n=5, sizes={"pope": 2}).size("pope", 8) == 2
    assert EvalConfig().size("pope", 8) == 8
    assert math.isnan(BENCHMARKS["clean"].metrics([], [], EvalConfig())["greedy"]["accuracy"])
