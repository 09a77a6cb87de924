"""Random valid programs: the non-learned random attacker and a source for property tests."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..world.types import ATTRIBUTE_VALUES, ATTRIBUTES, BACKGROUND_KINDS, BG_COLORS, COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, SIZES, Scene
from .ops import (
    ABSOLUTE_OPS,
    OP_NAMES,
    PATCH_COLORS,
    AddObject,
    BackgroundChange,
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

_NEEDS_OBJECT = ("remove", "replace", "move", "twin", "mimic")


def _pick(rng: np.random.Generator, seq: Sequence[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


def _centre(rng: np.random.Generator, size: str, w: int, h: int) -> tuple[int, int]:
    """An integer centre whose object box lies inside the canvas."""
    m = math.ceil(SIZES[size])
    return int(rng.integers(m, w - m + 1)), int(rng.integers(m, h - m + 1))


def _box(rng: np.random.Generator, w: int, h: int, lo: int, hi: int) -> tuple[int, int, int, int]:
    bw, bh = int(rng.integers(lo, min(hi, w) + 1)), int(rng.integers(lo, min(hi, h) + 1))
    x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    return x0, y0, x0 + bw, y0 + bh


def random_program(scene: Scene, rng: np.random.Generator, max_ops: int = 2, kinds: Sequence[str] | None = None) -> tuple[Op, ...]:
    """1..max_ops random ops that apply cleanly to ``scene`` (ids exist when used, every box
    and added/moved object inside the canvas; relative ops are placed by the editor).
    ``kinds``: the op names drawn from, uniformly (default: the eight ``ABSOLUTE_OPS``; pass
    ``OP_NAMES`` to add ``twin`` and ``mimic``); ops needing an object are skipped when none
    is left."""
    kinds = tuple(kinds or ABSOLUTE_OPS)
    for k in kinds:
        if k not in OP_NAMES:
            raise ValueError(f"unknown op kind {k!r}; choose from {OP_NAMES}")
    if max_ops < 1:
        raise ValueError(f"max_ops must be >= 1, got {max_ops}")
    W, H = scene.width, scene.height
    sizes = {o.id: o.size for o in scene.objects}  # live ids -> current size
    fresh = scene.next_id()
    ops: list[Op] = []
    for _ in range(int(rng.integers(1, max_ops + 1))):
        avail = [k for k in kinds if sizes or k not in _NEEDS_OBJECT]
        if not avail:
            break
        k = _pick(rng, avail)
        if k == "add":
            size = _pick(rng, SIZE_NAMES)
            x, y = _centre(rng, size, W, H)
            ops.append(AddObject(size, _pick(rng, COLOR_NAMES), _pick(rng, MATERIALS), _pick(rng, SHAPES), x, y))
            sizes[fresh] = size
            fresh += 1
        elif k in _NEEDS_OBJECT:
            ids = sorted(sizes)
            oid = ids[int(rng.integers(len(ids)))]
            if k == "remove":
                ops.append(RemoveObject(oid))
                del sizes[oid]
            elif k in ("replace", "twin"):
                n = int(rng.integers(1, 3))
                keys = [ATTRIBUTES[i] for i in sorted(rng.choice(len(ATTRIBUTES), size=n, replace=False))]
                attrs = {a: _pick(rng, ATTRIBUTE_VALUES[a]) for a in keys}
                if k == "replace":
                    ops.append(ReplaceAttrs(oid, attrs))
                    sizes[oid] = attrs.get("size", sizes[oid])
                else:
                    ops.append(TwinObject(oid, attrs))
                    sizes[fresh] = attrs.get("size", sizes[oid])
                    fresh += 1
            elif k == "mimic":
                ops.append(MimicPatch(oid))
            else:
                x, y = _centre(rng, sizes[oid], W, H)
                ops.append(MoveObject(oid, x, y))
        elif k == "patch":
            ops.append(OccludingPatch(*_box(rng, W, H, 2, 16), _pick(rng, PATCH_COLORS)))
        elif k == "perturb":
            ops.append(Perturb(*_box(rng, W, H, 2, 32), int(rng.integers(1, 33)), int(rng.integers(0, 10_000))))
        elif k == "background":
            c = rng.choice(len(BG_COLORS), size=2, replace=False)
            names = list(BG_COLORS)
            ops.append(BackgroundChange(_pick(rng, BACKGROUND_KINDS), names[int(c[0])], names[int(c[1])]))
        else:  # photo
            on = rng.random(4) < 0.5
            ops.append(
                Photometric(
                    brightness=round(float(rng.uniform(0.8, 1.2)), 2) if on[0] else 1.0,
                    contrast=round(float(rng.uniform(0.8, 1.2)), 2) if on[1] else 1.0,
                    blur=round(float(rng.uniform(0.2, 1.5)), 2) if on[2] else 0.0,
                    noise=round(float(rng.uniform(0.5, 8.0)), 1) if on[3] else 0.0,
                    seed=int(rng.integers(0, 10_000)) if on[3] else 0,
                )
            )
    return tuple(ops)
