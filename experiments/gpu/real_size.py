"""One AOT iteration's pieces at real size on one CUDA GPU: peak memory and throughput.

    python experiments/gpu/real_size.py                       # random weights, full-size configs
    python experiments/gpu/real_size.py --defender /models/Qwen2.5-VL-7B-Instruct \\
        --editor /models/FLUX.1-Fill-dev --pipeline FluxFillPipeline
    python experiments/gpu/real_size.py --tiny                # the same code on CPU, tiny models

Pieces, each timed on its own (peak memory reset before each):

1. ``generate``: the defender answers a batch of questions (greedy, ``--new-tokens`` tokens);
2. ``grpo_step``: one GRPO step of defender RL (``aot.rl.defender.train_defender``, max_steps=1:
   rollouts, reward, backward, optimizer step), full weights or ``--lora``;
3. ``inpaint``: one box edit through ``aot.editors.DiffusersEditor`` at ``--edit-size`` with
   paste-back, checked: every pixel outside the mask is the input's.

Without ``--defender`` / ``--editor`` the models are built from full-size configs with random
weights: a Qwen2.5-VL-7B-sized defender (``Qwen2_5_VLConfig``; the world tokenizer, whose ids lie
inside the 152,064-token vocabulary) and a FLUX.1-Fill-dev-sized editor (19 + 38 blocks, T5-XXL
and CLIP-L text encoders, 16-channel VAE; tokenizers built locally). Nothing is downloaded;
a local folder is loaded with ``local_files_only``. A piece that runs out of memory is reported
as such and the others still run. Prints one line per piece and a JSON summary (``--json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

DTYPE = torch.bfloat16

# Qwen2.5-VL-7B-Instruct's text and vision towers (its config.json)
QWEN7B_TEXT = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                   vocab_size=152064, max_position_embeddings=128000, tie_word_embeddings=False,
                   rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]})
QWEN7B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14, spatial_merge_size=2,
                     temporal_patch_size=2, out_hidden_size=3584, window_size=112, fullatt_block_indexes=[7, 15, 23, 31])
# FLUX.1-Fill-dev's transformer, its text encoders (CLIP-L, T5-v1.1-XXL) and VAE
FLUX_FILL = dict(patch_size=1, in_channels=384, out_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                 num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=[16, 56, 56])


@dataclass
class Args:
    """Command-line settings (see ``--help``)."""

    defender: str = ""
    editor: str = ""
    pipeline: str = "FluxFillPipeline"
    batch: int = 8
    image: int = 448
    new_tokens: int = 32
    generations: int = 4
    lora: bool = False
    edit_size: int = 1024
    steps: int = 28
    tiny: bool = False
    skip: list[str] = field(default_factory=list)
    json: str = ""


def parse(argv: list[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--defender", default="", help="Local folder of an image-text-to-text model (e.g. Qwen2.5-VL-7B-Instruct); empty: random weights, 7B config.")
    p.add_argument("--editor", default="", help="Local diffusers pipeline folder (e.g. FLUX.1-Fill-dev); empty: random weights, FLUX.1-Fill config.")
    p.add_argument("--pipeline", default="FluxFillPipeline", help="diffusers class of --editor (random weights: FluxFillPipeline only).")
    p.add_argument("--batch", type=int, default=8, help="Questions per generate call, and GRPO prompts per step.")
    p.add_argument("--image", type=int, default=448, help="Defender input side in pixels (448: 256 visual tokens on Qwen2.5-VL).")
    p.add_argument("--new-tokens", type=int, default=32, help="Tokens generated per answer.")
    p.add_argument("--generations", type=int, default=4, help="GRPO rollouts per prompt.")
    p.add_argument("--lora", action="store_true", help="GRPO on LoRA adapters instead of all weights.")
    p.add_argument("--edit-size", type=int, default=1024, help="Side of the image the editor inpaints.")
    p.add_argument("--steps", type=int, default=28, help="Denoising steps of the inpaint.")
    p.add_argument("--tiny", action="store_true", help="Tiny random models on CPU: a dry run of the same code (what the test runs).")
    p.add_argument("--skip", default="", help="Pieces to leave out, comma separated: generate, grpo_step, inpaint.")
    p.add_argument("--json", default="", help="Also write the summary to this file.")
    a = p.parse_args(argv)
    return Args(a.defender, a.editor, a.pipeline, a.batch, a.image, a.new_tokens, a.generations, a.lora, a.edit_size, a.steps, a.tiny,
                [s.strip() for s in a.skip.split(",") if s.strip()], a.json)


# --- measuring ----------------------------------------------------------------------------------
def peak_gib(device: torch.device) -> float:
    """Peak memory since the last reset: GPU allocated on CUDA, the process's max RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


