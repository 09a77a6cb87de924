"""The editor: apply a program to a scene and its rendering.

Order: scene-graph ops first (program order), one re-render with ``aot.world.render``,
then pixel ops (program order) on that image. Ids refer to the scene as it stands at
that op: ``add ...`` then ``remove N`` with N the new id works; referring to a missing
(or already removed) id raises :class:`EditApplyError` naming the op. Added objects get
fresh ids, never reusing one that existed in the input scene or earlier in the program.

Geometry is never an apply error: boxes and centres off the canvas are clipped when
drawing, and recorded in ``touched_boxes`` so :func:`aot.integrity.check` can reject them.

Relative ops (``twin``, ``mimic``) are placed by :func:`place_beside`: the first of a fixed
list of spots around the object (right, left, below, above, then the diagonals; 3 px apart,
then 6) that lies inside the canvas and clear of every object of the edited scene (and of
earlier ``mimic`` patches). A ``mimic`` names its object as it stands at the op's place in
the program (like every id), and is painted with the pixel ops. With no such spot the first
candidate is used, and the integrity check judges it like any other box.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from ..imageops import _gauss_kernel, clip_box, gaussian_blur  # noqa: F401  (moved to aot.imageops; re-exported here)
from ..world.render import render, to_uint8
from ..world.types import Obj, Scene
from .ops import (
    PATCH_RGB,
    AddObject,
    BackgroundChange,
    Box,
    EditApplyError,
    MimicPatch,
    MoveObject,
    OccludingPatch,
    Op,
    Perturb,
    Photometric,
    RemoveObject,
    ReplaceAttrs,
    TwinObject,
)

Occluder = tuple[Box, float]


@dataclass(frozen=True)
class EditResult:
    """What a program did.

    ``occluders``: ((x0, y0, x1, y1), opacity) of pixel ops that hide content (patches,
    opacity 1.0), clipped to the canvas; pass to ``aot.world.evaluate(..., occluders=)``.
    ``touched_boxes``: unclipped boxes of the ops that put content at a location (the
    added object, the moved object at its destination, patches, perturbations), in
    program order; ``touched_ops`` holds the program index of each.
    """

    scene: Scene
    image: np.ndarray
    occluders: list[Occluder]
    touched_boxes: tuple[Box, ...]
    touched_ops: tuple[int, ...]
    program: tuple[Op, ...]


def _photometric(img: np.ndarray, op: Photometric) -> np.ndarray:
    f = img.astype(np.float32)
    if op.contrast != 1.0:
        f = (f - 127.5) * op.contrast + 127.5
    if op.brightness != 1.0:
        f = f * op.brightness
    if op.blur > 0:
        f = gaussian_blur(f, op.blur)
    if op.noise > 0:
        f = f + np.random.default_rng(op.seed).normal(0.0, op.noise, f.shape).astype(np.float32)
    return to_uint8(f)


BESIDE_GAPS: tuple[int, ...] = (3, 6)
"""Pixels between a relative op's box and its object's box, tried in this order."""
BESIDE_DIRS: tuple[tuple[int, int], ...] = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
"""Right, left, below, above, then the diagonals (image y grows downwards)."""


def boxes_overlap(a: Box, b: Box, margin: int = 0) -> bool:
    """Whether boxes ``a`` and ``b`` (x0, y0, x1, y1; x1/y1 exclusive) come closer than ``margin`` px."""
    return min(a[2], b[2]) + margin > max(a[0], b[0]) and min(a[3], b[3]) + margin > max(a[1], b[1])


def place_beside(
    anchor: Box, box_at: Callable[[int, int], Box], width: int, height: int, avoid: Sequence[Box], margin: int = 1
) -> tuple[int, int, Box]:
    """(cx, cy, box) of the first spot beside ``anchor`` whose ``box_at(cx, cy)`` lies inside the
    ``width`` x ``height`` canvas and keeps ``margin`` px clear of every box in ``avoid``.

    Candidates: for each gap of :data:`BESIDE_GAPS`, for each direction (dx, dy) of
    :data:`BESIDE_DIRS`, the centre ``anchor centre + (dx * (aw/2 + w/2 + gap), dy * (ah/2 + h/2 + gap))``
    rounded to integers, where (aw, ah) and (w, h) are the sizes of ``anchor`` and of
    ``box_at(0, 0)``. With none clear, the first candidate (the integrity check then rejects
    or accepts it on its merits). Deterministic: a pure function of its arguments."""
    ax, ay = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    aw2, ah2 = (anchor[2] - anchor[0]) / 2, (anchor[3] - anchor[1]) / 2
    probe = box_at(0, 0)
    w2, h2 = (probe[2] - probe[0]) / 2, (probe[3] - probe[1]) / 2
    first: tuple[int, int, Box] | None = None
    for gap in BESIDE_GAPS:
        for dx, dy in BESIDE_DIRS:
            cx, cy = round(ax + dx * (aw2 + w2 + gap)), round(ay + dy * (ah2 + h2 + gap))
            b = box_at(cx, cy)
            first = first or (cx, cy, b)
            if 0 <= b[0] and 0 <= b[1] and b[2] <= width and b[3] <= height and not any(boxes_overlap(b, a, margin) for a in avoid):
                return cx, cy, b
    assert first is not None
    return first


def _twin(scene: Scene, op: TwinObject, obj_id: int) -> Obj:
    """The lookalike of ``op.id`` with the op's attributes, beside it, clear of every object."""
    src = scene.get(op.id)
    assert src is not None
    proto = replace(src, **op.attr_dict, id=obj_id, depth=scene.top_depth() + 1)
    cx, cy, _ = place_beside(
        src.box(), lambda x, y: replace(proto, x=float(x), y=float(y)).box(), scene.width, scene.height, [o.box() for o in scene.objects]
    )
    return replace(proto, x=float(cx), y=float(cy))


