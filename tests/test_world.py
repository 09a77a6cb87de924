import hashlib
import json

import numpy as np
import pytest

from aot.cli import main
from aot.world import (
    BACKGROUND_KINDS,
    COLORS,
    MATERIALS,
    QUESTION_KINDS,
    SHAPES,
    SIZES,
    Obj,
    Question,
    Scene,
    evaluate,
    render,
    sample_question,
    sample_scene,
    visible_fraction,
)
from aot.world.questions import relation_of, unique_ref, find
from aot.world.sampler import REGIMES


def test_vocabulary_sizes():
    assert len(SHAPES) >= 6 and len(COLORS) >= 8 and len(MATERIALS) >= 2 and len(SIZES) >= 3
    assert {"plain", "gradient"} <= set(BACKGROUND_KINDS) and len(BACKGROUND_KINDS) >= 5


@pytest.mark.parametrize("regime", ["simple", "complex"])
def test_regime_object_counts_and_determinism(regime):
    cfg = REGIMES[regime]
    for s in range(30):
        a, b = sample_scene(s, regime), sample_scene(s, regime)
        assert a == b
        assert np.array_equal(render(a), render(b))
        lo, hi = cfg.n_objects
        assert len(a.objects) <= hi
        assert len(a.objects) >= (lo if regime == "simple" else lo - 2)
        img = render(a)
        assert img.shape == (cfg.size, cfg.size, 3) and img.dtype == np.uint8
    assert sample_scene(1, regime) != sample_scene(2, regime)


def test_complex_is_larger_and_textured():
    s, c = sample_scene(0, "simple"), sample_scene(0, "complex")
    assert c.width > s.width
    assert s.background.kind == "plain"
    kinds = {sample_scene(i, "complex").background.kind for i in range(40)}
    assert len(kinds - {"plain", "gradient"}) >= 3


def test_materials_visibly_differ():
    o = Obj(0, "circle", "red", "matte", "large", 32.0, 32.0, 0)
    m = Obj(0, "circle", "red", "metal", "large", 32.0, 32.0, 0)
    a = render(Scene(64, 64, (o,))).astype(int)
    b = render(Scene(64, 64, (m,))).astype(int)
    assert np.abs(a - b).max() > 60  # the metal highlight


def test_antialiased_edges():
    o = Obj(0, "circle", "blue", "matte", "large", 32.25, 32.5, 0)
    img = render(Scene(64, 64, (o,)))
    row = img[32, :, 2].astype(int)
    bg = row[0]
    # partial-coverage pixels exist between background and object interior
    interior = row[32]
    partial = [v for v in row if min(bg, interior) + 10 < v < max(bg, interior) - 10]
    assert partial


def test_occlusion_fraction():
    back = Obj(0, "square", "red", "matte", "large", 30.0, 30.0, 0)
    front = Obj(1, "square", "blue", "matte", "large", 30.0, 30.0, 1)
    sc = Scene(64, 64, (back, front))
    assert visible_fraction(sc, 0) < 0.1  # only anti-aliased edge pixels (a * (1 - a)) remain
    assert visible_fraction(sc, 1) > 0.99
    # a patch over half the box hides about half
    solo = Scene(64, 64, (back,))
    x0, y0, x1, y1 = back.box()
    frac = visible_fraction(solo, 0, [((x0, y0, 30, y1), 1.0)])
    assert 0.4 < frac < 0.6


def test_relation_near_tie_is_none():
    a = Obj(0, "circle", "red", "matte", "small", 20.0, 20.0, 0)
    b = Obj(1, "circle", "blue", "matte", "small", 22.0, 21.0, 1)
    assert relation_of(a, b) is None
    c = Obj(2, "circle", "blue", "matte", "small", 40.0, 21.0, 1)
    assert relation_of(a, c) == "left" and relation_of(c, a) == "right"
    d = Obj(3, "circle", "blue", "matte", "small", 21.0, 50.0, 1)
    assert relation_of(a, d) == "above" and relation_of(d, a) == "below"


