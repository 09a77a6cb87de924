"""The heuristic proposer: hand-written semantic distractors of the kinds the paper describes.

For each item it picks one strategy that fits the question and writes a short program:

- ``shape_twin``: an object with a target's shape in a confusable colour, next to the target;
- ``color_twin``: an object with a target's colour and a confusable shape, next to the target;
- ``attr_decoy`` (attribute questions): a near copy of the target that shows one of the
  question's *wrong* options for the asked attribute, and differs from the target's
  description in one other attribute so the question stays unambiguous;
- ``mirror_twin`` (relation questions): a lookalike of one target placed on the *opposite*
  side of the other target, so a model that matches loosely reads the wrong relation;
- ``near_miss`` (negative existence questions): an object one attribute away from the absent
  description ("is there a red circle?" -> an orange circle);
- ``mimic_patch``: a flat patch in the target's colour beside it; ``perturb``: a sign-noise
  patch beside the target (the "imperceptible pixel-level perturbation" strategy).

With ``relative=True`` the lookalikes beside a target (the twins and the decoy) are written
as ``twin ID KEY=VALUE...`` and the mimic patch as ``mimic ID``, leaving their placement to
the editor: the same strategies in the relative ops a model attacker can learn to copy.

The strategy is applied 1..``max_distractors`` times (a small crowd of lookalikes), then a
pixel-level op (``perturb`` beside a target) is added with probability ``p_pixel``. Every placement keeps clear of the question's target boxes (the builder's box
check) and no added object matches a target's description (its description check); when no
placement fits, the attacker falls back to a random program so it always returns valid text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..edits import MAX_OPS, AddObject, MimicPatch, OccludingPatch, Op, Perturb, TwinObject, format_program, random_program
from ..edits.apply import boxes_overlap
from ..world.types import COLOR_NAMES, SHAPES, SIZES, Obj, Scene
from .base import AttackItem, item_rng

HEURISTIC_TAG = 0x4E0
STRATEGIES: tuple[str, ...] = ("shape_twin", "color_twin", "attr_decoy", "mirror_twin", "near_miss", "mimic_patch", "perturb")

# Colours and shapes a small model is most likely to confuse (hue neighbours, similar outlines).
COLOR_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "red": ("orange", "pink"), "orange": ("red", "yellow"), "yellow": ("orange", "green"), "green": ("cyan", "yellow"),
    "cyan": ("green", "blue"), "blue": ("cyan", "purple"), "purple": ("blue", "pink"), "pink": ("red", "purple"),
}
SHAPE_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "circle": ("ring", "hexagon"), "ring": ("circle", "hexagon"), "hexagon": ("circle", "ring"), "square": ("diamond", "hexagon"),
    "diamond": ("square", "triangle"), "triangle": ("diamond", "cross"), "cross": ("diamond", "square"),
}
_VOCAB = {"color": COLOR_NAMES, "shape": SHAPES}
_NEIGHBOURS = {"color": COLOR_NEIGHBOURS, "shape": SHAPE_NEIGHBOURS}

Box = tuple[int, int, int, int]
Attrs = dict[str, str]


def matches_any(attrs: Attrs, refs: Sequence[dict[str, str]]) -> bool:
    """True when an object with ``attrs`` would fit one of the question's descriptions."""
    return any(all(attrs.get(k) == v for k, v in ref.items()) for ref in refs)


def question_refs(spec: dict) -> list[dict[str, str]]:
    return [spec["a"], spec["b"]] if spec["kind"] == "relation" else [spec["ref"]]


def _other(rng: np.random.Generator, key: str, value: str, confusable: float = 0.75) -> str:
    """A value of ``key`` other than ``value``: a confusable neighbour most of the time."""
    near = _NEIGHBOURS[key].get(value, ())
    if near and rng.random() < confusable:
        return near[int(rng.integers(len(near)))]
    pool = [v for v in _VOCAB[key] if v != value]
    return pool[int(rng.integers(len(pool)))]


