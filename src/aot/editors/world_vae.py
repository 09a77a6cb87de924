"""A fixed, exact "autoencoder" for pixel-space flow matching: space-to-depth and back.

The born world editor runs a diffusers flow-matching pipeline (``FluxFillPipeline``) whose
``vae`` slot holds this module instead of a learned AutoencoderKL. Encoding folds each
``factor x factor`` pixel block into channels ((B, 3, H, W) in [-1, 1] -> (B, 3 f^2, H/f, W/f));
decoding unfolds it. Why: a learned VAE would need its own training (minutes to hours on two
cores) and would blur the 7-14 pixel objects of the world; this one costs nothing, loses
nothing (decode(encode(x)) == x exactly) and has no weights to ship. With Flux's 2x2 packing a
token covers a (2 f) x (2 f) pixel block: 8x8 at the default f = 4, so a 96x96 scene is 144
tokens.

The pipeline reads ``config.block_out_channels`` (its length sets ``vae_scale_factor =
2 ** (len - 1)``), ``config.latent_channels``, ``config.scaling_factor`` and
``config.shift_factor``; ``encode`` returns an object with ``.latents`` (diffusers'
``retrieve_latents`` takes that branch).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class Encoded(NamedTuple):
    latents: torch.Tensor
    """(B, 3 f^2, H/f, W/f)."""


class Decoded(NamedTuple):
    sample: torch.Tensor
    """(B, 3, H, W)."""


class PixelShuffleVAE(ModelMixin, ConfigMixin):
    """Exact space-to-depth autoencoder with the AutoencoderKL interface a Flux pipeline uses."""

    @register_to_config
    def __init__(self, factor: int = 4, block_out_channels: tuple[int, ...] = (3, 3, 3), latent_channels: int = 48,
                 scaling_factor: float = 1.0, shift_factor: float = 0.0):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of two (the pipeline derives it from block_out_channels), got {factor}")
        if 2 ** (len(block_out_channels) - 1) != factor or latent_channels != 3 * factor * factor:
            raise ValueError(f"factor {factor} needs {factor.bit_length()} block_out_channels and latent_channels {3 * factor * factor}")
        # a buffer gives the module a dtype and device (pipelines ask for them); it is never used
        self.register_buffer("anchor", torch.zeros(1), persistent=False)

    @staticmethod
    def channels(factor: int) -> dict:
        """The config entries that describe ``factor``: ``PixelShuffleVAE(**PixelShuffleVAE.channels(4))``."""
        return {"factor": factor, "block_out_channels": (3,) * (factor.bit_length()), "latent_channels": 3 * factor * factor}

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> Encoded:
        z = F.pixel_unshuffle(x, self.config.factor)  # (B, 3, H, W) -> (B, 3 f^2, H/f, W/f)
        return Encoded(z)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        x = F.pixel_shuffle(z, self.config.factor)  # (B, 3 f^2, h, w) -> (B, 3, h f, w f)
        return Decoded(x) if return_dict else (x,)
