"""Built-in tiny vision-language models, built from ``transformers`` configs (random init).

``build_tiny(name)`` returns ``(model, processor)``: a stock ``transformers`` architecture
(Qwen2.5-VL by default; LLaVA and Idefics3 selectable) sized for 2 CPU cores, with the
world tokenizer (``tokenizer.py``) and a processor built around the known snags
(``../shared/ENVIRONMENT.md``): no torchvision, so PIL image processors and no video
processor; processors that cannot ``save_pretrained`` are saved part by part
(``save_processor`` / ``load_processor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .tokenizer import build_tokenizer


@dataclass(frozen=True)
class TinySpec:
    """Sizes of one built-in tiny model."""

    arch: str
    """Architecture family: 'qwen2_5_vl', 'llava', 'idefics3' or 'aot_vlm' (ours, ``aot_vlm.py``)."""
    text_hidden: int = 192
    text_layers: int = 4
    text_heads: int = 6
    text_intermediate: int = 512
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 384
    patch_size: int = 8
    """Pixels per side of one vision patch."""
    merge: int = 2
    """Spatial merge factor (Qwen merger / Idefics3 pixel shuffle); LLaVA does not merge."""
    image_size: int = 64
    """Input side in pixels (LLaVA and Idefics3 resize to it; Qwen keeps the native size)."""
    extra: dict[str, Any] = field(default_factory=dict)


TINY_MODELS: dict[str, TinySpec] = {
    "tiny-qwen2.5-vl": TinySpec(arch="qwen2_5_vl"),
    "tiny-llava": TinySpec(arch="llava"),
    "tiny-idefics3": TinySpec(arch="idefics3"),
    "tiny-aot-vlm": TinySpec(arch="aot_vlm"),
}
DEFAULT_TINY = "tiny-qwen2.5-vl"


def _text_kwargs(s: TinySpec, tok) -> dict[str, Any]:
    return dict(
        vocab_size=len(tok),
        hidden_size=s.text_hidden,
        intermediate_size=s.text_intermediate,
        num_hidden_layers=s.text_layers,
        num_attention_heads=s.text_heads,
        num_key_value_heads=s.text_heads,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )


def tiny_config(spec: TinySpec, tok):
    """The ``transformers`` config of a tiny spec, token ids taken from ``tok``."""
    ids = tok.convert_tokens_to_ids
    if spec.arch == "aot_vlm":
        from .aot_vlm import AotVlmConfig

        text = _text_kwargs(spec, tok)
        text.pop("num_key_value_heads")  # aot_vlm has no grouped-query attention
        return AotVlmConfig(
            **text,
            patch_size=spec.patch_size,
            spatial_merge_size=spec.merge,
            image_token_id=ids("<|image_pad|>"),
            prefix_end_token_id=ids("<|im_start|>"),
            **spec.extra,
        )
    if spec.arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        head_dim = spec.text_hidden // spec.text_heads
        half = head_dim // 2
        hw = (half - half // 4) // 2
        mrope = [half - 2 * hw, hw, hw]  # temporal, height, width halves of the rotary dims
        text = _text_kwargs(spec, tok) | dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope})
        vision = dict(
            depth=spec.vision_layers,
            hidden_size=spec.vision_hidden,
            intermediate_size=spec.vision_intermediate,
            num_heads=spec.vision_heads,
            patch_size=spec.patch_size,
            spatial_merge_size=spec.merge,
            temporal_patch_size=2,
            out_hidden_size=spec.text_hidden,
            window_size=spec.patch_size * spec.merge * 64,  # one window covers any of our images
            fullatt_block_indexes=list(range(spec.vision_layers)),
        )
        return Qwen2_5_VLConfig(
            text_config=text,
            vision_config=vision,
            image_token_id=ids("<|image_pad|>"),
            video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"),
            vision_end_token_id=ids("<|vision_end|>"),
            tie_word_embeddings=True,
        )
    if spec.arch == "llava":
        from transformers import LlavaConfig

        vision = dict(
            model_type="clip_vision_model",
            hidden_size=spec.vision_hidden,
            intermediate_size=spec.vision_intermediate,
            num_hidden_layers=spec.vision_layers,
            num_attention_heads=spec.vision_heads,
            patch_size=spec.patch_size,
            image_size=spec.image_size,
            projection_dim=spec.vision_hidden,
        )
        text = _text_kwargs(spec, tok) | dict(model_type="llama")
        return LlavaConfig(
            vision_config=vision,
            text_config=text,
            image_token_index=ids("<image>"),
            image_seq_length=(spec.image_size // spec.patch_size) ** 2,
            vision_feature_select_strategy="default",
            vision_feature_layer=-1,
            tie_word_embeddings=True,
        )
    if spec.arch == "idefics3":
        from transformers import Idefics3Config

        vision = dict(
            hidden_size=spec.vision_hidden,
            intermediate_size=spec.vision_intermediate,
            num_hidden_layers=spec.vision_layers,
            num_attention_heads=spec.vision_heads,
            patch_size=spec.patch_size,
            image_size=spec.image_size,
        )
        text = _text_kwargs(spec, tok) | dict(model_type="llama")
        return Idefics3Config(
            vision_config=vision,
            text_config=text,
            image_token_id=ids("<image>"),
            scale_factor=spec.merge,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
    raise ValueError(f"unknown tiny architecture {spec.arch!r}; choose from qwen2_5_vl, llava, idefics3, aot_vlm")


# --- processors -----------------------------------------------------------------------------
def _allow_none_processor_args() -> None:
    """Snag: without torchvision, ``check_argument_for_proper_class`` trips on the missing
    video processor (``VIDEO_PROCESSOR_MAPPING has no attribute '_extra_content'``); let it
    skip ``None`` arguments."""
    from transformers import processing_utils

    cls = processing_utils.ProcessorMixin
    if getattr(cls, "_aot_none_ok", False):
        return
    orig = cls.check_argument_for_proper_class

    def check(self, argument_name, argument):
        if argument is None:
            return None
        return orig(self, argument_name, argument)

    cls.check_argument_for_proper_class = check
    cls._aot_none_ok = True


def image_processor_for(spec: TinySpec):
    if spec.arch in ("qwen2_5_vl", "aot_vlm"):  # aot_vlm takes the Qwen2-VL patch layout
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        unit = spec.patch_size * spec.merge
        return Qwen2VLImageProcessorPil(
            patch_size=spec.patch_size,
            merge_size=spec.merge,
            temporal_patch_size=2,
            min_pixels=unit * unit,
            max_pixels=128 * 128,
        )
    if spec.arch == "llava":
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        n = spec.image_size
        return CLIPImageProcessorPil(size={"height": n, "width": n}, crop_size={"height": n, "width": n}, do_center_crop=False)
    if spec.arch == "idefics3":
        from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

        n = spec.image_size
        return Idefics3ImageProcessorPil(
            do_image_splitting=False,
            size={"longest_edge": n},
            max_image_size={"longest_edge": n},
        )
    raise ValueError(spec.arch)


def build_processor(arch: str, tokenizer, image_processor, spec: TinySpec | None = None):
    """The architecture's processor from its parts, around the snags."""
    if arch == "aot_vlm":  # no video slot: saves and loads whole (``AotVlmProcessor``)
        from .aot_vlm import AotVlmProcessor

        return AotVlmProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    _allow_none_processor_args()
    if arch in ("qwen2_5_vl", "qwen2_vl"):
        from transformers import Qwen2_5_VLProcessor

        return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=tokenizer.chat_template)
    if arch == "llava":
        from transformers import LlavaProcessor

        patch = spec.patch_size if spec else image_processor.patch_size_for_llava
        return LlavaProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=patch,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
            chat_template=tokenizer.chat_template,
        )
    if arch == "idefics3":
        from transformers import Idefics3Processor

        n_tokens = ((spec.image_size // spec.patch_size) // spec.merge) ** 2 if spec else 16
        return Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=n_tokens, chat_template=tokenizer.chat_template)
    raise ValueError(f"no processor recipe for architecture {arch!r}")


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid*grid, dim) 2-D sine-cosine position codes (MAE style), row-major."""
    from .aot_vlm import sincos_grid

    return sincos_grid(grid, grid, dim, base=10000.0)


def init_vision_positions(model, spec: TinySpec) -> None:
    """Start learned absolute position embeddings (SigLIP, CLIP) from 2-D sine-cosine codes:
    neighbouring patches start similar, so attention can be local from the first step (a
    random table makes a ViT learn locality first, which made shapes slow to learn)."""
    grid = spec.image_size // spec.patch_size
    for name, mod in model.named_modules():
        if name.endswith("embeddings") and hasattr(mod, "position_embedding"):
            w = mod.position_embedding.weight
            with torch.no_grad():
                code = sincos_2d(grid, w.shape[1])
                w[-grid * grid :] = code  # CLIP keeps its class token's row first
            return


def build_tiny(name: str = DEFAULT_TINY, seed: int = 0, tokenizer=None):
    """A randomly initialised tiny model and its processor: ``(model, processor)``."""
    if name not in TINY_MODELS:
        raise ValueError(f"unknown tiny model {name!r}; choose from {sorted(TINY_MODELS)}")
    from transformers import AutoModelForImageTextToText

    from .aot_vlm import register

    register()
    spec = TINY_MODELS[name]
    tok = tokenizer or build_tokenizer(spec.arch)
    config = tiny_config(spec, tok)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    init_vision_positions(model, spec)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    processor = build_processor(spec.arch, tok, image_processor_for(spec), spec)
    if spec.arch == "llava":
        processor.patch_size = spec.patch_size
    return model, processor