@contextmanager
def piece(name: str, device: torch.device, out: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Time one piece and record its peak memory; an out-of-memory error is recorded, not raised."""
    rec: dict[str, Any] = {}
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    try:
        yield rec
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rec["seconds"] = round(time.perf_counter() - t0, 3)
    except torch.cuda.OutOfMemoryError as e:
        rec["error"] = "out of memory: " + str(e).split("\n")[0]
    rec["peak_gib"] = round(peak_gib(device), 2)
    out[name] = rec
    print(f"{name:10s} " + ", ".join(f"{k}={v}" for k, v in rec.items()), flush=True)


# --- the models -------------------------------------------------------------------------------
def build_defender(args: Args, device: torch.device):
    """The defender: a local folder, a tiny random build, or Qwen2.5-VL-7B-sized random weights."""
    from aot.models.defender import Defender, load_defender

    if args.tiny:
        d = load_defender("tiny-qwen2.5-vl")
        return d
    if args.defender:
        d = load_defender(args.defender, dtype=DTYPE)
        d.model.to(device)
        return d
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from aot.models.registry import build_processor
    from aot.models.tokenizer import build_tokenizer

    tok = build_tokenizer("qwen2_5_vl")
    ids = tok.convert_tokens_to_ids
    text = QWEN7B_TEXT | dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = Qwen2_5_VLConfig(text_config=text, vision_config=QWEN7B_VISION, image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                              vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False)
    with default_dtype(DTYPE), torch.device(device):  # built in place: no fp32 copy on the host
        model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    proc = build_processor("qwen2_5_vl", tok, Qwen2VLImageProcessorPil(patch_size=14, merge_size=2, temporal_patch_size=2, min_pixels=56 * 56, max_pixels=1280 * 28 * 28))
    return Defender(model.eval(), proc, "qwen2_5_vl")


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def flux_fill_random(device: torch.device):
    """FLUX.1-Fill-dev's architecture with random weights (tokenizers built locally)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from aot.editors.tiny import clip_tokenizer, t5_tokenizer

    with default_dtype(DTYPE), torch.device(device):
        transformer = FluxTransformer2DModel(**FLUX_FILL)
        clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                            max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu"))
        t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu",
                                     relative_attention_num_buckets=32, is_encoder_decoder=False))
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
                            sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxFillPipeline(scheduler=scheduler, text_encoder=clip.eval(), tokenizer=clip_tokenizer(77), text_encoder_2=t5.eval(),
                            tokenizer_2=t5_tokenizer(512), vae=vae.eval(), transformer=transformer.eval())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_editor(args: Args, device: torch.device):
    from aot.editors import DiffusersEditor, EditorConfig

    if args.tiny:
        return DiffusersEditor(EditorConfig(pipeline="FluxFillPipeline", path="tiny", steps=args.steps))
    dtype = "bfloat16"
    cfg = EditorConfig(pipeline=args.pipeline, path=args.editor or "tiny", steps=args.steps, guidance=30.0 if args.pipeline == "FluxFillPipeline" else None,
                       work_size=args.edit_size, max_sequence_length=512, device=str(device), dtype=dtype)
    if args.editor:
        return DiffusersEditor(cfg)
    if args.pipeline != "FluxFillPipeline":
        raise SystemExit(f"random weights are built for FluxFillPipeline only; give --editor PATH for {args.pipeline}")
    return DiffusersEditor(cfg, pipe=flux_fill_random(device))


