"""Scene extension (the paper's outpainting step): grow a simple scene into a complex one.

The original objects keep their attributes and relative layout (shifted together onto a larger,
textured canvas); new objects are added around them. Three checks, each with its own reason:
composition (the question's targets intact and visible), duplication (no new object matching a
target's referring expression) and plausibility (no object hidden beyond a limit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .questions import MIN_VISIBLE, Question, Target, evaluate, find
from .render import snap, visible_fraction
from .sampler import RegimeConfig, get_regime
from .types import BG_COLORS, COLOR_NAMES, MATERIALS, SHAPES, SIZES, Background, Lighting, Obj, Scene


@dataclass(frozen=True)
class Extension:
    scene: Scene | None
    question: Question | None
    reasons: tuple[str, ...]  # empty when accepted; "composition: ...", "duplication: ...", "plausibility: ..."

    @property
    def ok(self) -> bool:
        return self.scene is not None and not self.reasons


def _target_refs(question: Question) -> list[dict]:
    spec = question.spec
    return [spec["a"], spec["b"]] if spec["kind"] == "relation" else [spec["ref"]]


def extend_scene(
    scene: Scene,
    question: Question,
    seed: int,
    regime: str | RegimeConfig = "complex",
    min_visible: float = 0.5,
    avoid_duplicates: bool = True,
) -> Extension:
    """Extend ``scene`` to ``regime``'s canvas, keeping ``question`` valid; deterministic by seed.

    ``avoid_duplicates`` makes the extender skip new objects that match a target's description
    (a careful extender); with False it adds them and the duplication check rejects the result.
    """
    cfg = get_regime(regime)
    rng = np.random.default_rng([int(seed), 0xE7E])
    if cfg.size < max(scene.width, scene.height):
        raise ValueError(f"cannot extend a {scene.width}px scene onto a smaller {cfg.size}px canvas")
    dx = snap(float(rng.integers(0, cfg.size - scene.width + 1)))
    dy = snap(float(rng.integers(0, cfg.size - scene.height + 1)))
    base = [replace(o, x=o.x + dx, y=o.y + dy) for o in scene.objects]
    refs = _target_refs(question)
    n_total = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    objs = list(base)
    placed = [(o.x, o.y, o.radius) for o in objs]
    w = np.array(cfg.size_weights, float)
    w = w / w.sum()
    next_id = max((o.id for o in objs), default=-1) + 1
    for _ in range(max(0, n_total - len(objs)) * 3):
        if len(objs) >= n_total:
            break
        size = list(SIZES)[int(rng.choice(3, p=w))]
        r = SIZES[size]
        x, y = snap(rng.uniform(r + 1, cfg.size - r - 1)), snap(rng.uniform(r + 1, cfg.size - r - 1))
        if any((x - px) ** 2 + (y - py) ** 2 < (cfg.overlap_factor * (r + pr) + cfg.min_gap) ** 2 for px, py, pr in placed):
            continue
        o = Obj(next_id, SHAPES[int(rng.integers(len(SHAPES)))], COLOR_NAMES[int(rng.integers(8))], MATERIALS[int(rng.integers(2))], size, x, y, 0)
        if avoid_duplicates and any(all(getattr(o, k) == v for k, v in ref.items()) for ref in refs):
            continue
        objs.append(o)
        placed.append((x, y, r))
        next_id += 1
    # depth: new objects interleave with the old ones at random
    order = rng.permutation(len(objs))
    objs = [replace(o, depth=int(d)) for o, d in zip(objs, order)]
    names = list(BG_COLORS)
    c1, c2 = rng.choice(len(names), size=2, replace=False)
    bg = Background(
        kind=cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))],
        color=names[int(c1)],
        color2=names[int(c2)],
        phase=int(rng.integers(64)),
        clutter=int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1)),
    )
    light = Lighting(round(float(rng.uniform(*cfg.brightness)), 3), round(float(rng.uniform(*cfg.contrast)), 3))
    ext = Scene(cfg.size, cfg.size, tuple(objs), bg, light, cfg.name, scene.seed)

    reasons: list[str] = []
    ev = evaluate(ext, question.spec, min_visible=MIN_VISIBLE)
    if ev.answer != question.answer_text:
        reasons.append(f"composition: answer {question.answer_text!r} became {ev.answer!r} ({'; '.join(ev.reasons) or 'changed'})")
    for ref in refs:
        n_before, n_after = len(find(scene, ref)), len(find(ext, ref))
        if n_after > n_before:
            reasons.append(f"duplication: {n_after - n_before} new object(s) match {ref}")
    hidden = [o.id for o in ext.objects if visible_fraction(ext, o.id) < min_visible]
    if hidden:
        reasons.append(f"plausibility: object(s) {hidden} less than {min_visible:.0%} visible")
    if reasons:
        return Extension(None, None, tuple(reasons))
    q = replace(question, targets=tuple(Target(i, ext.get(i).box()) for i in ev.targets))  # type: ignore[union-attr]
    return Extension(ext, q, ())
