"""aot.integrity: local SSIM vs scikit-image, each rejection reason, property tests on both regimes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from aot.edits import apply_program, parse_program, random_program
from aot.integrity import IntegrityConfig, Verdict, check, local_ssim, ssim_box
from aot.world import LETTERS, Background, Obj, Question, Scene, Target, evaluate, render, sample_question, sample_scene

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hand_scene() -> Scene:
    objs = (
        Obj(0, "circle", "red", "matte", "medium", 16.0, 32.0, 0),
        Obj(1, "square", "blue", "matte", "medium", 48.0, 32.0, 1),
        Obj(2, "triangle", "green", "metal", "small", 32.0, 10.0, 2),
        Obj(3, "diamond", "red", "metal", "small", 32.0, 54.0, 3),
    )
    return Scene(64, 64, objs, Background("plain", "grey", "slate"))


def make_question(scene: Scene, spec: dict, options: tuple[str, ...]) -> Question:
    ev = evaluate(scene, spec)
    assert ev.answer is not None, ev.reasons
    targets = tuple(Target(i, scene.get(i).box()) for i in ev.targets)
    return Question(spec["kind"], "q", options, LETTERS[options.index(ev.answer)], targets, spec)


RELATION = {"kind": "relation", "a": {"color": "red", "shape": "circle"}, "b": {"color": "blue", "shape": "square"}}
COUNT_RED = {"kind": "count", "ref": {"color": "red"}}
NO_PINK_RING = {"kind": "existence", "ref": {"color": "pink", "shape": "ring"}, "negative": "random"}


def judge(text: str, spec: dict = RELATION, options=("left", "right", "above", "below"), cfg: IntegrityConfig | None = None) -> Verdict:
    s = hand_scene()
    q = make_question(s, spec, options)
    img = render(s)
    return check(s, img, q, apply_program(s, parse_program(text), img), cfg)


def has(v: Verdict, prefix: str) -> bool:
    return any(r.startswith(prefix) for r in v.reasons)


# --- SSIM -------------------------------------------------------------------------------------
def test_local_ssim_matches_skimage_on_random_crops():
    rng = np.random.default_rng(0)
    for i in range(200):
        h, w = int(rng.integers(7, 24)), int(rng.integers(7, 24))
        a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        mode = i % 4
        if mode == 0:
            b = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        elif mode == 1:
            b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
        elif mode == 2:  # near-flat crops: the constants matter
            a = np.full((h, w, 3), rng.integers(0, 256), np.uint8)
            b = np.clip(a.astype(int) + rng.integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
        else:
            b = a.copy()
        ref = structural_similarity(a, b, channel_axis=-1, data_range=255)
        assert abs(local_ssim(a, b) - ref) < 1e-3, (h, w, mode)
    g = rng.integers(0, 256, (9, 11)).astype(np.uint8)
    assert abs(local_ssim(g, g // 2) - structural_similarity(g, g // 2, data_range=255)) < 1e-3
    assert local_ssim(a, a) == pytest.approx(1.0)


def test_local_ssim_matches_skimage_on_real_edits():
    rng = np.random.default_rng(1)
    n = 0
    for seed in range(40):
        s = sample_scene(seed, "complex" if seed % 2 else "simple")
        q = sample_question(s, rng)
        if q is None or not q.targets:
            continue
        img = render(s)
        r = apply_program(s, random_program(s, rng, max_ops=3), img)
        for t in q.targets:
            x0, y0, x1, y1 = ssim_box(t.box, 2, s.width, s.height)
            a, b = img[y0:y1, x0:x1], r.image[y0:y1, x0:x1]
            assert abs(local_ssim(a, b) - structural_similarity(a, b, channel_axis=-1, data_range=255)) < 1e-3
            n += 1
    assert n >= 20


def test_local_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError):
        local_ssim(np.zeros((6, 9, 3)), np.zeros((6, 9, 3)))
    with pytest.raises(ValueError):
        local_ssim(np.zeros((9, 9, 3)), np.zeros((9, 8, 3)))


def test_ssim_box_is_padded_clipped_and_at_least_7():
    assert ssim_box((10, 10, 18, 18), 2, 64, 64) == (8, 8, 20, 20)
    assert ssim_box((0, 0, 8, 8), 2, 64, 64) == (0, 0, 10, 10)
    x0, y0, x1, y1 = ssim_box((62, 30, 64, 32), 0, 64, 64)
    assert x1 - x0 == 7 and y1 - y0 == 7 and x1 <= 64 and x0 >= 0


# --- hand cases -------------------------------------------------------------------------------
def test_passing_edit():
    v = judge("add small yellow matte hexagon 32 44\nperturb 54 50 64 64 4 1")
    assert v.passed and v.reasons == ()
    assert v.answer_before == v.answer_after == "left"
    assert set(v.ssim) == {0, 1} and min(v.ssim.values()) > 0.99


def test_identity_program_passes_every_kind():
    s = hand_scene()
    img = render(s)
    rng = np.random.default_rng(0)
    for kind in ("relation", "attribute", "existence", "count"):
        for _ in range(5):
            q = sample_question(s, rng, kind)
            if q is not None:
                v = check(s, img, q, apply_program(s, (), img))
                assert v.passed, v.reasons


def test_answer_changed():
    v = judge("move 0 60 8")
    assert not v.passed and has(v, "answer changed: 'left' -> 'above'")
    assert v.answer_after == "above"
    assert has(v, "duplicate: changed object 0")  # a moved target is a changed object matching its ref


def test_target_removed():
    v = judge("remove 0")
    assert has(v, "target removed") and v.answer_after is None and has(v, "low SSIM: target 0")


def test_reference_not_unique_and_duplicate():
    v = judge("add medium red matte circle 40 54")
    assert has(v, "reference not unique") and has(v, "duplicate: new object 4")
    v = judge("add medium red matte circle 40 54", cfg=IntegrityConfig(check_duplicates=False))
    assert has(v, "reference not unique") and not has(v, "duplicate")


def test_duplicate_that_keeps_the_count():
    # remove one red object and add another: the count is unchanged, but the targets are not
    # the same objects and the new one is a copy of the counted kind
    v = judge("remove 3\nadd small red matte square 44 54", COUNT_RED, ("1", "2", "3", "4"))
    assert v.answer_after == v.answer_before == "2"
    assert has(v, "targets changed: ids [0, 3] -> [0, 4]") and has(v, "duplicate: new object 4")
    assert has(v, "low SSIM: target 3")


def test_occluded_target():
    v = judge("patch 10 26 22 38 grey")
    assert has(v, "target occluded") and has(v, "box overlaps target: op 1 (patch)") and has(v, "low SSIM: target 0")
    v = judge("add large purple matte square 17 32")  # an object in front
    assert has(v, "target occluded")
    # max_occlusion is what decides: a patch over a quarter of the target is fine at 0.4, not at 0.1
    quarter = "patch 16 20 30 32 slate"
    assert not has(judge(quarter, cfg=IntegrityConfig(max_occlusion=0.4, ssim_threshold=0, max_target_iou=1)), "target occluded")
    assert has(judge(quarter, cfg=IntegrityConfig(max_occlusion=0.1, ssim_threshold=0, max_target_iou=1)), "target occluded")


def test_low_ssim_only():
    v = judge("photo blur=2")
    assert not v.passed and all(r.startswith("low SSIM") for r in v.reasons) and len(v.reasons) == 2
    assert v.answer_after == "left"
    assert judge("photo blur=2", cfg=IntegrityConfig(ssim_threshold=0.0)).passed
    assert judge("photo brightness=1.05").passed  # mild global change keeps local structure


def test_box_overlap_only():
    # a grey patch on the grey ground clipping the corner of the red circle's box: no pixel
    # changes, but the box check still rejects it
    v = judge("patch 20 36 22 38 grey")
    assert v.reasons == (f"box overlaps target: op 1 (patch) IoU {1 / 103:.3f} with target 0 > 0.0",)
    assert v.ssim[0] == 1.0
    assert judge("patch 20 36 22 38 grey", cfg=IntegrityConfig(max_target_iou=0.01)).passed


def test_box_outside_canvas():
    v = judge("add small yellow matte hexagon 1 46")
    assert v.reasons == ("box outside canvas: op 1 (add) box (-3, 42, 5, 50) not inside 64x64",)
    v = judge("perturb 60 60 70 64 1 1")
    assert has(v, "box outside canvas")


def test_existence_no_has_no_targets():
    v = judge("photo blur=2", NO_PINK_RING, ("yes", "no"))
    assert v.passed and v.ssim == {} and v.answer_after == "no"
    v = judge("add small pink matte ring 40 44", NO_PINK_RING, ("yes", "no"))
    assert has(v, "answer changed: 'no' -> 'yes'") and has(v, "duplicate: new object 4")
    v = judge("replace 2 color=pink shape=ring", NO_PINK_RING, ("yes", "no"))
    assert has(v, "answer changed") and has(v, "duplicate: changed object 2")


def test_all_reasons_are_reported():
    v = judge("remove 1\nadd medium red matte circle 16 33\npatch 0 0 70 10 grey")
    assert len(v.reasons) >= 4
    assert has(v, "reference not unique") and has(v, "low SSIM") and has(v, "box overlaps target")
    assert has(v, "box outside canvas") and has(v, "duplicate")


def test_config_validation():
    with pytest.raises(ValueError):
        IntegrityConfig(max_occlusion=1.5)
    with pytest.raises(ValueError):
        IntegrityConfig(ssim_pad=-1)


# --- properties -------------------------------------------------------------------------------
@FAST
@given(st.integers(0, 100_000), st.sampled_from(["simple", "complex"]), st.integers(1, 3))
def test_verdicts_are_consistent_and_passing_edits_pass_an_independent_ssim(seed, regime, max_ops):
    """Consistency of the verdict (passed iff no reasons, one SSIM per target, the edited scene
    still answers the same), and for passing edits scikit-image's SSIM over every padded target
    box clears the threshold (an independent implementation of the SSIM the verdict used)."""
    s = sample_scene(seed, regime)
    rng = np.random.default_rng(seed)
    q = sample_question(s, rng)
    if q is None:
        return
    img = render(s)
    r = apply_program(s, random_program(s, rng, max_ops=max_ops), img)
    cfg = IntegrityConfig()
    v = check(s, img, q, r, cfg)
    assert v.passed == (len(v.reasons) == 0)
    assert set(v.ssim) == {t.id for t in q.targets}
    if v.passed:
        assert evaluate(r.scene, q.spec).answer == q.answer_text
        for t in q.targets:
            x0, y0, x1, y1 = ssim_box(t.box, cfg.ssim_pad, s.width, s.height)
            ref = structural_similarity(img[y0:y1, x0:x1], r.image[y0:y1, x0:x1], channel_axis=-1, data_range=255)
            assert ref >= cfg.ssim_threshold - 1e-3
    else:
        assert len(v.reasons) >= 1


def test_random_attacker_outcomes_are_mixed():
    passed = failed = 0
    rng = np.random.default_rng(7)
    for seed in range(60):
        s = sample_scene(seed, "complex" if seed % 2 else "simple")
        q = sample_question(s, rng)
        if q is None:
            continue
        img = render(s)
        v = check(s, img, q, apply_program(s, random_program(s, rng), img))
        passed += v.passed
        failed += not v.passed
    assert passed >= 10 and failed >= 5
