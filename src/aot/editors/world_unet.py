"""A pixel-space diffusers UNet behind the Flux transformer's interface (the world editor's backbone).

Why a UNet: a world fill is almost a function of (box, description): the object sits at the
box's centre at the described size, so the editor must draw a 7-20 pixel shape with the
renderer's exact edges and shading. A 128-wide Flux transformer over 8x8-pixel tokens draws it
blurred and blocky (16.6% of simple-scene fills read as described after 4,000 steps,
docs/diffusion-attacker.md); a convolutional UNet at full resolution has the right prior for
shapes at a place and costs about as much a step on two cores.

``UNetFillTransformer`` takes exactly what ``FluxFillPipeline`` hands its transformer
(``hidden_states`` = [packed noisy latents | packed masked-image latents | packed mask],
``timestep`` = sigma, ``pooled_projections``, ``encoder_hidden_states``, ``img_ids``), unpacks
them to pixels, cuts a window around the mask (``crop_windows``: 32x32 for a world object), adds
the box's coordinates (``box_coords``), runs a ``UNet2DConditionModel`` (the pooled CLIP vector
and every T5 token in the class embedding, cross-attention to the T5 tokens in the middle block)
that predicts the clean pixels inside the mask, and packs the prediction back (outside the mask
it is the masked image itself). So the pipeline, ``DiffusersEditor`` and Flow-GRPO's recorder run
it unchanged, and LoRA finds ``to_q``/``to_k``/``to_v``/``to_out.0`` and the resnets' ``conv1``
/ ``conv2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin

from .world_editor import x0_velocity



def unpack(tokens: torch.Tensor, channels: int, h: int, w: int) -> torch.Tensor:
    """Flux's 2x2 packing undone: [B, (h/2)(w/2), 4 C] -> [B, C, h, w] (``_unpack_latents``' layout)."""
    b = tokens.shape[0]
    x = tokens.view(b, h // 2, w // 2, channels, 2, 2)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, channels, h, w)


def pack(x: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, (h/2)(w/2), 4 C] (``_pack_latents``' layout)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def mask_spans(mask: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(B, 1, H, W) mask -> ((first row, last row), (first column, last column)) of each image's
    masked pixels, each [B] int64, and [B] bool "nothing masked" (whose spans are the whole canvas)."""
    _, _, h, w = mask.shape
    on = mask[:, 0] > 0.5  # (B, H, W)

    def span(hit: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:  # hit: (B, n)
        at = torch.arange(n)
        lo, hi = torch.where(hit, at, n).amin(1), torch.where(hit, at, -1).amax(1)
        empty = ~hit.any(1)
        return torch.where(empty, 0, lo), torch.where(empty, n - 1, hi)

    return span(on.any(2), h), span(on.any(1), w), ~on.flatten(1).any(1)


BOX_COORDS = ("dx_px", "dy_px", "dx_rel", "dy_rel")
"""Input channels computed from the mask: each pixel's offset from the centre of the mask's
bounding box, in units of 8 pixels and in units of the box's half-width / half-height."""


def box_coords(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask in [0, 1] -> (B, 4, H, W) offsets from its bounding box's centre (``BOX_COORDS``).

    Why: a world fill is a shape at the box's centre (the box is the object's, grown by a pixel),
    and a shape is a simple function of these offsets (a circle: dx^2 + dy^2 < r^2, a diamond:
    |dx| + |dy| < r). A conv net has to rebuild them from the mask's edges before it can draw;
    given them (as CoordConv gives coordinates), it learns the shape words instead of drawing
    every object as the average blob. An empty mask gives zeros."""
    b, _, h, w = mask.shape
    (y_lo, y_hi), (x_lo, x_hi), empty = mask_spans(mask)
    ys, xs = torch.arange(h, dtype=mask.dtype), torch.arange(w, dtype=mask.dtype)
    cy, hy = (y_lo + y_hi).to(mask.dtype) / 2, (y_hi - y_lo + 1).to(mask.dtype) / 2  # centre, half-size in pixels: (B,)
    cx, hx = (x_lo + x_hi).to(mask.dtype) / 2, (x_hi - x_lo + 1).to(mask.dtype) / 2
    dx = xs.view(1, 1, w) - cx.view(b, 1, 1)  # (B, 1, W)
    dy = ys.view(1, h, 1) - cy.view(b, 1, 1)  # (B, H, 1)
    dx, dy = dx.expand(b, h, w), dy.expand(b, h, w)
    out = torch.stack([dx / 8, dy / 8, dx / hx.clamp_min(1).view(b, 1, 1), dy / hy.clamp_min(1).view(b, 1, 1)], 1)  # (B, 4, H, W)
    return out * (~empty).to(out.dtype).view(b, 1, 1, 1)


def crop_windows(mask: torch.Tensor, side: int, multiple: int) -> tuple[tuple[list[int], list[int]], tuple[int, int]]:
    """Per image the top-left corner of a window centred on its mask's bounding box, and the
    batch's window size (sy, sx): at least ``side``, large enough for every image's box plus
    ``multiple`` pixels a side, a multiple of ``multiple``, at most the canvas; corners clamped
    inside the canvas. Why: a fill needs only its surroundings, and a 32x32 window costs a
    ninth of a 96x96 canvas, in training and sampling alike (the UNet never sees the rest)."""
    b, _, h, w = mask.shape
    (ry0, ry1), (rx0, rx1), _ = mask_spans(mask)
    ry0, ry1, rx0, rx1 = ry0.tolist(), ry1.tolist(), rx0.tolist(), rx1.tolist()

    def size(lo: list[int], hi: list[int], n: int) -> int:
        need = max(side, max(b_ - a_ + 1 for a_, b_ in zip(lo, hi)) + 2 * multiple)
        return min(n, -(-need // multiple) * multiple)

    sy, sx = size(ry0, ry1, h), size(rx0, rx1, w)
    y0 = [min(max(0, (a_ + b_ + 1) // 2 - sy // 2), h - sy) for a_, b_ in zip(ry0, ry1)]
    x0 = [min(max(0, (a_ + b_ + 1) // 2 - sx // 2), w - sx) for a_, b_ in zip(rx0, rx1)]
    return (y0, x0), (sy, sx)


class UNetFillTransformer(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """A diffusers ``UNet2DConditionModel`` that speaks ``FluxTransformer2DModel``'s call (and
    takes PEFT adapters as it does: ``add_adapter``, ``disable_adapters``)."""

    @register_to_config
    def __init__(self, factor: int = 4, channels: tuple[int, ...] = (64, 128, 128), layers_per_block: int = 1,
                 attention_head_dim: int = 16, text_dim: int = 64, pooled_dim: int = 32, fold: int = 2,
                 attn_levels: int = 0, text_tokens: int = 8, crop: int = 32, guidance_embeds: bool = False):
        super().__init__()
        from diffusers import UNet2DConditionModel

        lc = 3 * factor * factor
        self.in_channels, self.out_channels = 4 * lc + 4 * lc + 4 * factor * factor, 4 * lc  # as the Flux transformer's
        n = len(channels)
        self.unet = UNet2DConditionModel(
            # noisy image, masked image, mask -> clean image, each folded by ``fold`` (2: a 96x96 scene is a
            # 48x48 grid of 2x2-pixel cells, a quarter of the full-resolution cost)
            sample_size=64 // fold, in_channels=(7 + len(BOX_COORDS)) * fold * fold, out_channels=3 * fold * fold,
            block_out_channels=tuple(channels), layers_per_block=layers_per_block,
            # self-attention over a 48x48 grid costs 20 s a step on two cores: attention only in the
            # last ``attn_levels`` levels and the middle block (12x12 on a complex scene)
            down_block_types=("DownBlock2D",) * (n - attn_levels) + ("CrossAttnDownBlock2D",) * attn_levels,
            up_block_types=("CrossAttnUpBlock2D",) * attn_levels + ("UpBlock2D",) * (n - attn_levels),
            mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=text_dim, attention_head_dim=attention_head_dim,
            # the class embedding sees the pooled CLIP vector and every T5 token side by side: a world
            # description has its words in fixed places (size, colour, material, shape), so each
            # attribute reaches every block through its own weights, not through an attention average
            # (with the pooled vector alone the fills took the colour but ignored the shape word)
            norm_num_groups=8, class_embed_type="projection", projection_class_embeddings_input_dim=pooled_dim + text_tokens * text_dim,
            resnet_time_scale_shift="scale_shift",  # the time + description vector scales and shifts every block
        )

    def predict_x0(self, hidden_states: torch.Tensor, timestep: torch.Tensor, pooled_projections: torch.Tensor,
                   encoder_hidden_states: torch.Tensor, img_ids: torch.Tensor, **_) -> torch.Tensor:
        """[B, L, 4 lc] packed clean latents from the pipeline's inputs."""
        f = self.config.factor
        lc = 3 * f * f
        h, w = 2 * (int(img_ids[:, 1].max()) + 1), 2 * (int(img_ids[:, 2].max()) + 1)  # latent grid
        xs = F.pixel_shuffle(unpack(hidden_states[..., : 4 * lc], lc, h, w), f)  # (B, 3, H, W)
        masked = F.pixel_shuffle(unpack(hidden_states[..., 4 * lc: 8 * lc], lc, h, w), f)  # (B, 3, H, W)
        mask = F.pixel_shuffle(unpack(hidden_states[..., 8 * lc:], f * f, h, w), f)  # (B, 1, H, W)
        t = timestep.reshape(-1).expand(xs.shape[0]) * 1000  # sinusoidal embeddings want the 0..1000 scale
        windows = crop_windows(mask, self.config.crop, self.config.fold * 2 ** (len(self.config.channels) - 1))
        (y0, x0_), (sy, sx) = windows[0], windows[1]
        cut = lambda z: torch.stack([z[i, :, a: a + sy, b: b + sx] for i, (a, b) in enumerate(zip(y0, x0_))])  # noqa: E731
        xs_c, masked_c, mask_c = cut(xs), cut(masked), cut(mask)  # (B, C, sy, sx)
        g = self.config.fold
        x = F.pixel_unshuffle(torch.cat([xs_c, masked_c, mask_c, box_coords(mask_c).to(xs.dtype)], 1), g)  # (B, 11 g^2, sy/g, sx/g)
        words = F.pad(encoder_hidden_states, (0, 0, 0, self.config.text_tokens - encoder_hidden_states.shape[1]))  # (B, T, D)
        cond = torch.cat([pooled_projections, words.flatten(1)], 1)  # (B, P + T D)
        out = self.unet(x, t, encoder_hidden_states=encoder_hidden_states, class_labels=cond,
                        return_dict=False)[0]  # (B, 3 g^2, sy/g, sx/g)
        # outside the mask the clean image is known: predict only the masked pixels, so no capacity
        # goes into copying the scene through the noise (it is pasted back at use anyway); the
        # window holds the whole mask, so outside it the masked image is the clean image
        painted = masked_c * (1 - mask_c) + F.pixel_shuffle(out, g) * mask_c  # (B, 3, sy, sx)
        x0 = masked.clone()
        for i, (a, b) in enumerate(zip(y0, x0_)):
            x0[i, :, a: a + sy, b: b + sx] = painted[i]
        return pack(F.pixel_unshuffle(x0, f))

    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor, return_dict: bool = True, **kwargs):
        """The velocity ``(x_s - x0) / sigma`` diffusers' flow-matching sampler expects."""
        v = x0_velocity(hidden_states, self.predict_x0(hidden_states, timestep=timestep, **kwargs), timestep)
        return Transformer2DModelOutput(sample=v) if return_dict else (v,)
