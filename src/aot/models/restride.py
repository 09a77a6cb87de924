"""Finer visual cells for a trained ``aot_vlm`` defender, keeping its weights.

The born defender sees one visual token per 16-pixel cell (four stride-2 conv stages). On
complex scenes several small objects share a cell, which caps what any training can teach it
(docs/study-headroom-2026-12-02.md). Setting a stage's stride to 1 halves the cell side while
every weight keeps its shape, so the trained encoder is a warm start for 8-pixel cells: the
convolutions see the same local patterns, only sampled more densely. The processor is rebuilt
with the matching patch layout (``merge_size`` 1), so the number of image placeholders per image
equals the number of cells the encoder now produces.
"""

from __future__ import annotations

import math
from typing import Sequence

from .defender import Defender


def restride(defender: Defender, strides: Sequence[int]) -> Defender:
    """A copy of ``defender`` whose vision stages use ``strides`` (each 1 or 2); same weights.

    The cell side becomes ``prod(strides)``; the processor keeps its 8-pixel patches and merges
    ``cell / 8`` of them per side (1 for 8-pixel cells)."""
    from transformers import AutoModelForImageTextToText

    from .aot_vlm import AotVlmConfig, register
    from .registry import build_processor

    if defender.arch != "aot_vlm":
        raise ValueError(f"restride: only aot_vlm defenders have strided vision stages, not {defender.arch!r}")
    register()
    old = defender.model.config
    strides = [int(s) for s in strides]
    cell = math.prod(strides)
    if cell % old.patch_size:
        raise ValueError(f"restride: a {cell}-pixel cell is not a whole number of {old.patch_size}-pixel patches")
    cfg = AotVlmConfig(**(old.to_dict() | {"vision_strides": strides, "spatial_merge_size": cell // old.patch_size}))
    model = AutoModelForImageTextToText.from_config(cfg)
    missing, unexpected = model.load_state_dict(defender.model.state_dict(), strict=False)
    if unexpected or any(not k.endswith("lm_head.weight") for k in missing):  # lm_head is tied
        raise ValueError(f"restride: weights do not carry over (missing {missing}, unexpected {unexpected})")
    model.tie_weights()
    model.generation_config = defender.model.generation_config
    ip_old = defender.processor.image_processor
    ip = type(ip_old)(**(ip_old.to_dict() | {"merge_size": cell // old.patch_size, "min_pixels": cell * cell}))
    proc = build_processor("aot_vlm", defender.processor.tokenizer, ip)
    model.eval()
    return Defender(model, proc, "aot_vlm")
