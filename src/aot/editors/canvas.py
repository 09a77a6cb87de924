"""Pixel bookkeeping around a diffusion fill, in numpy: checks, padding, paste-back, outpaint canvas.

A diffusion pipeline sees the whole image through a VAE, so even pixels outside the mask come
back changed. ``paste_back`` puts the original pixels back outside the mask, which is what lets
integrity checks demand that untouched target boxes are bit-identical.
"""

from __future__ import annotations

import numpy as np

Pad = tuple[int, int, int, int]
"""Padding in pixels: (top, bottom, left, right)."""


def check_image(image: np.ndarray) -> None:
    """Raise unless ``image`` is an HxWx3 uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an HxWx3 uint8 array, got {got}")


def check_mask(mask: np.ndarray, image: np.ndarray) -> None:
    """Raise unless ``mask`` is an HxW bool array the size of ``image`` with at least one True pixel."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != image.shape[:2]:
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"mask must be an HxW bool array of shape {image.shape[:2]}, got {got}")
    if not mask.any():
        raise ValueError("mask is empty: nothing to fill")


def pad_to_multiple(h: int, w: int, multiple: int) -> Pad:
    """Bottom/right padding that makes an h x w image a multiple of ``multiple`` on both sides."""
    return (0, -h % multiple, 0, -w % multiple)


def pad_image(image: np.ndarray, pad: Pad) -> np.ndarray:
    """Pad an HxWx3 image by repeating its edge pixels (a neutral context for the fill)."""
    t, b, l, r = pad
    return np.pad(image, ((t, b), (l, r), (0, 0)), mode="edge")


def pad_mask(mask: np.ndarray, pad: Pad, value: bool) -> np.ndarray:
    """Pad an HxW bool mask with ``value`` (True: the padding is to be filled)."""
    t, b, l, r = pad
    return np.pad(mask, ((t, b), (l, r)), mode="constant", constant_values=value)


def crop(image: np.ndarray, pad: Pad) -> np.ndarray:
    """Undo ``pad_image``: drop ``pad`` pixels from each side."""
    t, b, l, r = pad
    h, w = image.shape[:2]
    return image[t : h - b, l : w - r]


def paste_back(original: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``filled`` inside ``mask``, ``original`` bit for bit outside it (all HxW[x3], same size)."""
    if original.shape != filled.shape:
        raise ValueError(f"filled image {filled.shape} does not match the original {original.shape}")
    return np.where(mask[..., None], filled, original)


def outpaint_canvas(image: np.ndarray, pad: Pad) -> tuple[np.ndarray, np.ndarray]:
    """The extended canvas (edge-repeated border) and its mask (True on the new border)."""
    if min(pad) < 0 or max(pad) == 0:
        raise ValueError(f"outpaint padding must be non-negative and not all zero, got {pad}")
    h, w = image.shape[:2]
    return pad_image(image, pad), pad_mask(np.zeros((h, w), dtype=bool), pad, True)


def as_pad(pad_px: int | Pad) -> Pad:
    """``pad_px`` as (top, bottom, left, right); an int pads all four sides alike."""
    if isinstance(pad_px, int):
        return (pad_px,) * 4
    if len(pad_px) != 4:
        raise ValueError(f"pad_px must be an int or (top, bottom, left, right), got {pad_px!r}")
    return tuple(int(p) for p in pad_px)  # type: ignore[return-value]
