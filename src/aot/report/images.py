"""Images for the report: any accepted form -> RGB array or a PNG data URI; difference maps."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import numpy as np

from ..io import decode_png, png_bytes

PNG_URI = "data:image/png;base64,"


def data_uri(img: np.ndarray) -> str:
    """A PNG data URI of an RGB uint8 (H, W, 3) array."""
    return PNG_URI + base64.b64encode(png_bytes(np.ascontiguousarray(img, dtype=np.uint8))).decode("ascii")


def load_image(spec: Any, base_dir: str | Path | None = None, what: str = "image") -> np.ndarray:
    """An image given as a uint8 (H, W, 3) array (or nested lists), a ``data:image/...;base64,``
    URI, a bare base64 PNG string, or a file path (relative paths against ``base_dir``)."""
    if isinstance(spec, np.ndarray) or isinstance(spec, list):
        arr = np.asarray(spec)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{what}: expected an (H, W, 3) array, got shape {arr.shape}")
        return np.clip(arr, 0, 255).astype(np.uint8)
    if isinstance(spec, (str, Path)):
        s = str(spec)
        if s.startswith("data:"):
            head, _, payload = s.partition(",")
            if ";base64" not in head:
                raise ValueError(f"{what}: only base64 data URIs are supported")
            return decode_png(base64.b64decode(payload), what)
        p = Path(s)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        if len(s) < 1024 and p.exists():
            return decode_png(p.read_bytes(), f"{what} ({p})")
        try:
            raw = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{what}: {s[:60]!r} is neither an existing file nor base64 image data") from None
        return decode_png(raw, what)
    raise ValueError(f"{what}: unsupported image type {type(spec).__name__}")


# changed pixels run magenta -> orange -> yellow -> white: even the faintest is far brighter
# than the dimmed grey background of unchanged pixels
_STOPS = np.array([[170, 40, 200], [235, 70, 40], [255, 200, 40], [255, 255, 255]], np.float32)
BACKGROUND = 0.25
"""Brightness of the grey clean image behind the difference (so a change can be placed)."""


def _abs_diff(clean: np.ndarray, edited: np.ndarray) -> np.ndarray:
    if clean.shape != edited.shape:
        raise ValueError(f"diff_map: shapes differ: {clean.shape} vs {edited.shape}")
    return np.abs(clean.astype(np.int16) - edited.astype(np.int16)).max(axis=2)  # (H, W)


def diff_map(clean: np.ndarray, edited: np.ndarray) -> tuple[np.ndarray, int]:
    """A heat map of ``max_c |edited - clean|`` over a dim grey copy of ``clean``, and that
    largest change (0-255). Every changed pixel is bright (the scale is normalised to the
    largest change and square-root stretched), so a +-3 perturbation shows as clearly as an
    added object; unchanged pixels stay dark grey."""
    d = _abs_diff(clean, edited).astype(np.float32)
    peak = int(d.max())
    grey = clean.astype(np.float32).mean(axis=2, keepdims=True) * BACKGROUND
    out = np.repeat(grey, 3, axis=2)
    if peak:
        t = np.sqrt(d / peak)  # (H, W) in (0, 1] where changed
        pos = t * (len(_STOPS) - 1)
        i = np.clip(pos.astype(int), 0, len(_STOPS) - 2)
        f = (pos - i)[..., None]
        heat = _STOPS[i] * (1 - f) + _STOPS[i + 1] * f
        out = np.where((d > 0)[..., None], heat, out)
    return out.astype(np.uint8), peak


def changed_boxes(clean: np.ndarray, edited: np.ndarray, gap: int = 2) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1; x1/y1 exclusive) around the changed regions: changed pixels less
    than ``gap`` px apart count as one region (a noise patch is one box, not hundreds)."""
    mask = _abs_diff(clean, edited) > 0
    h, w = mask.shape
    grown = mask.copy()
    for _ in range(gap):  # dilate (4-neighbourhood) so nearby pixels join one region
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    # connected regions by label propagation: every pixel takes its neighbours' largest label
    lab = np.where(grown, np.arange(1, h * w + 1).reshape(h, w), 0)
    while True:
        nxt = lab.copy()
        nxt[1:] = np.maximum(nxt[1:], lab[:-1])
        nxt[:-1] = np.maximum(nxt[:-1], lab[1:])
        nxt[:, 1:] = np.maximum(nxt[:, 1:], lab[:, :-1])
        nxt[:, :-1] = np.maximum(nxt[:, :-1], lab[:, 1:])
        nxt = np.where(grown, nxt, 0)
        if np.array_equal(nxt, lab):
            break
        lab = nxt
    boxes = []
    for k in np.unique(lab[mask]):
        ys, xs = np.nonzero(mask & (lab == k))
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    # boxes of separate regions can still overlap (an L-shaped region and a dot in its corner):
    # merge them, so no outline crosses another
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, c = boxes[i], boxes[j]
                if a[0] < c[2] + gap and c[0] < a[2] + gap and a[1] < c[3] + gap and c[1] < a[3] + gap:
                    boxes[i] = (min(a[0], c[0]), min(a[1], c[1]), max(a[2], c[2]), max(a[3], c[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (pixels stay sharp squares)."""
    return img if k <= 1 else np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def display_scale(img: np.ndarray, target: int = 192) -> int:
    """The integer factor that brings the image's longer side closest to ``target`` px."""
    return max(1, round(target / max(img.shape[:2])))


def outline(img: np.ndarray, boxes: list[tuple[int, int, int, int]], k: int = 1, width: int = 2) -> np.ndarray:
    """``img`` (already upscaled by ``k``) with each box (in original pixels) outlined just
    outside it in a dashed yellow/black line, which no scene colour can hide."""
    out = img.copy()
    h, w = out.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    dash = ((xx + yy) // 4) % 2 == 0  # (H, W) alternate yellow and black every 4 px
    for x0, y0, x1, y1 in boxes:
        X0, Y0, X1, Y1 = k * x0 - width, k * y0 - width, k * x1 + width, k * y1 + width
        outer = (xx >= X0) & (xx < X1) & (yy >= Y0) & (yy < Y1)
        inner = (xx >= X0 + width) & (xx < X1 - width) & (yy >= Y0 + width) & (yy < Y1 - width)
        ring = outer & ~inner
        out[ring & dash] = (255, 230, 0)
        out[ring & ~dash] = (0, 0, 0)
    return out