@dataclass
class HeuristicAttacker:
    """Question-aware distractors; deterministic per item seed."""

    p_pixel: float = 0.3
    """Probability of adding a ``perturb`` op beside a target after the main op."""
    gap: tuple[int, int] = (1, 8)
    """Pixels between the distractor's and the target's outlines (inclusive range)."""
    max_distractors: int = 3
    """Distractors of the chosen strategy per program, drawn uniformly from 1..max_distractors."""
    relative: bool = False
    """Write lookalikes beside a target as ``twin`` and mimic patches as ``mimic`` (the editor
    places them) instead of ``add`` / ``patch`` with coordinates."""
    name: str = "heuristic"

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_pixel <= 1.0:
            raise ValueError(f"HeuristicAttacker: p_pixel must be in [0, 1], got {self.p_pixel}")
        if not 1 <= self.max_distractors <= MAX_OPS - 1:
            raise ValueError(f"HeuristicAttacker: max_distractors must be in 1..{MAX_OPS - 1}, got {self.max_distractors}")
        if not 0 <= self.gap[0] <= self.gap[1]:
            raise ValueError(f"HeuristicAttacker: gap must be 0 <= lo <= hi, got {self.gap}")

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        return [format_program(self.program(it)) for it in batch]

    # --- one item ---------------------------------------------------------------------------
    def program(self, item: AttackItem) -> tuple[Op, ...]:
        rng = item_rng(item, HEURISTIC_TAG)
        scene, q = item.scene, item.question
        refs = question_refs(q.spec)
        targets = [o for t in q.targets if (o := scene.get(t.id)) is not None]
        avoid = [tuple(t.box) for t in q.targets]
        order = self.strategies(q.spec, targets)
        # the question's own strategy (listed first) leads 60% of the time; otherwise any order
        first, rest = order[:1], order[1:]
        rng.shuffle(rest)
        if rng.random() >= 0.6:
            first, rest = [], list(rng.permutation(order))
        ops: list[Op] = []
        strat = None
        for strat in first + rest:
            op = self._strategy(strat, rng, scene, q, targets, refs, avoid)
            if op is not None:
                ops.append(op)
                break
        if not ops:  # nothing fits (crowded canvas): a random program keeps the contract
            return random_program(scene, rng, 1, ("perturb", "photo"))
        # a small crowd of lookalikes confuses more than one: repeat the strategy (new draws),
        # each new box kept clear of the targets and of the distractors already placed
        for _ in range(int(rng.integers(1, self.max_distractors + 1)) - 1):
            placed = [b for b in (o.box for o in ops) if b is not None]
            op = self._strategy(strat, rng, scene, q, targets, refs, avoid + placed)
            if op is not None:
                ops.append(op)
        if targets and rng.random() < self.p_pixel and len(ops) < MAX_OPS and not any(isinstance(o, Perturb) for o in ops):
            placed = [b for b in (o.box for o in ops) if b is not None]
            extra = self._perturb(rng, scene, targets[int(rng.integers(len(targets)))], avoid + placed)
            if extra is not None:
                ops.append(extra)
        return tuple(ops)

    @staticmethod
    def strategies(spec: dict, targets: list[Obj]) -> list[str]:
        kind = spec["kind"]
        if kind == "relation":
            return ["mirror_twin", "shape_twin", "color_twin", "perturb"]
        if kind == "attribute":
            return ["attr_decoy", "shape_twin", "color_twin", "mimic_patch", "perturb"]
        if kind == "existence" and not targets:
            return ["near_miss"]
        if kind == "count":  # twins of the counted attribute would change the count: vary it instead
            return ["color_twin" if "shape" in spec["ref"] else "shape_twin", "perturb"]
        return ["shape_twin", "color_twin", "mimic_patch", "perturb"]

    def _strategy(self, strat: str, rng, scene: Scene, q, targets: list[Obj], refs, avoid: list[Box]) -> Op | None:
        if strat == "near_miss":
            ref = refs[0]
            base = {"size": "medium", "material": "matte", "color": ref.get("color", "red"), "shape": ref.get("shape", "circle")}
            key = ("color", "shape")[int(rng.integers(2))]
            attrs = dict(base, **{key: _other(rng, key, base[key])})
            return self._add_near(rng, scene, None, attrs, refs, avoid)
        if not targets:
            return None
        t = targets[int(rng.integers(len(targets)))]
        if strat in ("shape_twin", "color_twin"):
            key = "color" if strat == "shape_twin" else "shape"
            if q.spec["kind"] == "count":
                key = next(iter(q.spec["ref"]))  # the counted attribute is the one to vary
            attrs = dict(t.attrs(), **{key: _other(rng, key, getattr(t, key))})
            return self._twin(t, attrs, refs) if self.relative else self._add_near(rng, scene, t, attrs, refs, avoid)
        if strat == "attr_decoy":
            asked = q.spec["attr"]
            wrong = [o for o in q.options if o != q.answer_text]
            attrs = dict(t.attrs(), **{asked: wrong[int(rng.integers(len(wrong)))]})
            # break the match with the description in one of its own attributes
            ref_keys = [k for k in q.spec["ref"] if k != asked]
            if ref_keys:
                k = ref_keys[int(rng.integers(len(ref_keys)))]
                vals = {"size": tuple(SIZES), "material": ("matte", "metal")}.get(k)
                attrs[k] = _other(rng, k, attrs[k]) if k in _VOCAB else [v for v in vals if v != attrs[k]][int(rng.integers(len(vals) - 1))]  # type: ignore[arg-type]
            return self._twin(t, attrs, refs) if self.relative else self._add_near(rng, scene, t, attrs, refs, avoid)
        if strat == "mirror_twin" and len(targets) == 2:
            i = int(rng.integers(2))
            twin_of, pivot = targets[i], targets[1 - i]
            key = ("color", "shape")[int(rng.integers(2))]
            attrs = dict(twin_of.attrs(), **{key: _other(rng, key, getattr(twin_of, key))})
            # reflect twin_of through the pivot: the lookalike sits on the other side of it
            mx, my = 2 * pivot.x - twin_of.x, 2 * pivot.y - twin_of.y
            return self._add_at(rng, scene, (mx, my), attrs, refs, avoid, jitter=6.0) or self._add_near(rng, scene, pivot, attrs, refs, avoid)
        if strat == "mimic_patch":
            return MimicPatch(t.id) if self.relative else self._patch(rng, scene, t, avoid)
        if strat == "perturb":
            return self._perturb(rng, scene, t, avoid)
        return None

    @staticmethod
    def _twin(t: Obj, attrs: Attrs, refs) -> Op | None:
        """``twin`` of ``t`` changing what ``attrs`` changes (None when it would fit a description)."""
        if matches_any(attrs, refs):
            return None
        diff = {k: v for k, v in attrs.items() if getattr(t, k) != v}
        return TwinObject(t.id, diff) if diff else None

    # --- placement --------------------------------------------------------------------------
    def _fits(self, scene: Scene, box: Box, avoid: list[Box]) -> bool:
        return box[0] >= 0 and box[1] >= 0 and box[2] <= scene.width and box[3] <= scene.height and not any(boxes_overlap(box, a, 1) for a in avoid)

    def _add_at(self, rng, scene: Scene, centre: tuple[float, float], attrs: Attrs, refs, avoid: list[Box], jitter: float, tries: int = 12) -> Op | None:
        if matches_any(attrs, refs):
            return None
        for _ in range(tries):
            x = int(round(centre[0] + rng.uniform(-jitter, jitter)))
            y = int(round(centre[1] + rng.uniform(-jitter, jitter)))
            if not (0 <= x <= 1024 and 0 <= y <= 1024):
                continue
            op = AddObject(attrs["size"], attrs["color"], attrs["material"], attrs["shape"], x, y)
            if self._fits(scene, op.box, avoid):
                return op
        return None

    def _add_near(self, rng, scene: Scene, t: Obj | None, attrs: Attrs, refs, avoid: list[Box], tries: int = 24) -> Op | None:
        """An ``add`` beside ``t`` (anywhere when ``t`` is None) clear of the avoided boxes."""
        if matches_any(attrs, refs):
            return None
        r = SIZES[attrs["size"]]
        for _ in range(tries):
            if t is None:
                x, y = rng.uniform(r, scene.width - r), rng.uniform(r, scene.height - r)
            else:
                ang = rng.uniform(0, 2 * math.pi)
                d = t.radius + r + rng.uniform(self.gap[0], self.gap[1]) + 1
                x, y = t.x + d * math.cos(ang), t.y + d * math.sin(ang)
            op = self._add_at(rng, scene, (x, y), attrs, refs, avoid, jitter=0.0, tries=1)
            if op is not None:
                return op
        return None

    def _beside(self, rng, scene: Scene, t: Obj, avoid: list[Box], tries: int = 16) -> Box | None:
        """A box the size of ``t``'s, next to it, inside the canvas and clear of ``avoid``."""
        x0, y0, x1, y1 = t.box()
        w, h = x1 - x0, y1 - y0
        for _ in range(tries):
            ang = rng.uniform(0, 2 * math.pi)
            d = max(w, h) + rng.uniform(self.gap[0], self.gap[1]) + 1
            cx, cy = t.x + d * math.cos(ang), t.y + d * math.sin(ang)
            b = (int(round(cx - w / 2)), int(round(cy - h / 2)))
            box = (b[0], b[1], b[0] + w, b[1] + h)
            if self._fits(scene, box, avoid):
                return box
        return None

    def _patch(self, rng, scene: Scene, t: Obj, avoid: list[Box]) -> Op | None:
        box = self._beside(rng, scene, t, avoid)
        return None if box is None else OccludingPatch(*box, t.color)

    def _perturb(self, rng, scene: Scene, t: Obj, avoid: list[Box]) -> Op | None:
        box = self._beside(rng, scene, t, avoid)
        return None if box is None else Perturb(*box, int(rng.integers(8, 25)), int(rng.integers(0, 10_000)))
