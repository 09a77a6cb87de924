"""Rollouts that share their prompt's prefill.

TRL repeats every prompt ``num_generations`` times in the batch it hands to ``generate``, so the
image of each prompt is encoded, and its prompt prefilled, once per rollout. The rows of one
prompt are identical (contiguous groups of G), so the trainer can generate from one row per
group with ``Defender.generate_ids(..., num_return_sequences=G)``: the prompt (image encoder
included) is run once and its KV cache repeated G times, with rows ordered as TRL expects
(prompt j's rollouts at rows j*G .. j*G+G-1). Each rollout is drawn from the same
distribution; a fixed seed gives other draws than the repeated batch.
"""

from __future__ import annotations

from typing import Any

import torch


def _groups_equal(x: torch.Tensor, g: int) -> bool:
    """x: (N, ...) with N = groups * g; True when the rows of each group are identical."""
    v = x.reshape(x.shape[0] // g, g, -1)
    return bool(torch.equal(v, v[:, :1].expand_as(v)))


def unique_prompts(inputs: dict[str, torch.Tensor], g: int) -> dict[str, torch.Tensor] | None:
    """The first row of every contiguous group of ``g`` identical prompts (images included), or
    None when the batch is not made of such groups (or has a layout this does not know).
    ``inputs`` holds the model inputs only (tensors with one row per prompt, and the images).

    Handles one image per row, with ``pixel_values`` either flattened patches sized by
    ``image_grid_thw`` (Qwen2-VL family, ``aot_vlm``) or one row per image."""
    ids = inputs.get("input_ids")
    if g < 2 or ids is None or ids.ndim != 2 or ids.shape[0] % g or "inputs_embeds" in inputs:
        return None
    n = ids.shape[0]
    out: dict[str, Any] = {}
    for k, v in inputs.items():
        if k in ("pixel_values", "image_grid_thw"):
            continue
        if not isinstance(v, torch.Tensor) or v.ndim == 0 or v.shape[0] != n or not _groups_equal(v, g):
            return None
        out[k] = v[::g]
    pv = inputs.get("pixel_values")
    if pv is None:
        return out
    grid = inputs.get("image_grid_thw")
    if grid is not None:
        if grid.shape[0] != n or not _groups_equal(grid, g):
            return None
        chunks = list(torch.split(pv, grid.prod(-1).tolist(), dim=0))  # one (patches, D) per image
        for j in range(0, n, g):
            if any(not torch.equal(chunks[j], chunks[j + i]) for i in range(1, g)):
                return None
        out["pixel_values"] = torch.cat(chunks[::g], dim=0)
        out["image_grid_thw"] = grid[::g]
        return out
    if pv.shape[0] != n or not _groups_equal(pv, g):
        return None
    out["pixel_values"] = pv[::g]
    return out
