"""Exact training triples for the born world editor: (image, box, description, target fill).

The renderer is the ground truth, so every triple is exact and the supply is unlimited:

- ``add``: a new object (random attributes and place, drawn in front of everything) goes
  into the scene; the image is the scene without it, the target the scene with it, the
  description names it ("small red metal circle");
- ``replace``: an object of the scene keeps its place, depth and id but changes one or more
  attributes; the description names the new object, the box covers the old and the new one;
- ``remove``: an object leaves the scene; the prompt is ``WORLD_BACKGROUND_PROMPT``.

The box is the object's box grown by ``BOX_PAD`` pixels and clipped to the canvas: the
renderer's anti-aliasing (a diamond reaches 1.05 radii) can touch one pixel beyond
``Obj.box``, and outside the box the image and the target are then identical, so a fill
pasted back outside the mask can reach the target exactly.

Seeds: training draws from item base ``TRAIN_BASE`` (below the evaluation range of
``aot.seeds``), held-out fills from the evaluation offset ``FIDELITY_OFFSET``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..seeds import SEED_STRIDE, eval_item_seed, item_seed
from ..world.render import render, snap
from ..world.sampler import sample_scene
from ..world.types import COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, SIZES, Obj, Scene

FILL_OPS: tuple[str, ...] = ("add", "replace", "remove")
WORLD_BACKGROUND_PROMPT = "empty background"
"""The prompt of a removal, in the world editor's vocabulary (its ``EditorConfig.background_prompt``)."""
BOX_PAD = 1
"""Pixels added on each side of an object's box."""
TRAIN_BASE = 860
"""Item base seed of the editor's training triples (``aot.seeds``: below 900, never evaluated on)."""
FIDELITY_OFFSET = 60
"""Evaluation offset of the held-out fills (item base 960)."""
TAG = 0xED17
"""Random-stream tag of a triple's choices (apart from the scene's own draw)."""

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FillTriple:
    """One exact fill: ``target`` is the render of ``after``, ``image`` the render of ``before``."""

    op: str
    image: np.ndarray
    """(H, W, 3) uint8, the scene before the edit."""
    box: Box
    """(x0, y0, x1, y1), x1/y1 exclusive, inside the canvas."""
    prompt: str
    """The description of the painted object, or ``WORLD_BACKGROUND_PROMPT``."""
    target: np.ndarray
    """(H, W, 3) uint8, the exact render after the edit; equal to ``image`` outside ``box``."""
    obj: Obj | None
    """The object the prompt describes (None for a removal)."""
    before: Scene
    after: Scene

    def mask(self) -> np.ndarray:
        """(H, W) bool, True inside the box."""
        m = np.zeros(self.image.shape[:2], dtype=bool)
        x0, y0, x1, y1 = self.box
        m[y0:y1, x0:x1] = True
        return m


def describe_obj(o: Obj) -> str:
    """'small red metal circle': size, colour, material, shape."""
    return f"{o.size} {o.color} {o.material} {o.shape}"


def fill_box(objs: list[Obj], width: int, height: int, pad: int = BOX_PAD) -> Box:
    """The union of the objects' boxes, grown by ``pad`` and clipped to the canvas."""
    boxes = np.array([o.box() for o in objs])
    x0, y0 = boxes[:, :2].min(0) - pad
    x1, y1 = boxes[:, 2:].max(0) + pad
    return (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))


def random_attrs(rng: np.random.Generator) -> dict[str, str]:
    return {
        "size": SIZE_NAMES[int(rng.integers(len(SIZE_NAMES)))],
        "color": COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))],
        "material": MATERIALS[int(rng.integers(len(MATERIALS)))],
        "shape": SHAPES[int(rng.integers(len(SHAPES)))],
    }


def new_object(scene: Scene, rng: np.random.Generator) -> Obj:
    """An object of random attributes, wholly inside the canvas, in front of every other."""
    attrs = random_attrs(rng)
    r = SIZES[attrs["size"]]
    x = snap(rng.uniform(r + 1.0, scene.width - r - 1.0))
    y = snap(rng.uniform(r + 1.0, scene.height - r - 1.0))
    return Obj(id=scene.next_id(), x=x, y=y, depth=scene.top_depth() + 1, **attrs)


