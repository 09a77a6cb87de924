"""Renderer: scene graph -> RGB uint8 (H, W, 3), anti-aliased, deterministic.

Written for speed: every object is a cached, premultiplied sprite keyed by
(shape, size, colour, material, quarter-pixel offset), so drawing an object costs one
alpha blend on its crop; backgrounds (texture + clutter) are cached per parameter set.
A complex 96x96 scene with 20 objects renders in well under a millisecond on one core.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .types import BG_COLORS, COLORS, SIZES, Background, Lighting, Obj, Scene

SUPERSAMPLE = 4  # 4x4 samples per pixel for anti-aliased coverage
QUANT = 4  # centres snapped to 1/QUANT pixel


def snap(v: float) -> float:
    """Snap a coordinate to the renderer's quarter-pixel grid."""
    return round(v * QUANT) / QUANT


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in units of the object radius (v points down)."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(au, av) <= 0.82
    if shape == "triangle":  # apex up
        return (v <= 0.75) & (au <= (v + 0.98) * (0.98 / 1.73))
    if shape == "diamond":
        return au + av <= 1.05
    if shape == "cross":
        return ((au <= 0.34) & (av <= 0.97)) | ((av <= 0.34) & (au <= 0.97))
    if shape == "ring":
        d2 = u * u + v * v
        return (d2 <= 1.0) & (d2 >= 0.5 * 0.5)
    if shape == "hexagon":
        s = 0.98
        return (av <= s * 0.866) & (1.732 * au + av <= s * 1.732)
    raise ValueError(f"unknown shape {shape!r}")


def _extent(radius: float) -> int:
    return math.ceil(radius) + 1


@lru_cache(maxsize=None)
def _coverage(shape: str, size: str, qx: int, qy: int) -> np.ndarray:
    """Alpha (S, S) float32 for an object whose centre sits at floor + q/QUANT."""
    r = SIZES[size]
    R = _extent(r)
    S = 2 * R + 2
    fx, fy = qx / QUANT, qy / QUANT
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE  # sample offsets inside a pixel
    # pixel i covers [i - R, i - R + 1) relative to floor(centre); samples relative to centre
    xs = (np.arange(S)[:, None] - R + sub[None, :] - fx).reshape(-1)  # (S*SS,)
    ys = (np.arange(S)[:, None] - R + sub[None, :] - fy).reshape(-1)
    inside = _inside(shape, xs[None, :] / r, ys[:, None] / r)  # (S*SS, S*SS)
    a = inside.reshape(S, SUPERSAMPLE, S, SUPERSAMPLE).mean(axis=(1, 3))
    return a.astype(np.float32)


@lru_cache(maxsize=None)
def sprite(shape: str, size: str, color: str, material: str, qx: int, qy: int) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied RGB (S, S, 3) and alpha (S, S, 1), both float32 in [0, 255] / [0, 1]."""
    alpha = _coverage(shape, size, qx, qy)
    S = alpha.shape[0]
    r = SIZES[size]
    R = _extent(r)
    c = (np.arange(S) + 0.5 - R) / r  # pixel-centre coords in radius units
    u = (c - qx / QUANT / r)[None, :]
    v = (c - qy / QUANT / r)[:, None]
    base = np.array(COLORS[color], np.float32)
    # light from the top-left: g in [0, 1], 1 facing the light
    g = np.clip(0.5 - 0.35 * (u + v), 0.0, 1.0)[..., None]
    if material == "matte":
        rgb = base * (0.80 + 0.25 * g)
    elif material == "metal":
        hl = np.exp(-((u + 0.35) ** 2 + (v + 0.35) ** 2) / (2 * 0.2**2))[..., None]
        rgb = base * (0.40 + 0.80 * g) + 255.0 * 0.9 * hl
    else:
        raise ValueError(f"unknown material {material!r}")
    rgb = np.clip(rgb, 0, 255).astype(np.float32)
    a = alpha[..., None]
    return np.ascontiguousarray(rgb * a), np.ascontiguousarray(a)


def _placement(o: Obj) -> tuple[int, int, int, int]:
    """(ox, oy, qx, qy): sprite origin on the canvas and quarter-pixel offsets."""
    fx, fy = math.floor(o.x), math.floor(o.y)
    qx = int(round((o.x - fx) * QUANT)) % QUANT
    qy = int(round((o.y - fy) * QUANT)) % QUANT
    R = _extent(o.radius)
    return fx - R, fy - R, qx, qy


@lru_cache(maxsize=4096)
def _pattern(kind: str, width: int, height: int, phase: int) -> np.ndarray:
    """Grey pattern (H, W) in [0, 1] mixing color -> color2."""
    rng = np.random.default_rng(1000 + phase)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    if kind == "plain":
        return np.zeros((height, width), np.float32)
    if kind == "gradient":
        ang = (phase % 8) * math.pi / 4
        t = xx * math.cos(ang) + yy * math.sin(ang)
        return ((t - t.min()) / max(t.max() - t.min(), 1e-6)).astype(np.float32)
    if kind == "stripes":
        period = 5.0 + (phase % 5)
        ang = (phase % 4) * math.pi / 4 + math.pi / 8
        t = (xx * math.cos(ang) + yy * math.sin(ang)) / period
        return (0.5 + 0.5 * np.sin(2 * math.pi * t)).astype(np.float32)
    if kind == "checker":
        cell = 5 + (phase % 6)
        return (((xx // cell + yy // cell) % 2) * 0.85 + 0.075).astype(np.float32)
    if kind == "noise":
        g = 6 + phase % 4
        coarse = rng.random((height // g + 2, width // g + 2)).astype(np.float32)
        # bilinear upsample of the coarse grid, plus fine grain
        gy, gx = yy / g, xx / g
        y0, x0 = gy.astype(int), gx.astype(int)
        ty, tx = gy - y0, gx - x0
        c = (
            coarse[y0, x0] * (1 - tx) * (1 - ty)
            + coarse[y0, x0 + 1] * tx * (1 - ty)
            + coarse[y0 + 1, x0] * (1 - tx) * ty
            + coarse[y0 + 1, x0 + 1] * tx * ty
        )
        return np.clip(0.8 * c + 0.2 * rng.random((height, width)), 0, 1).astype(np.float32)
    raise ValueError(f"unknown background kind {kind!r}")


@lru_cache(maxsize=4096)
def _clutter(width: int, height: int, phase: int, count: int) -> np.ndarray:
    """Thin anti-aliased line segments (H, W) in [0, 1]: busy marks that are not objects."""
    out = np.zeros((height, width), np.float32)
    if count <= 0:
        return out
    rng = np.random.default_rng(5000 + phase * 131 + count)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    for _ in range(count):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        ang, ln = rng.uniform(0, math.pi), rng.uniform(4, 10)
        dx, dy = math.cos(ang) * ln, math.sin(ang) * ln
        # distance from each pixel centre to the segment
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (ln * ln), 0, 1)
        d = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        out = np.maximum(out, np.clip(1.0 - np.abs(d) / 0.8, 0, 1))
    return out


@lru_cache(maxsize=2048)
def background_image(bg: Background, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 255]; cached, treat as read-only."""
    p = _pattern(bg.kind, width, height, bg.phase)[..., None]
    c1 = np.array(BG_COLORS[bg.color], np.float32)
    c2 = np.array(BG_COLORS[bg.color2], np.float32)
    img = c1 + p * (c2 - c1)
    if bg.clutter:
        m = _clutter(width, height, bg.phase, bg.clutter)[..., None]
        ink = np.where(c1.mean() > 110, 30.0, 210.0)  # dark marks on light ground and vice versa
        img = img * (1 - m) + ink * m
    img = img.astype(np.float32)
    img.setflags(write=False)
    return img


