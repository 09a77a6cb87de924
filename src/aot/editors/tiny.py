"""Tiny random-weight inpainting pipelines built from configs, with tokenizers made here.

Nothing is downloaded: every component is a diffusers or transformers class built from a small
config, seeded, and the tokenizers are character-level vocabularies written in this file (a
word is spelled letter by letter, so different prompts give different token ids and the
pipeline's output depends on the prompt). Tests, the demo-scale experiments and the GPU
script's smoke run use these; a real run passes a local path instead.

One inpaint at 64x64, 4 steps, one thread (measured while another job ran): FluxFill and
FluxInpaint about 0.03 s, SD inpaint about 0.07 s, QwenImageEditInpaint about 0.06 s (with
``aot.editors.qwen_size`` keeping it at 64x64).
"""

from __future__ import annotations

import string
from typing import Any, Callable

import torch

CHARS = string.ascii_lowercase + string.digits + ".,'-!?()"
"""The characters the tiny tokenizers know; anything else becomes the unknown token."""


def clip_tokenizer(max_length: int = 32):
    """A CLIP BPE tokenizer with one token per character (and per word-final character).

    CLIP's BPE marks the last piece of a word with ``</w>``; a vocab without those entries
    maps every word to the unknown token, so both forms of each character are listed.
    """
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def t5_tokenizer(max_length: int = 32):
    """A T5 unigram tokenizer with one piece per character (``▁`` marks a word start)."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in CHARS] + [("▁" + c, -3.0) for c in CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def _clip_text_encoder(vocab_size: int, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, projection_dim=hidden, max_position_embeddings=77,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )
    return CLIPTextModel(cfg).eval()


def _t5_encoder(vocab_size: int, hidden: int = 32):
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=vocab_size, d_model=hidden, d_kv=8, d_ff=2 * hidden, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return T5EncoderModel(cfg).eval()


def _vae(latent_channels: int = 4, blocks: int = 2, shift_factor: float | None = None):
    """An AutoencoderKL that downsamples by ``2 ** (blocks - 1)`` (the pipelines' vae_scale_factor).

    Flux pipelines read ``shift_factor`` from the config (SD ones do not), so they pass 0.
    """
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8, 16)[:blocks], layers_per_block=1, norm_num_groups=4, sample_size=64,
        scaling_factor=1.0, shift_factor=shift_factor,
    ).eval()


def _flux_parts(in_channels: int, out_channels: int, latent_channels: int, guidance_embeds: bool) -> dict[str, Any]:
    """Components shared by the Flux pipelines: two text encoders, a VAE, a 2-block transformer,
    and FLUX.1's scheduler settings (resolution-dependent shift)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    tok, tok2 = clip_tokenizer(), t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=in_channels, out_channels=out_channels, num_layers=1, num_single_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
        guidance_embeds=guidance_embeds, axes_dims_rope=[4, 4, 8],
    ).eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(
            shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
            base_image_seq_len=256, max_image_seq_len=4096,
        ),
        "text_encoder": _clip_text_encoder(len(tok)), "tokenizer": tok,
        "text_encoder_2": _t5_encoder(len(tok2)), "tokenizer_2": tok2,
        "vae": _vae(latent_channels, shift_factor=0.0), "transformer": transformer,
    }


def _flux_fill():
    from diffusers import FluxFillPipeline

    lc, scale = 4, 2  # latent channels; vae_scale_factor of a 2-block VAE
    # the transformer reads [packed latents (4 lc) | packed masked-image latents (4 lc) | packed
    # mask (4 scale^2)] and predicts the packed velocity (4 lc)
    # guidance-distilled like FLUX.1-Fill-dev: guidance_scale enters as an embedding, one call a step
    return FluxFillPipeline(**_flux_parts(4 * lc + 4 * lc + 4 * scale * scale, 4 * lc, lc, guidance_embeds=True))


def _flux_inpaint():
    from diffusers import FluxInpaintPipeline

    lc = 4
    return FluxInpaintPipeline(**_flux_parts(4 * lc, 4 * lc, lc, guidance_embeds=False))