def changed_object(o: Obj, rng: np.random.Generator) -> Obj:
    """``o`` with each attribute redrawn with probability 1/2, at least one of them different."""
    while True:
        new = {k: (v if rng.random() < 0.5 else w) for (k, v), w in zip(o.attrs().items(), random_attrs(rng).values())}
        if new != o.attrs():
            return replace(o, **new)


def make_triple(seed: int, regime: str, op: str) -> FillTriple:
    """The exact ``op`` triple of scene ``seed`` in ``regime`` (the same arguments, the same triple)."""
    if op not in FILL_OPS:
        raise ValueError(f"unknown fill op {op!r}; choose from {FILL_OPS}")
    scene = sample_scene(seed, regime)
    rng = np.random.default_rng([int(seed), TAG, FILL_OPS.index(op)])
    W, H = scene.width, scene.height
    if op == "add" or not scene.objects:
        o = new_object(scene, rng)
        before, after, box, prompt, obj, op = scene, scene.with_objects(scene.objects + (o,)), fill_box([o], W, H), describe_obj(o), o, "add"
    else:
        old = scene.objects[int(rng.integers(len(scene.objects)))]
        rest = tuple(p for p in scene.objects if p.id != old.id)
        if op == "remove":
            before, after, box, prompt, obj = scene, scene.with_objects(rest), fill_box([old], W, H), WORLD_BACKGROUND_PROMPT, None
        else:
            o = changed_object(old, rng)
            before, after, box, prompt, obj = scene, scene.with_objects(rest + (o,)), fill_box([old, o], W, H), describe_obj(o), o
    return FillTriple(op, render(before), box, prompt, render(after), obj, before, after)


@dataclass(frozen=True)
class FillMix:
    """What the editor trains on: regimes and ops, drawn per triple."""

    complex_frac: float = 0.7
    """Share of steps on complex 96x96 scenes (the attack items'); the rest are simple 64x64."""
    op_weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """Weights of add / replace / remove."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.complex_frac <= 1.0:
            raise ValueError(f"complex_frac is a share in [0, 1], got {self.complex_frac}")
        if len(self.op_weights) != len(FILL_OPS) or min(self.op_weights) < 0 or sum(self.op_weights) <= 0:
            raise ValueError(f"op_weights needs {len(FILL_OPS)} non-negative weights ({FILL_OPS}) with a positive sum")


def train_batch(step: int, batch_size: int, mix: FillMix, seed: int = 0) -> list[FillTriple]:
    """The batch of training step ``step``: one regime for the whole batch (a batch shares its
    size), ops drawn per triple; a function of (step, seed) alone, so a resumed run sees the
    same data."""
    rng = np.random.default_rng([int(seed), int(step), TAG])
    regime = "complex" if rng.random() < mix.complex_frac else "simple"
    p = np.asarray(mix.op_weights, float) / sum(mix.op_weights)
    ops = rng.choice(len(FILL_OPS), size=batch_size, p=p)
    start = seed * 1_000_003 + step * batch_size  # a run seed moves the whole stream
    return [make_triple(item_seed(TRAIN_BASE, (start + i) % SEED_STRIDE), regime, FILL_OPS[int(k)]) for i, k in enumerate(ops)]


def heldout_triples(n: int, regime: str = "complex", ops: tuple[str, ...] = FILL_OPS, seed: int = 0) -> list[FillTriple]:
    """``n`` held-out triples (evaluation seeds), ops in turn."""
    return [make_triple(eval_item_seed(FIDELITY_OFFSET, seed, i), regime, ops[i % len(ops)]) for i in range(n)]


def stack(triples: list[FillTriple]) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(images (B, H, W, 3) uint8, masks (B, H, W) bool, prompts, targets (B, H, W, 3) uint8)."""
    return (np.stack([t.image for t in triples]), np.stack([t.mask() for t in triples]),
            [t.prompt for t in triples], np.stack([t.target for t in triples]))
