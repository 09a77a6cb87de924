"""A mask-inpainting editor on any diffusers inpainting pipeline, injected by class name and path.

``DiffusersEditor.inpaint`` fills the True pixels of a mask from a prompt; ``outpaint`` extends
the canvas (the paper's scene extension: pad, mask the border, same pipeline); ``apply_box``
carries out a box + description edit (``aot.editors.box_ops``). Every result has the original
pixels pasted back outside the mask, so they are bit-identical to the input.

Sizes: the pipeline runs at the image's own size padded (edge pixels) up to a multiple of the
pipeline's latent patch (``vae_scale_factor * 2``), or, with ``work_size``, at a resized copy
whose longer side is about ``work_size``; the fill is brought back to the input size before the
paste-back.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .box_ops import DEFAULT_BACKGROUND_PROMPT, BoxEdit, box_request
from .canvas import as_pad, check_image, check_mask, crop, outpaint_canvas, pad_image, pad_mask, pad_to_multiple, paste_back
from .qwen_size import small_image_sizes

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class EditorConfig:
    """Which pipeline fills masks, and how it is called."""

    pipeline: str = "FluxFillPipeline"
    """diffusers pipeline class with ``image`` and ``mask_image`` inputs: FluxFillPipeline,
    FluxInpaintPipeline, StableDiffusionInpaintPipeline, QwenImageInpaintPipeline,
    QwenImageEditInpaintPipeline, ..."""
    path: str = "tiny"
    """Local pipeline folder (safetensors weights; nothing is downloaded), a born world editor
    saved by ``aot pretrain-editor`` (its folder or .safetensors file), or 'tiny' for a
    random-weight build from ``aot.editors.tiny``."""
    tiny_seed: int = 0
    """Weight seed of a 'tiny' build."""
    steps: int = 4
    """Denoising steps per fill."""
    guidance: float | None = None
    """``guidance_scale`` passed to the pipeline; None keeps the pipeline's default (FluxFill:
    30, SD: 7.5)."""
    strength: float = 1.0
    """How far the masked region is re-noised (1: painted from pure noise). Only passed to
    pipelines that take it (FluxInpaint defaults to 0.6)."""
    seed: int = 0
    """Seed of a fill when the caller gives none."""
    work_size: int = 0
    """0: run at the image's size (padded to the patch multiple). N: run at a copy resized so
    its longer side is about N (the size a real model was trained at, e.g. 1024 or 512)."""
    true_cfg_scale: float = 1.0
    """Qwen-Image pipelines' true classifier-free guidance (their default 4.0 only acts with a
    negative prompt, which this editor does not pass); 1 = one transformer call per step, which
    Flow-GRPO needs."""
    max_sequence_length: int = 32
    """Text tokens for pipelines that take ``max_sequence_length`` (Flux: 512 at full size)."""
    device: str = "cpu"
    """Torch device of the pipeline."""
    dtype: str = "float32"
    """Weights dtype: float32, bfloat16 or float16."""
    background_prompt: str = DEFAULT_BACKGROUND_PROMPT
    """Prompt of a 'remove' box edit."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"editor.steps must be at least 1, got {self.steps}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"editor.strength must be in (0, 1], got {self.strength}")
        if self.dtype not in DTYPES:
            raise ValueError(f"editor.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.work_size < 0:
            raise ValueError(f"editor.work_size must be 0 (keep size) or positive, got {self.work_size}")


def is_world_editor(path: str) -> bool:
    """Whether ``path`` is a born world editor saved by ``aot pretrain-editor`` (its own format)."""
    from pathlib import Path

    from .world_editor import WEIGHTS_FILE

    p = Path(path)
    return bool(path) and ((p / WEIGHTS_FILE).is_file() or (p.suffix == ".safetensors" and p.is_file()))


def load_pipeline(cfg: EditorConfig):
    """The pipeline ``cfg`` names: a tiny random build, or ``from_pretrained`` on a local folder."""
    if cfg.path == "tiny":
        from .tiny import build_tiny_pipeline

        pipe = build_tiny_pipeline(cfg.pipeline, seed=cfg.tiny_seed)
        if cfg.dtype != "float32":
            pipe.to(dtype=DTYPES[cfg.dtype])
    elif is_world_editor(cfg.path):
        from .world_editor import load_world_pipeline

        pipe = load_world_pipeline(cfg.path).to(dtype=DTYPES[cfg.dtype])
    else:
        import diffusers

        cls = getattr(diffusers, cfg.pipeline, None)
        if cls is None:
            raise ValueError(f"diffusers has no pipeline class {cfg.pipeline!r}")
        pipe = cls.from_pretrained(cfg.path, torch_dtype=DTYPES[cfg.dtype], use_safetensors=True, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
    return pipe.to(cfg.device)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pipeline ``output_type='np'`` images (floats in [0, 1]) as uint8, rounded."""
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


class DiffusersEditor:
    """Fills masks with a diffusers inpainting pipeline; pixels outside the mask are kept exactly."""

    def __init__(self, cfg: EditorConfig | None = None, pipe: Any = None):
        self.cfg = cfg or EditorConfig()
        self.pipe = pipe if pipe is not None else load_pipeline(self.cfg)
        self._accepts = set(inspect.signature(self.pipe.__call__).parameters)
        for needed in ("image", "mask_image"):
            if needed not in self._accepts:
                raise ValueError(f"{type(self.pipe).__name__} takes no {needed!r}: not a mask-inpainting pipeline")

    @property
    def multiple(self) -> int:
        """Side lengths the pipeline accepts are multiples of this (latent size x 2x2 packing)."""
        return int(getattr(self.pipe, "vae_scale_factor", 8)) * 2

    # --- the public edits --------------------------------------------------------------
    def inpaint(self, image: np.ndarray, mask: np.ndarray, prompt: str, seed: int | None = None) -> np.ndarray:
        """``image`` (HxWx3 uint8) with ``mask`` (HxW bool) filled from ``prompt``."""
        return self.inpaint_many(image, mask, prompt, seed, n=1)[0]

    def inpaint_many(
        self, image: np.ndarray, mask: np.ndarray, prompt: str, seed: int | None = None, n: int = 1
    ) -> np.ndarray:
        """``n`` fills of one request in one pipeline batch: (n, H, W, 3) uint8 (a GRPO group)."""
        check_image(image)
        check_mask(mask, image)
        filled = self.fill(image, mask, prompt, self.cfg.seed if seed is None else seed, n)  # (n, H, W, 3)
        return np.stack([paste_back(image, f, mask) for f in filled])

    def outpaint(self, image: np.ndarray, pad_px: int | tuple[int, int, int, int], prompt: str, seed: int | None = None) -> np.ndarray:
        """The scene extended by ``pad_px`` (int, or (top, bottom, left, right)) on each side;
        the original sits unchanged at offset (top, left)."""
        check_image(image)
        canvas, border = outpaint_canvas(image, as_pad(pad_px))
        return self.inpaint(canvas, border, prompt, seed)

    def apply_box(self, image: np.ndarray, edit: BoxEdit, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Carry out a box + description edit: (edited image, the mask it painted)."""
        mask, prompt = box_request(image.shape[:2], edit, self.cfg.background_prompt)
        return self.inpaint(image, mask, prompt, seed), mask

    # --- one pipeline call -------------------------------------------------------------
    def fill(self, image: np.ndarray, mask: np.ndarray, prompt: str, seed: int, n: int = 1) -> np.ndarray:
        """The pipeline's raw fills at the input size, before paste-back: (n, H, W, 3) uint8."""
        h, w = image.shape[:2]
        if self.cfg.work_size:
            scale = self.cfg.work_size / max(h, w)
            wh = tuple(max(self.multiple, round(s * scale / self.multiple) * self.multiple) for s in (w, h))
            run_img = np.asarray(Image.fromarray(image).resize(wh, Image.BICUBIC))
            # a mask pixel counts if any of it was masked: the fill never falls short of the mask
            run_mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(wh, Image.BILINEAR)) > 0
            pad = (0, 0, 0, 0)
        else:
            pad = pad_to_multiple(h, w, self.multiple)
            run_img, run_mask = pad_image(image, pad), pad_mask(mask, pad, False)
        out = self._call(run_img, run_mask, prompt, seed, n)  # (n, h', w', 3)
        if self.cfg.work_size:
            return np.stack([np.asarray(Image.fromarray(o).resize((w, h), Image.BICUBIC)) for o in out])
        return np.stack([crop(o, pad) for o in out])

    def _call(self, image: np.ndarray, mask: np.ndarray, prompt: str, seed: int, n: int) -> np.ndarray:
        h, w = image.shape[:2]
        kwargs: dict[str, Any] = dict(
            prompt=prompt, image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
            height=h, width=w, num_inference_steps=self.cfg.steps, num_images_per_prompt=n, output_type="np",
            # a CPU generator gives the same noise on any device: same seed, same bytes
            generator=torch.Generator("cpu").manual_seed(seed),
        )
        optional = {"guidance_scale": self.cfg.guidance, "strength": self.cfg.strength,
                    "true_cfg_scale": self.cfg.true_cfg_scale, "max_sequence_length": self.cfg.max_sequence_length}
        kwargs.update({k: v for k, v in optional.items() if v is not None and k in self._accepts})
        with small_image_sizes(self.pipe, h, w):
            images = self.pipe(**kwargs).images  # (n, h, w, 3) floats in [0, 1]
        return to_uint8(np.asarray(images))
