"""Pure-numpy image maths shared by every backend's judge and editor: localized SSIM and its
crop, and a separable gaussian blur. It imports nothing of ``aot`` (the photo backend reads it
without the world); ``aot.integrity`` and ``aot.edits.apply`` re-export what they used to define.
"""

from __future__ import annotations

import math

import numpy as np

SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def local_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two equal-shape crops, (H, W) or (H, W, C) with H, W >= 7.

    Same as ``skimage.metrics.structural_similarity(a, b, channel_axis=-1,
    data_range=255)`` with its defaults (7x7 uniform window, sample covariance, K1=0.01,
    K2=0.03): the mean over channels of the mean over all fully-inside windows.
    """
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"local_ssim: shapes differ: {x.shape} vs {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    if x.ndim != 3 or x.shape[0] < SSIM_WIN or x.shape[1] < SSIM_WIN:
        raise ValueError(f"local_ssim: expected (H, W[, C]) with H, W >= {SSIM_WIN}, got {np.shape(a)}")
    C = x.shape[2]
    stack = np.concatenate([x, y, x * x, y * y, x * y], axis=2)
    c = np.zeros((stack.shape[0] + 1, stack.shape[1] + 1, stack.shape[2]))
    c[1:, 1:] = stack.cumsum(0).cumsum(1)
    w = SSIM_WIN
    m = (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)
    ux, uy, uxx, uyy, uxy = (m[..., i * C : (i + 1) * C] for i in range(5))
    cov = w * w / (w * w - 1.0)
    vx = cov * (uxx - ux * ux)
    vy = cov * (uyy - uy * uy)
    vxy = cov * (uxy - ux * uy)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim_box(box: tuple[int, int, int, int], pad: int, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` padded, clipped to the canvas, grown to at least 7x7 inside the canvas."""
    x0, y0, x1, y1 = max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, width), min(box[3] + pad, height)

    def grow(lo: int, hi: int, n: int) -> tuple[int, int]:
        if hi - lo >= SSIM_WIN:
            return lo, hi
        lo = min(max(0, (lo + hi - SSIM_WIN) // 2), n - SSIM_WIN)
        return lo, lo + SSIM_WIN

    x0, x1 = grow(x0, x1, width)
    y0, y1 = grow(y0, y1, height)
    return x0, y0, x1, y1


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, math.ceil(3 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-(t * t) / (2 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable gaussian blur of a float (H, W, C) image, edge-replicated borders."""
    if sigma <= 0:
        return img
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    H, W = img.shape[:2]
    p = np.pad(img, ((r, r), (0, 0), (0, 0)), mode="edge")
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * p[i : i + H]
    p = np.pad(out, ((0, 0), (r, r), (0, 0)), mode="edge")
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * p[:, i : i + W]
    return out


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """``box`` (x0, y0, x1, y1; x1/y1 exclusive) clipped to the canvas, or None when nothing of
    it is inside. Shared by the world's editor and the photo editor."""
    x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None