# --- the pieces -------------------------------------------------------------------------------
def questions(args: Args) -> list[Any]:
    """``batch`` world items, images upscaled to ``image`` pixels (the content does not matter
    for throughput; their questions give the prompts and the GRPO reward)."""
    from PIL import Image

    from aot.backends import get_backend
    from aot.rl.defender import QAItem

    items = get_backend("world").items("eval", args.batch, 0)
    return [QAItem(np.asarray(Image.fromarray(it.image).resize((args.image, args.image), Image.BICUBIC)), it.question) for it in items]


def run(args: Args) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        raise SystemExit("real_size.py needs a CUDA GPU (the full-size models do not fit a CPU run); pass --tiny for the CPU dry run")
    device = torch.device("cuda" if cuda and not args.tiny else "cpu")
    if args.tiny:
        args.batch, args.image, args.new_tokens, args.generations, args.edit_size, args.steps = min(args.batch, 2), 64, 4, 2, 64, 2
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "args": vars(args).copy()}
    items = questions(args)
    if not {"generate", "grpo_step"} <= set(args.skip):
        t = time.perf_counter()
        defender = build_defender(args, device)
        n_params = sum(p.numel() for p in defender.model.parameters())
        out["defender"] = {"params_b": round(n_params / 1e9, 3), "build_s": round(time.perf_counter() - t, 1)}
        print(f"defender   {n_params / 1e9:.2f} B parameters on {defender.device}", flush=True)
        if "generate" not in args.skip:
            with piece("generate", device, out) as rec:
                comps = defender.generate([it.image for it in items], [_prompt(it) for it in items], max_new_tokens=args.new_tokens, batch_size=args.batch)
                rec["sequences"] = len(comps)
            if "seconds" in rec:
                rec["new_tokens_per_s"] = round(len(items) * args.new_tokens / rec["seconds"], 1)  # upper bound: stops at EOS count as full
        if "grpo_step" not in args.skip:
            from aot.rl.defender import train_defender
            from aot.rl.grpo import RLConfig

            cfg = RLConfig(max_steps=1, prompts_per_step=args.batch, num_generations=args.generations, max_completion_length=args.new_tokens,
                           lora=args.lora, dynamic_sampling=False, learning_rate=1e-6)
            defender.model.train()
            with piece("grpo_step", device, out) as rec:
                m = train_defender(defender, items, cfg)
                rec["rollouts"] = args.batch * args.generations
                rec["reward"] = m.get("defender/reward")
            if "seconds" in rec:
                rec["rollouts_per_s"] = round(rec["rollouts"] / rec["seconds"], 2)
        del defender
    if "inpaint" not in args.skip:
        from aot.editors import BoxEdit

        t = time.perf_counter()
        editor = build_editor(args, device)
        n_params = sum(p.numel() for m in editor.pipe.components.values() if isinstance(m, torch.nn.Module) for p in m.parameters())
        out["editor"] = {"pipeline": type(editor.pipe).__name__, "params_b": round(n_params / 1e9, 3), "build_s": round(time.perf_counter() - t, 1)}
        print(f"editor     {type(editor.pipe).__name__}, {n_params / 1e9:.2f} B parameters", flush=True)
        s = args.edit_size
        image = np.random.default_rng(0).integers(0, 256, (s, s, 3), dtype=np.uint8)
        box = (s // 4, s // 4, s // 2, s // 2)
        with piece("inpaint", device, out) as rec:
            edited, mask = editor.apply_box(image, BoxEdit("add", box, "a small brown dog"), seed=0)
            rec["steps"] = args.steps
            rec["kept_outside_mask"] = bool(np.array_equal(edited[~mask], image[~mask]))
            rec["changed_inside_mask"] = bool((edited[mask] != image[mask]).any())
        if "seconds" in rec:
            rec["steps_per_s"] = round(args.steps / rec["seconds"], 2)
    return out


def _prompt(item: Any) -> str:
    from aot.models.prompt import format_prompt

    return format_prompt(item.question)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = run(args)
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
