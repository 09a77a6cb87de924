"""Carry out a photo edit program: box fills with a diffusion pipeline, pixel ops in numpy.

Ops run in program order on the photo. ``add`` / ``replace`` / ``remove`` go to
:class:`aot.editors.DiffusersEditor` (any diffusers mask-inpainting pipeline, injected by class
and path through :class:`aot.editors.EditorConfig`), which pastes the original back outside the
box: pixels outside every op's box come back bit for bit. ``patch``, ``perturb`` and ``photo``
are the procedural world's pixel ops, in numpy. The pipeline is built on the first box fill, so
a program of pixel ops never loads a model.

Geometry is never an apply error: a box that leaves the canvas is clipped for painting and
recorded unclipped in ``touched_boxes``, so the judge rejects it with a reason (as in the world).
Each fill's noise seed is derived from the item's seed and the op's index: the same item and
program give the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...editors import BoxEdit, DiffusersEditor, EditorConfig
from ...imageops import clip_box, gaussian_blur
from ...vqa import Box
from .program import PATCH_COLOURS, BoxFill, Patch, Perturb, Photometric, PhotoApplyError, PhotoOp


@dataclass(frozen=True)
class PhotoEditResult:
    """What a program did to a photo."""

    image: np.ndarray
    """(H, W, 3) uint8."""
    program: tuple[PhotoOp, ...]
    touched_boxes: tuple[Box, ...]
    """Unclipped boxes of the located ops, in program order."""
    touched_ops: tuple[int, ...]
    """Program index of each touched box."""
    global_ops: tuple[int, ...]
    """Program indices of ops that change every pixel (``photo``): target boxes change too."""


def op_seed(item_seed: int, index: int) -> int:
    """The fill seed of op ``index`` of a program applied to an item seeded ``item_seed``."""
    return int.from_bytes(hashlib.sha256(f"{int(item_seed)}/{index}".encode()).digest()[:4], "big") >> 1


def photometric(image: np.ndarray, op: Photometric) -> np.ndarray:
    """Contrast about mid-grey, brightness gain, gaussian blur, seeded gaussian noise."""
    f = image.astype(np.float32)
    if op.contrast != 1.0:
        f = (f - 127.5) * op.contrast + 127.5
    if op.brightness != 1.0:
        f = f * op.brightness
    if op.blur > 0:
        f = gaussian_blur(f, op.blur)
    if op.noise > 0:
        f = f + np.random.default_rng(op.seed).normal(0.0, op.noise, f.shape).astype(np.float32)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def perturb(crop: np.ndarray, op: Perturb) -> np.ndarray:
    """``crop`` plus seeded sign noise of amplitude ``op.eps``."""
    signs = np.random.default_rng(op.seed).integers(0, 2, size=crop.shape, dtype=np.int16) * 2 - 1
    return np.clip(crop.astype(np.int16) + signs * op.eps, 0, 255).astype(np.uint8)


class PhotoEditor:
    """Applies photo programs; the diffusion pipeline is built on the first box fill."""

    def __init__(self, cfg: EditorConfig | None = None, diffusion: DiffusersEditor | None = None):
        self.cfg = cfg or EditorConfig()
        self._diffusion = diffusion

    @property
    def diffusion(self) -> DiffusersEditor:
        if self._diffusion is None:
            self._diffusion = DiffusersEditor(self.cfg)
        return self._diffusion

    def apply(self, image: np.ndarray, program: Sequence[PhotoOp], seed: int = 0) -> PhotoEditResult:
        """``program`` applied to ``image`` (never modified); ``seed``: the item's seed."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise PhotoApplyError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        img = image.copy()
        touched: list[tuple[int, Box]] = []
        global_ops: list[int] = []
        for i, op in enumerate(program):
            if not isinstance(op, PhotoOp):
                raise PhotoApplyError(f"op {i + 1}: expected a photo edit op, got {type(op).__name__}")
            if op.GLOBAL:
                assert isinstance(op, Photometric)
                img = photometric(img, op)
                global_ops.append(i)
                continue
            assert op.box is not None
            touched.append((i, op.box))
            b = clip_box(op.box, w, h)
            if b is None:
                continue  # wholly off the canvas: the judge says so
            x0, y0, x1, y1 = b
            if isinstance(op, BoxFill):
                img, _ = self.diffusion.apply_box(img, BoxEdit(op.name, b, op.prompt_text), seed=op_seed(seed, i))
            elif isinstance(op, Patch):
                img[y0:y1, x0:x1] = PATCH_COLOURS[op.colour]
            elif isinstance(op, Perturb):
                img[y0:y1, x0:x1] = perturb(img[y0:y1, x0:x1], op)
            else:  # pragma: no cover - every located op is handled above
                raise PhotoApplyError(f"op {i + 1}: unsupported op {op.name}")
        return PhotoEditResult(img, tuple(program), tuple(b for _, b in touched), tuple(i for i, _ in touched), tuple(global_ops))

    def extend(self, image: np.ndarray, pad: tuple[int, int, int, int], prompt: str, seed: int) -> np.ndarray:
        """Scene extension (AOT-SFT step 1): the photo outpainted by ``pad`` = (top, bottom,
        left, right) pixels; the original sits unchanged at offset (top, left)."""
        return self.diffusion.outpaint(image, pad, prompt, seed)