@pytest.mark.parametrize("regime", ["simple", "complex"])
@pytest.mark.parametrize("kind", QUESTION_KINDS)
def test_questions_are_consistent(regime, kind):
    rng = np.random.default_rng(0)
    made = 0
    for s in range(40):
        scene = sample_scene(s, regime)
        q = sample_question(scene, rng, kind)
        if q is None:
            continue
        made += 1
        assert 2 <= len(q.options) <= 4 and len(set(q.options)) == len(q.options)
        assert q.answer in tuple("ABCD"[: len(q.options)])
        assert evaluate(scene, q.spec).answer == q.answer_text
        if kind in ("relation", "attribute"):
            for ref in ([q.spec["a"], q.spec["b"]] if kind == "relation" else [q.spec["ref"]]):
                assert len(find(scene, ref)) == 1
            assert len(q.targets) == (2 if kind == "relation" else 1)
        if kind == "count":
            assert int(q.answer_text) == len(q.targets)
        if kind == "existence":
            assert (q.answer_text == "yes") == bool(q.targets)
        assert Question.from_dict(json.loads(json.dumps(q.to_dict()))) == q
        for t in q.targets:
            assert t.box == scene.get(t.id).box()
    assert made >= 20


def test_unique_ref_excludes_asked_attribute():
    scene = sample_scene(3, "complex")
    for o in scene.objects:
        ref = unique_ref(scene, o, exclude="color")
        if ref is not None:
            assert "color" not in ref and find(scene, ref) == [o]


def test_answer_balance():
    rng = np.random.default_rng(1)
    letters = []
    for s in range(200):
        q = sample_question(sample_scene(s, "simple"), rng, "relation")
        if q:
            letters.append(q.answer)
    counts = np.bincount([ord(c) - 65 for c in letters], minlength=4)
    assert counts.min() > 0.15 * len(letters)


def test_scene_json_roundtrip():
    sc = sample_scene(5, "complex")
    assert Scene.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc


def _digest(d):
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(d).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_cli_sample_is_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["world", "sample", "--n", "6", "--regime", "complex", "--seed", "3", "--out", str(d), "--grid"]) == 0
    assert (a / "grid.png").exists() and len(list((a / "images").glob("*.png"))) == 6
    assert _digest(a) == _digest(b)
    rows = [json.loads(line) for line in (a / "scenes.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["questions"] for r in rows)
    sc = Scene.from_dict(rows[0]["scene"])
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(a / rows[0]["image"]).convert("RGB")), render(sc))


def test_cli_rejects_bad_regime(tmp_path, capsys):
    code = main(["world", "sample", "--n", "2", "--regime", "nope", "--out", str(tmp_path / "x")])
    assert code != 0


def test_extend_scene_keeps_answers_and_reports_checks():
    from aot.world.extend import extend_scene

    rng = np.random.default_rng(0)
    ok = dup = 0
    for s in range(60):
        sc = sample_scene(s, "simple")
        q = sample_question(sc, rng)
        e = extend_scene(sc, q, s)
        if e.ok:
            ok += 1
            assert e.scene.width == 96 and len(e.scene.objects) >= len(sc.objects)
            assert evaluate(e.scene, q.spec).answer == q.answer_text
            # original objects keep attributes and relative layout
            for o in sc.objects:
                n = e.scene.get(o.id)
                assert n.attrs() == o.attrs()
            assert {t.id for t in e.question.targets} == {t.id for t in q.targets}
        e2 = extend_scene(sc, q, s, avoid_duplicates=False)
        if not e2.ok:
            assert e2.reasons and all(r.split(":")[0] in ("composition", "duplication", "plausibility") for r in e2.reasons)
            dup += any(r.startswith("duplication") for r in e2.reasons)
    assert ok >= 50 and dup >= 1
    assert extend_scene(sc, q, 1) == extend_scene(sc, q, 1)