def blend_object(canvas: np.ndarray, o: Obj) -> None:
    """Alpha-blend one object's sprite into ``canvas`` (H, W, 3) float32, in place."""
    ox, oy, qx, qy = _placement(o)
    rgb, a = sprite(o.shape, o.size, o.color, o.material, qx, qy)
    S = a.shape[0]
    H, W = canvas.shape[:2]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + S, W), min(oy + S, H)
    if x0 >= x1 or y0 >= y1:
        return
    sx, sy = x0 - ox, y0 - oy
    crop = canvas[y0:y1, x0:x1]
    crop *= 1.0 - a[sy : sy + y1 - y0, sx : sx + x1 - x0]
    crop += rgb[sy : sy + y1 - y0, sx : sx + x1 - x0]


def apply_lighting(img: np.ndarray, lighting: Lighting) -> np.ndarray:
    if lighting.contrast != 1.0:
        img = (img - 127.5) * lighting.contrast + 127.5
    if lighting.brightness != 1.0:
        img = img * lighting.brightness
    return img


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 255.0) + 0.5).astype(np.uint8)


def render_float(scene: Scene) -> np.ndarray:
    """(H, W, 3) float32 in [0, 255] before lighting."""
    canvas = background_image(scene.background, scene.width, scene.height).copy()
    for o in sorted(scene.objects, key=lambda o: (o.depth, o.id)):
        blend_object(canvas, o)
    return canvas


def render(scene: Scene) -> np.ndarray:
    """Scene -> RGB uint8 (H, W, 3)."""
    return to_uint8(apply_lighting(render_float(scene), scene.lighting))


def object_alpha(o: Obj, width: int, height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The object's coverage clipped to the canvas, and its canvas box (x0, y0, x1, y1)."""
    ox, oy, qx, qy = _placement(o)
    a = _coverage(o.shape, o.size, qx, qy)
    S = a.shape[0]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + S, width), min(oy + S, height)
    if x0 >= x1 or y0 >= y1:
        return np.zeros((0, 0), np.float32), (x0, y0, x0, y0)
    return a[y0 - oy : y1 - oy, x0 - ox : x1 - ox], (x0, y0, x1, y1)


def visible_fraction(scene: Scene, obj_id: int, extra_occluders: list[tuple[tuple[int, int, int, int], float]] | None = None) -> float:
    """Share of the object's full (unclipped) coverage still visible on the canvas.

    Counts the canvas border, every object drawn in front of it, and optional opaque
    pixel boxes (``extra_occluders``: (box, opacity)) from pixel edits.
    """
    o = scene.get(obj_id)
    if o is None:
        return 0.0
    ox, oy, qx, qy = _placement(o)
    full = float(_coverage(o.shape, o.size, qx, qy).sum())
    a, (x0, y0, x1, y1) = object_alpha(o, scene.width, scene.height)
    if a.size == 0 or full <= 0:
        return 0.0
    vis = a.astype(np.float64).copy()
    key = (o.depth, o.id)
    for p in scene.objects:
        if (p.depth, p.id) <= key:
            continue
        pa, (px0, py0, px1, py1) = object_alpha(p, scene.width, scene.height)
        ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        vis[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] *= 1.0 - pa[iy0 - py0 : iy1 - py0, ix0 - px0 : ix1 - px0]
    for (bx0, by0, bx1, by1), opacity in extra_occluders or []:
        ix0, iy0, ix1, iy1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
        if ix0 < ix1 and iy0 < iy1:
            vis[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] *= 1.0 - opacity
    return float(vis.sum() / full)
