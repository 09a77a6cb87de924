"""Question generators with exact answers, and answer recomputation on any scene.

Every question carries a structured ``spec``; ``evaluate(scene, spec)`` recomputes its
answer from the scene graph. Generation and integrity checks share that one function, so
"the answer is unambiguous" means the same thing in both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vqa import LETTERS, Question, Target  # noqa: F401  (they live in the neutral module; re-exported here)
from .render import visible_fraction
from .types import ATTRIBUTE_VALUES, ATTRIBUTES, COLOR_NAMES, SHAPES, Obj, Scene

QUESTION_KINDS: tuple[str, ...] = ("relation", "attribute", "existence", "count")
RELATIONS: tuple[str, ...] = ("left", "right", "above", "below")
NEGATIVE_STRATEGIES: tuple[str, ...] = ("random", "popular", "adversarial")
POSITION_MARGIN = 4.0
"""Pixels by which the dominant axis must win (and exceed) for a relation to count."""
MIN_VISIBLE = 0.6
"""Share of a target's area that must stay visible for a question about it to be fair."""

Ref = dict[str, str]


@dataclass(frozen=True)
class Evaluation:
    """The recomputed answer (None when the question no longer has one) and why."""

    answer: str | None
    targets: tuple[int, ...]
    reasons: tuple[str, ...] = ()


# --- referring expressions -------------------------------------------------------------
def matches(o: Obj, ref: Ref) -> bool:
    return all(getattr(o, k) == v for k, v in ref.items())


def find(scene: Scene, ref: Ref) -> list[Obj]:
    return [o for o in scene.objects if matches(o, ref)]


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "x")) else "s")


def describe(ref: Ref) -> str:
    """'the small red metal circle'; without a shape the noun is 'object'."""
    words = [ref[k] for k in ("size", "color", "material") if k in ref]
    return "the " + " ".join(words + [ref.get("shape", "object")])


def _ref_candidates(exclude: str | None) -> list[tuple[str, ...]]:
    if exclude == "shape":
        return [("color",), ("size", "color"), ("color", "material"), ("size", "color", "material")]
    if exclude == "color":
        return [("shape",), ("size", "shape"), ("material", "shape"), ("size", "material", "shape")]
    base = [("color", "shape"), ("size", "color", "shape"), ("color", "material", "shape"), ("size", "color", "material", "shape")]
    if exclude is None:
        return base
    return [tuple(a for a in c if a != exclude) for c in base if c != tuple(a for a in c if a != exclude)] or base


def unique_ref(scene: Scene, o: Obj, exclude: str | None = None) -> Ref | None:
    """The shortest description of ``o`` (not using ``exclude``) that picks it alone."""
    for keys in _ref_candidates(exclude):
        ref = {k: getattr(o, k) for k in keys}
        if len(find(scene, ref)) == 1:
            return ref
    return None


# --- answer recomputation ---------------------------------------------------------------
Occluders = list[tuple[tuple[int, int, int, int], float]]


def _visible(scene: Scene, o: Obj, occluders: Occluders | None, min_visible: float) -> bool:
    return visible_fraction(scene, o.id, occluders) >= min_visible


