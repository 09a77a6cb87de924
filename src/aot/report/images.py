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


_STOPS = np.array([[0, 0, 0], [120, 20, 120], [230, 60, 30], [255, 200, 40], [255, 255, 255]], np.float32)


def diff_map(clean: np.ndarray, edited: np.ndarray) -> tuple[np.ndarray, int]:
    """A heat map of ``max_c |edited - clean|`` (black = unchanged, white = the largest change;
    square-root scaled so faint pixel perturbations stay visible) and that largest change (0-255)."""
    if clean.shape != edited.shape:
        raise ValueError(f"diff_map: shapes differ: {clean.shape} vs {edited.shape}")
    d = np.abs(clean.astype(np.int16) - edited.astype(np.int16)).max(axis=2).astype(np.float32)
    peak = int(d.max())
    t = np.sqrt(d / peak) if peak else d
    pos = t * (len(_STOPS) - 1)
    i = np.clip(pos.astype(int), 0, len(_STOPS) - 2)
    f = (pos - i)[..., None]
    rgb = _STOPS[i] * (1 - f) + _STOPS[i + 1] * f
    return rgb.astype(np.uint8), peak