def _sd_inpaint():
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    tok = clip_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    ).eval()
    return StableDiffusionInpaintPipeline(
        vae=_vae(4), text_encoder=_clip_text_encoder(len(tok)), tokenizer=tok, unet=unet,
        scheduler=DDIMScheduler(steps_offset=1), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]


def byte_alphabet() -> list[str]:
    """The 256 characters byte-level BPE writes bytes as (GPT-2's table): printable bytes as
    themselves, the rest shifted above 255."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(shifted))]


def qwen_tokenizer():
    """A Qwen2 byte-level BPE tokenizer with one token per byte and Qwen's chat/vision specials
    (the Qwen-Image prompt templates use them)."""
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer(vocab={t: i for i, t in enumerate(QWEN_SPECIALS + byte_alphabet())}, merges=[])
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    return tok


def _qwen_text_encoder(tok, hidden: int = 16):
    """A 2-layer Qwen2.5-VL (the Qwen-Image text encoder) with an 8-pixel-patch vision tower."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = tok.convert_tokens_to_ids
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
        ),
        vision_config=dict(
            depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=hidden, patch_size=8,
            spatial_merge_size=2, temporal_patch_size=2, window_size=1024, fullatt_block_indexes=[0],
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(cfg).eval()


def _qwen_parts(tok, z: int = 4) -> dict[str, Any]:
    """VAE (scale factor 2), 1-block transformer and scheduler of the Qwen-Image pipelines."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    vae = AutoencoderKLQwenImage(
        base_dim=2 * z, z_dim=z, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
        latents_mean=[0.0] * z, latents_std=[1.0] * z,
    ).eval()
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=4 * z, out_channels=z, num_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    ).eval()
    return {"vae": vae, "transformer": transformer, "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": _qwen_text_encoder(tok), "tokenizer": tok}


def _qwen_edit_inpaint():
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from diffusers import QwenImageEditInpaintPipeline

    from ..models.registry import _allow_none_processor_args

    tok = qwen_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=16 * 16, max_pixels=128 * 128,
    )
    _allow_none_processor_args()  # no torchvision: no video processor (ENVIRONMENT.md)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=None)
    return drop_system_prompt(QwenImageEditInpaintPipeline(processor=processor, **_qwen_parts(tok)))


def _qwen_inpaint():
    from diffusers import QwenImageInpaintPipeline

    return drop_system_prompt(QwenImageInpaintPipeline(**_qwen_parts(qwen_tokenizer())))


def drop_system_prompt(pipe):
    """Qwen-Image pipelines drop a fixed count of leading prompt tokens (the template's system
    part: 34 or 64 tokens of the real tokenizer). Our byte-level tokenizer spells the same text
    in more tokens, so the count is recomputed; otherwise the kept tokens are system text and
    the user's prompt falls past the length limit."""
    template = pipe.prompt_template_encode
    system = template[: template.index("<|im_start|>user\n") + len("<|im_start|>user\n")]
    pipe.prompt_template_encode_start_idx = len(pipe.tokenizer(system).input_ids)
    return pipe


TINY_BUILDERS: dict[str, Callable[[], Any]] = {
    "FluxFillPipeline": _flux_fill,
    "FluxInpaintPipeline": _flux_inpaint,
    "StableDiffusionInpaintPipeline": _sd_inpaint,
    "QwenImageInpaintPipeline": _qwen_inpaint,
    "QwenImageEditInpaintPipeline": _qwen_edit_inpaint,
}
"""Pipeline class name -> builder of a tiny random-weight instance."""


def build_tiny_pipeline(name: str, seed: int = 0):
    """A tiny random-weight ``name`` pipeline (e.g. ``"FluxFillPipeline"``); same seed, same weights."""
    if name not in TINY_BUILDERS:
        raise ValueError(f"no tiny build for pipeline {name!r}; choose one of {sorted(TINY_BUILDERS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = TINY_BUILDERS[name]()
    pipe.set_progress_bar_config(disable=True)
    return pipe