def relation_of(a: Obj, b: Obj, margin: float = POSITION_MARGIN) -> str | None:
    """Where a is relative to b, or None on a near tie."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy) + margin and abs(dx) >= margin:
        return "left" if dx < 0 else "right"
    if abs(dy) >= abs(dx) + margin and abs(dy) >= margin:
        return "above" if dy < 0 else "below"
    return None


def evaluate(scene: Scene, spec: dict[str, Any], occluders: Occluders | None = None, min_visible: float = MIN_VISIBLE) -> Evaluation:
    """Recompute the answer text of a question spec on ``scene``."""
    kind = spec["kind"]
    if kind in ("relation", "attribute"):
        refs = [spec["a"], spec["b"]] if kind == "relation" else [spec["ref"]]
        objs: list[Obj] = []
        for ref in refs:
            found = find(scene, ref)
            if not found:
                return Evaluation(None, (), (f"target removed: no {describe(ref)[4:]}",))
            if len(found) > 1:
                return Evaluation(None, tuple(o.id for o in found), (f"reference not unique: {len(found)} x {describe(ref)[4:]}",))
            if not _visible(scene, found[0], occluders, min_visible):
                return Evaluation(None, (found[0].id,), (f"target occluded: {describe(ref)[4:]} (id {found[0].id})",))
            objs.append(found[0])
        ids = tuple(o.id for o in objs)
        if kind == "relation":
            rel = relation_of(objs[0], objs[1])
            if rel is None:
                return Evaluation(None, ids, ("ambiguous position: near tie between axes",))
            return Evaluation(rel, ids)
        return Evaluation(getattr(objs[0], spec["attr"]), ids)
    if kind in ("existence", "count"):
        found = find(scene, spec["ref"])
        ids = tuple(o.id for o in found)
        hidden = [o.id for o in found if not _visible(scene, o, occluders, min_visible)]
        if hidden:
            return Evaluation(None, ids, (f"target occluded: id {hidden[0]}",))
        if kind == "existence":
            return Evaluation("yes" if found else "no", ids)
        return Evaluation(str(len(found)), ids)
    raise ValueError(f"unknown question kind {kind!r}")


# --- generation ----------------------------------------------------------------------
def _pick_object(scene: Scene, rng: np.random.Generator, exclude: set[int] = frozenset()) -> Obj | None:  # type: ignore[assignment]
    cands = [o for o in scene.objects if o.id not in exclude]
    if not cands:
        return None
    # complex scenes favour small targets (the paper's "small details")
    w = np.array([1.0 / o.radius**2 if scene.regime == "complex" else 1.0 for o in cands])
    return cands[int(rng.choice(len(cands), p=w / w.sum()))]


def _lettered(rng: np.random.Generator, answer: str, pool: list[str], n: int, shuffle: bool = True) -> tuple[tuple[str, ...], str]:
    others = [p for p in pool if p != answer]
    pick = [others[i] for i in rng.choice(len(others), size=min(n - 1, len(others)), replace=False)]
    opts = [answer] + pick
    if shuffle:
        opts = [opts[i] for i in rng.permutation(len(opts))]
    return tuple(opts), LETTERS[opts.index(answer)]


def _targets(scene: Scene, ids: tuple[int, ...]) -> tuple[Target, ...]:
    return tuple(Target(i, scene.get(i).box()) for i in ids)  # type: ignore[union-attr]


def _make(scene: Scene, kind: str, text: str, options: tuple[str, ...], answer: str, spec: dict[str, Any]) -> Question | None:
    ev = evaluate(scene, spec)
    if ev.answer is None or ev.answer != options[LETTERS.index(answer)]:
        return None
    return Question(kind, text, options, answer, _targets(scene, ev.targets), spec)


def relation_question(scene: Scene, rng: np.random.Generator) -> Question | None:
    a = _pick_object(scene, rng)
    b = _pick_object(scene, rng, {a.id}) if a else None
    if a is None or b is None:
        return None
    ra, rb = unique_ref(scene, a), unique_ref(scene, b)
    rel = relation_of(a, b)
    if ra is None or rb is None or rel is None:
        return None
    options, letter = _lettered(rng, rel, list(RELATIONS), 4)
    spec = {"kind": "relation", "a": ra, "b": rb}
    text = f"Where is {describe(ra)} relative to {describe(rb)}?"
    return _make(scene, "relation", text, options, letter, spec)


_ATTR_TEXT = {"color": "What colour is", "shape": "What shape is", "material": "What material is", "size": "What size is"}


def attribute_question(scene: Scene, rng: np.random.Generator, attr: str | None = None) -> Question | None:
    attr = attr or ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
    o = _pick_object(scene, rng)
    if o is None:
        return None
    ref = unique_ref(scene, o, exclude=attr)
    if ref is None:
        return None
    options, letter = _lettered(rng, getattr(o, attr), list(ATTRIBUTE_VALUES[attr]), 4)
    spec = {"kind": "attribute", "ref": ref, "attr": attr}
    return _make(scene, "attribute", f"{_ATTR_TEXT[attr]} {describe(ref)}?", options, letter, spec)


def _negative_ref(scene: Scene, rng: np.random.Generator, strategy: str) -> Ref | None:
    for _ in range(30):
        if strategy == "random":
            ref = {"color": COLOR_NAMES[int(rng.integers(8))], "shape": SHAPES[int(rng.integers(len(SHAPES)))]}
        elif strategy == "popular":  # colour and shape each present, the pair absent
            a, b = scene.objects[int(rng.integers(len(scene.objects)))], scene.objects[int(rng.integers(len(scene.objects)))]
            ref = {"color": a.color, "shape": b.shape}
        elif strategy == "adversarial":  # an existing object with one attribute changed
            o = scene.objects[int(rng.integers(len(scene.objects)))]
            k = ("color", "shape")[int(rng.integers(2))]
            vals = [v for v in ATTRIBUTE_VALUES[k] if v != getattr(o, k)]
            ref = {"color": o.color, "shape": o.shape, k: vals[int(rng.integers(len(vals)))]}
        else:
            raise ValueError(f"unknown negative strategy {strategy!r}; choose from {NEGATIVE_STRATEGIES}")
        if not find(scene, ref):
            return ref
    return None


def existence_question(scene: Scene, rng: np.random.Generator, positive: bool | None = None, strategy: str | None = None) -> Question | None:
    if not scene.objects:
        return None
    positive = bool(rng.integers(2)) if positive is None else positive
    if positive:
        o = _pick_object(scene, rng)
        ref = {"color": o.color, "shape": o.shape}  # type: ignore[union-attr]
    else:
        strategy = strategy or NEGATIVE_STRATEGIES[int(rng.integers(3))]
        ref = _negative_ref(scene, rng, strategy)
        if ref is None:
            return None
    spec = {"kind": "existence", "ref": ref}
    if not positive:
        spec["negative"] = strategy
    noun = describe(ref)[4:]
    text = f"Is there {'an' if noun[0] in 'aeiou' else 'a'} {noun} in the image?"
    return _make(scene, "existence", text, ("yes", "no"), "A" if positive else "B", spec)


def count_question(scene: Scene, rng: np.random.Generator) -> Question | None:
    if not scene.objects:
        return None
    o = _pick_object(scene, rng)
    key = ("color", "shape")[int(rng.integers(2))]
    ref = {key: getattr(o, key)}  # type: ignore[arg-type]
    n = len(find(scene, ref))
    lo = int(rng.integers(max(1, n - 3), n + 1))  # 4 consecutive counts containing n
    options = tuple(str(v) for v in range(lo, lo + 4))
    text = f"How many {ref['color']} objects are there?" if key == "color" else f"How many {plural(ref['shape'])} are there?"
    return _make(scene, "count", text, options, LETTERS[options.index(str(n))], {"kind": "count", "ref": ref})


GENERATORS = {
    "relation": relation_question,
    "attribute": attribute_question,
    "existence": existence_question,
    "count": count_question,
}


def sample_question(scene: Scene, rng: np.random.Generator, kind: str | None = None, tries: int = 20, **kwargs: Any) -> Question | None:
    """One valid question of ``kind`` (random kind when None), or None if none was found."""
    for _ in range(tries):
        k = kind or QUESTION_KINDS[int(rng.integers(len(QUESTION_KINDS)))]
        if k not in GENERATORS:
            raise ValueError(f"unknown question kind {k!r}; choose from {QUESTION_KINDS}")
        q = GENERATORS[k](scene, rng, **kwargs)
        if q is not None:
            return q
    return None


def scene_questions(scene: Scene, seed: int, n: int = 4, kinds: tuple[str, ...] = QUESTION_KINDS) -> list[Question]:
    """Up to ``n`` distinct questions about one scene, cycling through ``kinds``."""
    rng = np.random.default_rng([int(seed), 0x9E5])
    out: list[Question] = []
    seen: set[str] = set()
    for i in range(n * 3):
        if len(out) >= n:
            break
        q = sample_question(scene, rng, kinds[i % len(kinds)])
        if q is not None and q.text not in seen:
            seen.add(q.text)
            out.append(q)
    return out