def _mimic_box(scene: Scene, src: Obj, placed: Sequence[Box] = ()) -> Box:
    """A box the size of ``src``'s, beside it, clear of every object of ``scene`` and of the
    mimic patches ``placed`` before it."""
    a = src.box()
    w, h = a[2] - a[0], a[3] - a[1]
    avoid = [o.box() for o in scene.objects] + list(placed)
    return place_beside(a, lambda x, y: (x - w // 2, y - h // 2, x - w // 2 + w, y - h // 2 + h), scene.width, scene.height, avoid)[2]


def _obj_box(scene: Scene, obj_id: int) -> Box:
    o = scene.get(obj_id)
    assert o is not None
    return o.box()


def apply_program(scene: Scene, program: Iterable[Op], image: np.ndarray | None = None) -> EditResult:
    """Apply ``program`` to ``scene``.

    ``image``, if given, must be ``render(scene)``; it only saves a render when the
    program has no scene-graph op (the input is never modified).
    """
    ops = tuple(program)
    cur = scene
    fresh = scene.next_id()
    touched: list[tuple[int, Box]] = []
    mimicked: dict[int, Obj] = {}  # op index -> the object a mimic op names, as it stands at that op
    for i, op in enumerate(ops):
        if not isinstance(op, Op):
            raise EditApplyError(f"op {i + 1}: expected an edit op, got {type(op).__name__}")
        if isinstance(op, MimicPatch):
            o = cur.get(op.id)
            if o is None:
                raise EditApplyError(f"op {i + 1} ({op.to_text()}): no object with id {op.id}; ids present: {sorted(o.id for o in cur.objects)}")
            mimicked[i] = o
        if not op.SCENE_OP:
            continue
        where = f"op {i + 1} ({op.to_text()})"
        if isinstance(op, AddObject):
            oid = max(fresh, cur.next_id())
            fresh = oid + 1
            cur = cur.with_objects(cur.objects + (op.make(oid, cur.top_depth() + 1),))
            touched.append((i, op.box))
        elif isinstance(op, BackgroundChange):
            cur = replace(cur, background=replace(cur.background, kind=op.kind, color=op.color, color2=op.color2))
        else:
            oid = op.id  # type: ignore[attr-defined]
            if cur.get(oid) is None:
                ids = sorted(o.id for o in cur.objects)
                raise EditApplyError(f"{where}: no object with id {oid}; ids present: {ids}")
            if isinstance(op, RemoveObject):
                cur = cur.with_objects(tuple(o for o in cur.objects if o.id != oid))
            elif isinstance(op, ReplaceAttrs):
                cur = cur.with_objects(tuple(replace(o, **op.attr_dict) if o.id == oid else o for o in cur.objects))
            elif isinstance(op, MoveObject):
                cur = cur.with_objects(tuple(replace(o, x=float(op.x), y=float(op.y)) if o.id == oid else o for o in cur.objects))
                touched.append((i, _obj_box(cur, oid)))
            elif isinstance(op, TwinObject):
                new_id = max(fresh, cur.next_id())
                fresh = new_id + 1
                twin = _twin(cur, op, new_id)
                cur = cur.with_objects(cur.objects + (twin,))
                touched.append((i, twin.box()))
            else:  # pragma: no cover - every scene op is handled above
                raise EditApplyError(f"{where}: unsupported op")
    if image is None or any(op.SCENE_OP for op in ops):
        img = render(cur)
    else:
        if image.shape != (scene.height, scene.width, 3) or image.dtype != np.uint8:
            raise EditApplyError(f"image must be uint8 {(scene.height, scene.width, 3)}, got {image.dtype} {image.shape}")
        img = image.copy()
    occluders: list[Occluder] = []
    mimics: list[Box] = []  # mimic patches so far: a later one goes elsewhere
    W, H = cur.width, cur.height
    for i, op in enumerate(ops):
        if op.SCENE_OP:
            continue
        if isinstance(op, OccludingPatch):
            touched.append((i, op.box))
            b = clip_box(op.box, W, H)
            if b is not None:
                img[b[1] : b[3], b[0] : b[2]] = PATCH_RGB[op.color]
                occluders.append((b, 1.0))
        elif isinstance(op, Perturb):
            touched.append((i, op.box))
            b = clip_box(op.box, W, H)
            if b is not None:
                crop = img[b[1] : b[3], b[0] : b[2]]
                signs = np.random.default_rng(op.seed).integers(0, 2, size=crop.shape, dtype=np.int16) * 2 - 1
                img[b[1] : b[3], b[0] : b[2]] = np.clip(crop.astype(np.int16) + signs * op.eps, 0, 255).astype(np.uint8)
        elif isinstance(op, MimicPatch):
            src = mimicked[i]
            box = _mimic_box(cur, src, mimics)
            mimics.append(box)
            touched.append((i, box))
            b = clip_box(box, W, H)
            if b is not None:
                img[b[1] : b[3], b[0] : b[2]] = PATCH_RGB[src.color]
                occluders.append((b, 1.0))
        elif isinstance(op, Photometric):
            img = _photometric(img, op)
        else:  # pragma: no cover
            raise EditApplyError(f"op {i + 1}: unsupported pixel op {op.name}")
    touched.sort(key=lambda t: t[0])
    return EditResult(
        scene=cur,
        image=img,
        occluders=occluders,
        touched_boxes=tuple(b for _, b in touched),
        touched_ops=tuple(i for i, _ in touched),
        program=ops,
    )
