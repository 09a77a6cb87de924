"""aot.edits: op validation, text / JSON forms (round trip, strictness, fuzz), the editor, random programs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aot.edits import (
    MAX_COORD,
    OP_NAMES,
    AddObject,
    BackgroundChange,
    EditApplyError,
    EditParseError,
    EditValueError,
    MoveObject,
    OccludingPatch,
    Op,
    Perturb,
    Photometric,
    RemoveObject,
    ReplaceAttrs,
    TwinObject,
    MimicPatch,
    ABSOLUTE_OPS,
    place_beside,
    apply_program,
    format_program,
    gaussian_blur,
    parse_program,
    program_from_json,
    program_to_json,
    random_program,
)
from aot.edits.ops import MAX_ID, MAX_SEED, PATCH_COLORS, PATCH_RGB
from aot.world import Background, Obj, Scene, render, sample_scene
from aot.world.types import ATTRIBUTE_VALUES, ATTRIBUTES, BACKGROUND_KINDS, BG_COLORS, COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES

EXAMPLE = """add small red metal circle 40 12
remove 3
replace 3 color=blue shape=ring
move 3 20 30
patch 10 10 20 20 grey
perturb 10 10 20 20 8 7
background stripes sand slate
photo brightness=1.1 contrast=0.9 blur=0.5 noise=3 seed=2
twin 3 color=orange
mimic 3"""

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hand_scene() -> Scene:
    objs = (
        Obj(0, "circle", "red", "matte", "medium", 16.0, 32.0, 0),
        Obj(1, "square", "blue", "matte", "medium", 48.0, 32.0, 1),
        Obj(2, "triangle", "green", "metal", "small", 32.0, 10.0, 2),
    )
    return Scene(64, 64, objs, Background("plain", "grey", "slate"))


# --- strategies ---------------------------------------------------------------------------
coords = st.integers(0, MAX_COORD)
ids = st.integers(0, MAX_ID)
seeds = st.integers(0, MAX_SEED)


@st.composite
def boxes(draw):
    x0 = draw(st.integers(0, MAX_COORD - 1))
    y0 = draw(st.integers(0, MAX_COORD - 1))
    return x0, y0, draw(st.integers(x0 + 1, MAX_COORD)), draw(st.integers(y0 + 1, MAX_COORD))


@st.composite
def replaces(draw):
    keys = draw(st.lists(st.sampled_from(ATTRIBUTES), min_size=1, max_size=4, unique=True))
    return ReplaceAttrs(draw(ids), {k: draw(st.sampled_from(ATTRIBUTE_VALUES[k])) for k in keys})


def _f(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


ops_st = st.one_of(
    st.builds(AddObject, st.sampled_from(SIZE_NAMES), st.sampled_from(COLOR_NAMES), st.sampled_from(MATERIALS), st.sampled_from(SHAPES), coords, coords),
    st.builds(RemoveObject, ids),
    replaces(),
    st.builds(MoveObject, ids, coords, coords),
    st.builds(lambda b, c: OccludingPatch(*b, c), boxes(), st.sampled_from(PATCH_COLORS)),
    st.builds(lambda b, e, s: Perturb(*b, e, s), boxes(), st.integers(1, 32), seeds),
    st.builds(BackgroundChange, st.sampled_from(BACKGROUND_KINDS), st.sampled_from(list(BG_COLORS)), st.sampled_from(list(BG_COLORS))),
    st.builds(Photometric, _f(0.5, 1.5), _f(0.5, 1.5), _f(0, 3), _f(0, 32), seeds),
)
programs = st.lists(ops_st, min_size=1, max_size=4).map(tuple)


# --- ops and serialisation ----------------------------------------------------------------
def test_example_program_parses_and_round_trips():
    p = parse_program(EXAMPLE, max_ops=10)
    assert [op.name for op in p] == list(OP_NAMES)
    assert p[8] == TwinObject(3, {"color": "orange"}) and p[8] != ReplaceAttrs(3, {"color": "orange"})
    assert p[9] == MimicPatch(3)
    assert p[0] == AddObject("small", "red", "metal", "circle", 40, 12)
    assert p[2] == ReplaceAttrs(3, {"shape": "ring", "color": "blue"})
    assert p[7] == Photometric(1.1, 0.9, 0.5, 3.0, 2)
    assert format_program(p) == EXAMPLE
    assert program_from_json(program_to_json(p), max_ops=10) == p
    assert program_from_json(json.dumps(program_to_json(p)), max_ops=10) == p
    assert parse_program(EXAMPLE.split("\n")[0] + "\n") == p[:1]  # one trailing newline is fine


@FAST
@given(programs)
def test_round_trips(p):
    assert parse_program(format_program(p)) == p
    assert program_from_json(program_to_json(p)) == p
    assert program_from_json(json.loads(json.dumps(program_to_json(p)))) == p
    # an equal op built independently (parsed from text) hashes equally: ops work as set / dict keys
    q = parse_program(format_program(p))
    assert [hash(a) for a in q] == [hash(b) for b in p] and set(q) == set(p)


def test_canonical_forms():
    assert parse_program("replace 3 shape=ring color=blue") == parse_program("replace 3 color=blue shape=ring")
    assert format_program([ReplaceAttrs(3, {"shape": "ring", "color": "blue"})]) == "replace 3 color=blue shape=ring"
    assert format_program([Photometric()]) == "photo"
    assert parse_program("photo") == (Photometric(),)
    assert format_program([Photometric(noise=3, seed=2)]) == "photo noise=3 seed=2"
    assert Photometric(brightness=1.123456).brightness == 1.1235  # floats snap to 4 decimals
    # attribute order does not matter to equality or hashing
    a, b = ReplaceAttrs(3, {"shape": "ring", "color": "blue"}), ReplaceAttrs(3, {"color": "blue", "shape": "ring"})
    assert hash(a) == hash(b) and len({a, b, TwinObject(3, {"color": "blue", "shape": "ring"})}) == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: AddObject("huge", "red", "metal", "circle", 1, 1),
        lambda: AddObject("small", "grey", "metal", "circle", 1, 1),  # background colour, not an object colour
        lambda: AddObject("small", "red", "wood", "circle", 1, 1),
        lambda: AddObject("small", "red", "metal", "oval", 1, 1),
        lambda: AddObject("small", "red", "metal", "circle", -1, 1),
        lambda: AddObject("small", "red", "metal", "circle", 1.5, 1),
        lambda: AddObject("small", "red", "metal", "circle", True, 1),
        lambda: RemoveObject(MAX_ID + 1),
        lambda: ReplaceAttrs(1, {}),
        lambda: ReplaceAttrs(1, {"colour": "red"}),
        lambda: ReplaceAttrs(1, {"color": "grey"}),
        lambda: ReplaceAttrs(1, [("color", "red"), ("color", "blue")]),
        lambda: ReplaceAttrs(1, 5),
        lambda: MoveObject(1, 1, MAX_COORD + 1),
        lambda: OccludingPatch(10, 10, 10, 20, "grey"),
        lambda: OccludingPatch(10, 10, 20, 5, "grey"),
        lambda: OccludingPatch(10, 10, 20, 20, "gray"),
        lambda: Perturb(0, 0, 5, 5, 0, 1),
        lambda: Perturb(0, 0, 5, 5, 33, 1),
        lambda: Perturb(0, 0, 5, 5, 4, -1),
        lambda: BackgroundChange("marble", "grey", "slate"),
        lambda: BackgroundChange("plain", "red", "slate"),
        lambda: Photometric(brightness=2.0),
        lambda: Photometric(contrast=0.1),
        lambda: Photometric(blur=-0.5),
        lambda: Photometric(noise=float("nan")),
        lambda: Photometric(seed=1.0),
    ],
)
def test_constructors_validate(make):
    with pytest.raises(EditValueError):
        make()


@pytest.mark.parametrize(
    "text,line,col,needle",
    [
        ("", 1, 1, "empty program"),
        ("\n", 1, 1, "empty program"),
        ("\n\n", 1, 1, "empty line"),
        ("jump 3", 1, 1, "unknown op"),
        ("Add small red metal circle 1 1", 1, 1, "unknown op"),
        ("remove", 1, 7, "expected object id"),
        ("remove x3", 1, 8, "expected object id"),
        ("remove 3 4", 1, 10, "unexpected extra argument"),
        ("remove -3", 1, 8, "expected object id"),
        ("remove 03", 1, 8, "expected object id"),
        ("remove 3.0", 1, 8, "expected object id"),
        ("remove 10000", 1, 8, "integer 0..9999"),
        ("remove  3", 1, 8, "unexpected space"),
        (" remove 3", 1, 1, "unexpected space"),
        ("remove 3 ", 1, 9, "unexpected space"),
        ("remove\t3", 1, 7, "unexpected character U+0009"),
        ("remove 3\r\nremove 4", 1, 9, "unexpected character U+000D"),
        ("remove ３", 1, 8, "U+FF13"),
        ("remove 3\n\nremove 4", 2, 1, "empty line"),
        ("remove 1\nremove 2\nremove 3\nremove 4\nremove 5", 5, 1, "too many ops"),
        ("add small red metal circle 40", 1, 30, "expected y"),
        ("add small crimson metal circle 40 12", 1, 11, "expected colour"),
        ("add small red metal circle 40 1025", 1, 31, "expected y"),
        ("replace 3", 1, 10, "at least 1 key=value"),
        ("replace 3 color", 1, 11, "expected key=value"),
        ("replace 3 colour=red", 1, 11, "unknown key"),
        ("replace 3 color=red color=blue", 1, 21, "duplicate key 'color'"),
        ("replace 3 color=", 1, 17, "expected colour"),
        ("replace 3 color=red=blue", 1, 17, "expected colour"),
        ("move 3 20", 1, 10, "expected y"),
        ("patch 10 10 20 20", 1, 18, "expected patch colour"),
        ("patch 10 10 5 20 grey", 1, 13, "expected x1 > x0"),
        ("patch 10 10 20 10 grey", 1, 16, "expected y1 > y0"),
        ("perturb 0 0 5 5 0 1", 1, 17, "expected eps"),
        ("perturb 0 0 5 5 4 1 9", 1, 21, "unexpected extra argument"),
        ("background marble grey slate", 1, 12, "expected background kind"),
        ("photo blur=4", 1, 12, "expected blur sigma"),
        ("photo blur=0.12345", 1, 12, "at most 4 decimals"),
        ("photo blur=.5", 1, 12, "expected blur sigma"),
        ("photo blur=1e-3", 1, 12, "expected blur sigma"),
        ("photo brightness=nan", 1, 18, "expected brightness"),
        ("photo noise=1 noise=2", 1, 15, "duplicate key"),
        ("photo seed=-1", 1, 12, "expected seed"),
        ("remove 1\nphoto gamma=2", 2, 7, "unknown key"),
    ],
)
def test_parse_errors_name_line_and_column(text, line, col, needle):
    with pytest.raises(EditParseError) as ei:
        parse_program(text)
    e = ei.value
    assert (e.line, e.col) == (line, col), str(e)
    assert needle in str(e)
    assert str(e).startswith(f"line {line}, col {col}: ")


def test_max_ops_is_configurable():
    text = "\n".join(["remove 1"] * 6)
    assert len(parse_program(text, max_ops=6)) == 6
    with pytest.raises(EditParseError, match="at most 5"):
        parse_program(text, max_ops=5)
    with pytest.raises(EditParseError, match="too many ops"):
        program_from_json([{"op": "remove", "id": 1}] * 5)


def test_parse_rejects_non_str():
    with pytest.raises(EditParseError):
        parse_program(b"remove 3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data,needle",
    [
        ("[", "invalid JSON"),
        ("{}", "expected a JSON list"),
        ([], "empty program"),
        ([3], "expected an object"),
        ([{"id": 3}], "unknown or missing 'op'"),
        ([{"op": "jump"}], "unknown or missing 'op'"),
        ([{"op": "remove"}], "missing key 'id'"),
        ([{"op": "remove", "id": 3, "x": 1}], "unknown key 'x'"),
        ([{"op": "remove", "id": "3"}], "expected object id"),
        ([{"op": "remove", "id": True}], "expected object id"),
        ([{"op": "remove", "id": 3.0}], "expected object id"),
        ([{"op": "replace", "id": 3, "attrs": [["color", "red"]]}], "'attrs' must be an object"),
        ([{"op": "replace", "id": 3, "attrs": {}}], "at least one attribute"),
        ([{"op": "photo", "blur": "1"}], "expected blur sigma"),
        ([{"op": "patch", "x0": 5, "y0": 5, "x1": 5, "y1": 9, "color": "grey"}], "x1 > x0"),
    ],
)
def test_json_errors(data, needle):
    with pytest.raises(EditParseError) as ei:
        program_from_json(data)
    assert needle in str(ei.value)


def test_json_photo_defaults():
    assert program_from_json([{"op": "photo", "blur": 1}]) == (Photometric(blur=1.0),)


# --- fuzz -----------------------------------------------------------------------------------
def _parse_total(text: str) -> None:
    try:
        p = parse_program(text)
    except EditParseError as e:
        assert isinstance(e.line, int) and isinstance(e.col, int) and e.line >= 1 and e.col >= 1
        assert str(e).startswith(f"line {e.line}, col {e.col}: ")
        return
    assert 1 <= len(p) <= 4 and all(isinstance(op, Op) for op in p)
    assert parse_program(format_program(p)) == p


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_arbitrary_text(text):
    _parse_total(text)


ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 =.\n-+\t\r_éΩ\x00\u200b３"


@settings(max_examples=300, deadline=None)
@given(programs, st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.sampled_from(ALPHABET)), min_size=1, max_size=4))
def test_fuzz_mutated_programs(p, muts):
    text = format_program(p)
    for kind, pos, ch in muts:
        i = pos % (len(text) + 1)
        if kind == 0:
            text = text[:i] + ch + text[i:]
        elif kind == 1:
            text = text[:i] + text[i + 1 :]
        elif kind == 2:
            text = text[:i] + ch + text[i + 1 :]
        else:  # swap two tokens
            toks = text.split(" ")
            j, k = i % len(toks), (i // 7) % len(toks)
            toks[j], toks[k] = toks[k], toks[j]
            text = " ".join(toks)
    _parse_total(text)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12), lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12))
def test_fuzz_json(data):
    for d in (data, [data], [{"op": "add", **data}] if isinstance(data, dict) else [data]):
        _json_total(d)


def _json_total(d):
    """program_from_json either raises EditParseError naming where (op index or the program),
    or returns ops that round-trip and keep every key the input gave."""
    try:
        p = program_from_json(d)
    except EditParseError as e:
        assert str(e).startswith(("op ", "program: ", "line ")) and e.detail
        return
    assert 1 <= len(p) and all(isinstance(op, Op) for op in p)
    back = program_to_json(p)
    assert program_from_json(back) == p
    for given, kept in zip(d, back):  # strict: nothing the input said was silently dropped
        assert set(given) <= set(kept)


json_values = st.none() | st.booleans() | st.integers(-5, 300) | _f(-2, 70) | st.text(max_size=6) | st.sampled_from(["red", "ring", "small", "metal", "stripes", "blue"]) | st.dictionaries(st.sampled_from(["color", "shape", "size", "colour"]), st.sampled_from(["red", "ring", "small", 3]), max_size=2)


@settings(max_examples=300, deadline=None)
@given(programs, st.integers(0, 3), st.integers(0, 99), st.sampled_from(["set", "add", "drop"]), st.text(max_size=8), json_values)
def test_fuzz_mutated_json(p, which, pick, how, new_key, value):
    """One field of a valid program's JSON changed, added or dropped: most mutations must be
    rejected with a located EditParseError; those that parse must be exactly what they say."""
    d = program_to_json(p)
    op = d[which % len(d)]
    keys = sorted(k for k in op if k != "op")
    if how == "set" and keys:
        op[keys[pick % len(keys)]] = value
    elif how == "add":
        op[new_key] = value
    elif keys:
        del op[keys[pick % len(keys)]]
    _json_total(d)


# --- editor ---------------------------------------------------------------------------------
def test_add_object():
    s = hand_scene()
    r = apply_program(s, parse_program("add small yellow metal hexagon 40 50"))
    new = r.scene.get(3)
    assert new is not None and (new.x, new.y, new.depth) == (40.0, 50.0, 3)
    assert new.attrs() == {"size": "small", "color": "yellow", "material": "metal", "shape": "hexagon"}
    assert r.touched_boxes == (AddObject("small", "yellow", "metal", "hexagon", 40, 50).box,) == (new.box(),)
    assert np.array_equal(r.image, render(r.scene))
    assert not np.array_equal(r.image, render(s))


def test_remove_replace_move():
    s = hand_scene()
    r = apply_program(s, parse_program("remove 2"))
    assert [o.id for o in r.scene.objects] == [0, 1] and r.touched_boxes == ()
    r = apply_program(s, parse_program("replace 0 size=large shape=ring"))
    o = r.scene.get(0)
    assert (o.size, o.shape, o.color, o.x, o.depth) == ("large", "ring", "red", 16.0, 0)
    r = apply_program(s, parse_program("move 1 50 55"))
    o = r.scene.get(1)
    assert (o.x, o.y, o.depth) == (50.0, 55.0, 1) and r.touched_boxes == (o.box(),)


def test_ids_follow_the_program():
    s = hand_scene()
    r = apply_program(s, parse_program("add small red matte circle 40 50\nmove 3 44 50\nremove 3"))
    assert r.scene.get(3) is None and len(r.scene.objects) == 3
    # a removed top id is not reused by a later add
    r = apply_program(s, parse_program("remove 2\nadd small red matte circle 40 50"))
    assert sorted(o.id for o in r.scene.objects) == [0, 1, 3]
    with pytest.raises(EditApplyError, match=r"op 2 \(move 2 1 1\): no object with id 2"):
        apply_program(s, parse_program("remove 2\nmove 2 1 1"))
    with pytest.raises(EditApplyError, match="no object with id 7"):
        apply_program(s, (RemoveObject(7),))
    with pytest.raises(EditApplyError):
        apply_program(s, ("remove 1",))  # type: ignore[arg-type]
    assert isinstance(EditApplyError("x"), ValueError)


def test_patch_and_occluders():
    s = hand_scene()
    r = apply_program(s, parse_program("patch 10 20 30 40 red\npatch 60 60 70 70 navy"))
    assert (r.image[20:40, 10:30] == PATCH_RGB["red"]).all()
    assert (r.image[60:64, 60:64] == PATCH_RGB["navy"]).all()
    assert r.occluders == [((10, 20, 30, 40), 1.0), ((60, 60, 64, 64), 1.0)]  # clipped
    assert r.touched_boxes == ((10, 20, 30, 40), (60, 60, 70, 70))  # unclipped, for the canvas check
    clean = render(s)
    mask = np.ones((64, 64), bool)
    mask[20:40, 10:30] = False
    mask[60:, 60:] = False
    assert np.array_equal(r.image[mask], clean[mask])


def test_perturb_bounded_local_and_seeded():
    s = hand_scene()
    clean = render(s).astype(int)
    img = apply_program(s, parse_program("perturb 5 6 40 30 8 7")).image.astype(int)
    d = img - clean
    assert np.abs(d).max() <= 8 and np.abs(d[6:30, 5:40]).max() == 8
    outside = np.ones((64, 64), bool)
    outside[6:30, 5:40] = False
    assert (d[outside] == 0).all()
    other = apply_program(s, parse_program("perturb 5 6 40 30 8 8")).image
    assert not np.array_equal(other, img.astype(np.uint8))


def test_background_change_keeps_phase_and_clutter():
    s = sample_scene(3, "complex")
    r = apply_program(s, parse_program("background checker sand navy"))
    bg = r.scene.background
    assert (bg.kind, bg.color, bg.color2) == ("checker", "sand", "navy")
    assert (bg.phase, bg.clutter) == (s.background.phase, s.background.clutter)
    assert r.scene.objects == s.objects


def test_photometric():
    s = hand_scene()
    clean = render(s)
    img = apply_program(s, parse_program("photo brightness=1.2")).image
    assert np.abs(img.astype(int) - np.clip(np.round(clean * 1.2), 0, 255)).max() <= 1
    img = apply_program(s, parse_program("photo contrast=0.5")).image
    assert img.astype(int).std() < clean.astype(int).std()
    flat = np.full((20, 20, 3), 77.0, np.float32)
    assert np.allclose(gaussian_blur(flat, 2.0), 77.0, atol=1e-3)
    blurred = apply_program(s, parse_program("photo blur=1.5")).image
    assert np.abs(np.diff(blurred.astype(int), axis=1)).max() < np.abs(np.diff(clean.astype(int), axis=1)).max()
    a = apply_program(s, parse_program("photo noise=5 seed=1")).image
    b = apply_program(s, parse_program("photo noise=5 seed=2")).image
    assert not np.array_equal(a, b) and 3 < np.abs(a.astype(int) - clean).mean() < 6
    assert apply_program(s, (Photometric(),)).image.tobytes() == clean.tobytes()


def test_pixel_ops_follow_scene_ops_and_image_argument():
    s = hand_scene()
    clean = render(s)
    # a patch listed before an add still paints over the re-rendered scene
    r = apply_program(s, parse_program("patch 30 40 50 60 red\nadd large blue matte square 40 50"))
    assert (r.image[40:60, 30:50] == PATCH_RGB["red"]).all()
    prog = parse_program("perturb 0 0 64 64 3 1\nphoto noise=2 seed=4")
    a = apply_program(s, prog, image=clean)
    assert a.image.tobytes() == apply_program(s, prog).image.tobytes()
    assert np.array_equal(clean, render(s))  # input untouched
    with pytest.raises(EditApplyError, match="image must be"):
        apply_program(s, prog, image=clean[:10])


@FAST
@given(st.integers(0, 10_000), st.sampled_from(["simple", "complex"]))
def test_deterministic_images(seed, regime):
    s = sample_scene(seed, regime)
    p = random_program(s, np.random.default_rng(seed), max_ops=3)
    a, b = apply_program(s, p), apply_program(s, parse_program(format_program(p)))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.scene == b.scene and a.occluders == b.occluders and a.touched_boxes == b.touched_boxes
    assert a.image.dtype == np.uint8 and a.image.shape == (s.height, s.width, 3)


# --- random programs ------------------------------------------------------------------------
def test_random_program_reaches_every_op_and_stays_inside():
    seen: set[str] = set()
    for seed in range(150):
        s = sample_scene(seed, "simple" if seed % 2 else "complex")
        p = random_program(s, np.random.default_rng(seed), max_ops=3)
        assert 1 <= len(p) <= 3
        seen.update(op.name for op in p)
        r = apply_program(s, p)
        for x0, y0, x1, y1 in r.touched_boxes:
            assert 0 <= x0 < x1 <= s.width and 0 <= y0 < y1 <= s.height
        assert parse_program(format_program(p)) == p
    assert seen == set(ABSOLUTE_OPS)  # the default: ops with their own coordinates


def test_random_program_relative_kinds_apply():
    seen: set[str] = set()
    for seed in range(60):
        s = sample_scene(seed, "complex")
        p = random_program(s, np.random.default_rng(seed), max_ops=3, kinds=OP_NAMES)
        seen.update(op.name for op in p)
        r = apply_program(s, p)  # relative ops name live ids, so the program applies
        assert parse_program(format_program(p)) == p and len(r.touched_boxes) >= sum(op.name in ("add", "move", "patch", "perturb", "twin", "mimic") for op in p)
    assert seen == set(OP_NAMES)


# --- relative ops -------------------------------------------------------------------------
def test_place_beside_hand_computed():
    # anchor box 10x10 at (20, 20)-(30, 30), centre (25, 25); a 4x4 box centred on (cx, cy)
    box_at = lambda x, y: (x - 2, y - 2, x + 2, y + 2)  # noqa: E731
    # right first: cx = 25 + (5 + 2 + 3) = 35 -> box (33, 23, 37, 27)
    assert place_beside((20, 20, 30, 30), box_at, 64, 64, []) == (35, 25, (33, 23, 37, 27))
    # right blocked (1 px margin) -> left: cx = 25 - 10 = 15
    assert place_beside((20, 20, 30, 30), box_at, 64, 64, [(36, 20, 40, 30)]) == (15, 25, (13, 23, 17, 27))
    # right and left off the canvas (width 36) -> below: cy = 35
    assert place_beside((20, 20, 30, 30), box_at, 36, 64, [(0, 0, 18, 64)]) == (25, 35, (23, 33, 27, 37))
    # nothing fits anywhere: the first candidate
    assert place_beside((20, 20, 30, 30), box_at, 64, 64, [(0, 0, 64, 64)]) == (35, 25, (33, 23, 37, 27))


def _scene_one(x: float = 30.0, y: float = 30.0) -> Scene:
    return Scene(64, 64, (Obj(0, "circle", "red", "matte", "medium", x, y, 0),), Background("plain", "grey", "slate"))


def test_twin_adds_a_lookalike_beside_and_mimic_paints_its_colour():
    s = _scene_one()
    r = apply_program(s, parse_program("twin 0 color=orange size=small\nmimic 0"))
    new = r.scene.get(1)
    # the anchor box is (25, 25, 35, 35); a small twin (radius 3.5) goes right: cx = 30 + 5 + 3.5 + 3 = 41.5 -> 42
    assert new is not None and (new.color, new.shape, new.material, new.size) == ("orange", "circle", "matte", "small")
    assert (new.x, new.y, new.depth) == (42.0, 30.0, 1)
    # the mimic patch (10x10) keeps clear of both objects: the right is taken, so left, cx = 30 - 13 = 17
    assert r.touched_boxes == (new.box(), (12, 25, 22, 35))
    assert r.occluders == [((12, 25, 22, 35), 1.0)]
    assert tuple(r.image[30, 17]) == PATCH_RGB["red"] and tuple(r.image[30, 5]) != PATCH_RGB["red"]


def test_relative_ops_name_live_ids():
    s = _scene_one()
    with pytest.raises(EditApplyError, match="no object with id 5"):
        apply_program(s, parse_program("twin 5 color=blue"))
    with pytest.raises(EditApplyError, match="no object with id 0"):
        apply_program(s, parse_program("remove 0\nmimic 0"))
    # named before the remove: the patch copies the object as it stood there
    r = apply_program(s, parse_program("mimic 0\nremove 0"))
    assert r.scene.objects == () and r.touched_boxes == ((38, 25, 48, 35),)  # right: cx = 30 + 5 + 5 + 3
    with pytest.raises(EditParseError, match="at least 1"):
        parse_program("twin 0")


def test_random_program_kinds_and_empty_scene():
    s = hand_scene()
    p = random_program(s, np.random.default_rng(0), max_ops=4, kinds=("remove",))
    assert all(isinstance(op, RemoveObject) for op in p) and len({op.id for op in p}) == len(p)
    empty = Scene(32, 32, ())
    for seed in range(20):
        p = random_program(empty, np.random.default_rng(seed), max_ops=3)
        apply_program(empty, p)
        assert not any(isinstance(op, (RemoveObject, ReplaceAttrs, MoveObject)) and op is p[0] for op in p)
    with pytest.raises(ValueError):
        random_program(s, np.random.default_rng(0), kinds=("jump",))
