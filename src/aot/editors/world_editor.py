"""The born world editor: a small pixel-space FluxFill (flow matching) that paints world objects.

A ``FluxFillPipeline`` built from diffusers classes at a small size, so everything that works on
a diffusers inpainting pipeline works on it unchanged: ``DiffusersEditor`` (box edits,
paste-back), ``aot.rl.flow_grpo.record_sde`` (it wraps ``pipe.scheduler.step`` and
``pipe.transformer``) and ``FlowGRPOTrainer``. Its parts:

- ``vae``: ``PixelShuffleVAE`` (exact space-to-depth, no weights; why: ``world_vae``);
- ``transformer``: by default ``world_unet.UNetFillTransformer``, a pixel-space diffusers
  ``UNet2DConditionModel`` behind the Flux transformer's call (it works on a window around the
  mask, with the box's coordinates as extra channels, and predicts the clean pixels inside the
  mask); or (``backbone='flux'``) ``XPredFluxTransformer``, a ``FluxTransformer2DModel`` over
  8x8-pixel tokens. Both predict the clean image and return the velocity the sampler wants;
- ``tokenizer`` / ``tokenizer_2``: one word-level ``T5Tokenizer`` over the world's vocabulary
  (``WORDS``: "small red metal circle" is 4 tokens + ``</s>``; other words fall back to
  letters); ``text_encoder`` a 1-layer CLIP text model (pooled vector at ``</s>``),
  ``text_encoder_2`` a 2-layer T5 encoder (the token sequence); both trained with the rest;
- ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` without shift (sigmas 1 .. 1/N).

Training (``flow_loss``) builds the transformer's inputs with the pipeline's own methods
(``encode_prompt``, ``prepare_mask_latents``, ``_pack_latents``), so training and sampling see
the same tensors. Weights are saved as one safetensors file whose metadata holds the
architecture (``save_world_editor`` / ``load_world_pipeline``); nothing else is needed to
rebuild it, and nothing is downloaded.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..world.types import COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES
from .world_data import WORLD_BACKGROUND_PROMPT

WORDS: tuple[str, ...] = (*SIZE_NAMES, *COLOR_NAMES, *MATERIALS, *SHAPES, *WORLD_BACKGROUND_PROMPT.split())
"""Whole-word tokens of the world editor's tokenizer."""
CHARS = string.ascii_lowercase + string.digits + ".,'-!?()"
WEIGHTS_FILE = "world_editor.safetensors"
"""The weights (and, in its metadata, the architecture) of a saved world editor."""
PARTS: tuple[str, ...] = ("transformer", "text_encoder", "text_encoder_2")
"""The pipeline components with weights."""


SIGMA_FLOOR = 0.05
"""Smallest sigma an x-prediction is turned into a velocity at (sampling at 20 steps or fewer
never goes below it; training weights its loss as 1 / max(sigma, floor)^2)."""


def x0_velocity(hidden_states: torch.Tensor, x0: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    """The velocity ``(x_s - x0) / max(sigma, SIGMA_FLOOR)`` [B, L, C] of an x-prediction ``x0``;
    the noisy latents ``x_s`` are the first C channels of ``hidden_states`` (the conditioning follows)."""
    xs = hidden_states[..., : x0.shape[-1]]
    return (xs - x0) / timestep.clamp_min(SIGMA_FLOOR).view(-1, 1, 1).to(x0.dtype)


def _xpred_class():
    from diffusers import FluxTransformer2DModel
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    class XPredFluxTransformer(FluxTransformer2DModel):
        """A Flux transformer whose network predicts the clean latents x0 ("x-prediction");
        ``forward`` returns the velocity ``v = (x_s - x0) / sigma`` that diffusers' flow-matching
        sampler (and Flow-GRPO's SDE step) expects, so the pipeline runs it unchanged.

        Why: a token is 192 numbers (an 8x8x3 pixel patch) and the network is 128 wide. A
        velocity holds the noise, which fills all 192 dimensions and cannot pass a 128-wide
        bottleneck; a clean world patch (flat colours, one shape edge) lies on a low-dimensional
        set that can (Li and He, "Back to Basics: Let Denoising Generative Models Denoise", 2025).
        """

        def predict_x0(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            """[B, L, 4 lc] clean latents predicted from the transformer's usual inputs."""
            return super().forward(hidden_states=hidden_states, return_dict=False, **kwargs)[0]

        def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor, return_dict: bool = True, **kwargs):
            v = x0_velocity(hidden_states, self.predict_x0(hidden_states, timestep=timestep, **kwargs), timestep)
            return Transformer2DModelOutput(sample=v) if return_dict else (v,)

    return XPredFluxTransformer


@dataclass(frozen=True)
class WorldEditorArch:
    """Sizes of the born world editor (defaults: a UNet backbone, 4.0 M parameters, 16.1 MB in
    float32; the shipped one, ``aot/assets/world_editor``).

    The fields ``layers`` .. ``rope_axes`` size the 'flux' backbone only. Its factor 4 (8x8-pixel
    tokens) over factor 2 (4x4): a training step of 16 complex scenes takes 0.19 s against
    0.60 s; but at this width it draws blurred blocks (16.6% of fills read as described after
    4,000 steps, against 97.0% for the UNet: docs/diffusion-attacker.md)."""

    factor: int = 4
    """Pixel-unshuffle factor of the fixed autoencoder: a token covers (2 factor)^2 pixels."""
    layers: int = 3
    """Flux double-stream (text + image) blocks."""
    single_layers: int = 3
    """Flux single-stream blocks."""
    heads: int = 4
    """Attention heads."""
    head_dim: int = 32
    """Channels per head (model width = heads x head_dim)."""
    rope_axes: tuple[int, int, int] = (8, 12, 12)
    """Rotary channels per axis (text index, row, column); they sum to ``head_dim``."""
    text_dim: int = 64
    """Width of the T5 text encoder (the transformer's ``joint_attention_dim``)."""
    pooled_dim: int = 32
    """Width of the CLIP text encoder (the transformer's ``pooled_projection_dim``)."""
    max_text_tokens: int = 8
    """Prompt tokens (with ``</s>``); a world description needs 5."""
    backbone: str = "unet"
    """'unet': a pixel-space diffusers ``UNet2DConditionModel`` behind the Flux transformer's call
    (``world_unet``; draws shapes sharply); 'flux': a ``FluxTransformer2DModel`` over
    (2 factor)-pixel tokens (blurs 7-pixel shapes at this size)."""
    unet_channels: tuple[int, ...] = (48, 96, 128)
    """Channels per UNet resolution level (attention only in the middle block)."""
    unet_fold: int = 2
    """Pixels folded into channels before the UNet (2: 2x2-pixel cells, a quarter of full-resolution cost)."""

    def __post_init__(self) -> None:
        if sum(self.rope_axes) != self.head_dim or any(a % 2 for a in self.rope_axes):
            raise ValueError(f"rope_axes {self.rope_axes} must be even and sum to head_dim {self.head_dim}")
        if self.backbone not in ("unet", "flux"):
            raise ValueError(f"backbone must be 'unet' or 'flux', got {self.backbone!r}")
        if self.factor not in (1, 2, 4, 8):
            raise ValueError(f"factor must be 1, 2, 4 or 8, got {self.factor}")

    @property
    def latent_channels(self) -> int:
        return 3 * self.factor**2


TINY_WORLD_ARCH = WorldEditorArch(layers=1, single_layers=1, heads=2, head_dim=16, rope_axes=(4, 6, 6), text_dim=32,
                                  pooled_dim=16, unet_channels=(8, 16))
"""A tiny world editor (random weights, about 0.1 M parameters): tests and CPU smoke runs
(``dataclasses.replace(TINY_WORLD_ARCH, backbone='flux')`` for the transformer backbone)."""


def world_tokenizer(max_length: int = 8):
    """A T5 unigram tokenizer: one token per world word (``WORDS``), letters for anything else."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in dict.fromkeys(WORDS)]  # a whole word beats any spelling
    pieces += [(c, -3.0) for c in CHARS] + [("▁" + c, -3.0) for c in CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def build_world_pipeline(arch: WorldEditorArch | None = None, seed: int = 0):
    """A ``FluxFillPipeline`` of ``arch`` with random weights (seeded), ready to train or load into."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from .world_vae import PixelShuffleVAE

    arch = arch or WorldEditorArch()
    lc, f = arch.latent_channels, arch.factor
    tok = world_tokenizer(arch.max_text_tokens)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch.backbone == "unet":
            from .world_unet import UNetFillTransformer

            transformer = UNetFillTransformer(factor=f, channels=tuple(arch.unet_channels), fold=arch.unet_fold,
                                              text_dim=arch.text_dim, pooled_dim=arch.pooled_dim, text_tokens=arch.max_text_tokens)
        else:
            transformer = _xpred_class()(
                patch_size=1, in_channels=4 * lc + 4 * lc + 4 * f * f, out_channels=4 * lc,
                num_layers=arch.layers, num_single_layers=arch.single_layers, attention_head_dim=arch.head_dim,
                num_attention_heads=arch.heads, joint_attention_dim=arch.text_dim, pooled_projection_dim=arch.pooled_dim,
                guidance_embeds=False, axes_dims_rope=list(arch.rope_axes),
            )
        clip = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tok), hidden_size=arch.pooled_dim, intermediate_size=2 * arch.pooled_dim, num_hidden_layers=1,
            num_attention_heads=2, projection_dim=arch.pooled_dim, max_position_embeddings=max(16, arch.max_text_tokens),
            bos_token_id=0, eos_token_id=1, pad_token_id=0,  # pooled at the first </s>: the end of the words
        ))
        t5 = T5EncoderModel(T5Config(
            vocab_size=len(tok), d_model=arch.text_dim, d_kv=arch.text_dim // 4, d_ff=2 * arch.text_dim, num_layers=2,
            num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
            dropout_rate=0.0,  # no dropout: a step is a function of (seed, step), so a resumed run matches
        ))
    pipe = FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=PixelShuffleVAE(**PixelShuffleVAE.channels(f)), text_encoder=clip.eval(), tokenizer=tok,
        text_encoder_2=t5.eval(), tokenizer_2=tok, transformer=transformer.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1] (the pipeline's image preprocessing)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@dataclass
class FlowInputs:
    """The transformer's keyword inputs for a batch, except the noisy latents and the timestep."""

    cond: torch.Tensor
    """[B, L, 4 lc + 4 f^2]: packed masked-image latents, then the packed mask."""
    x0: torch.Tensor
    """[B, L, 4 lc]: packed latents of the target (what sampling should reach)."""
    token_mask: torch.Tensor
    """[B, L] bool: tokens with at least one masked pixel."""
    text: dict[str, torch.Tensor]
    """pooled_projections, encoder_hidden_states, txt_ids, img_ids."""


def flow_inputs(pipe: Any, images: np.ndarray, masks: np.ndarray, prompts: list[str], targets: np.ndarray) -> FlowInputs:
    """Build the inputs exactly as ``FluxFillPipeline.__call__`` does for these images (text
    encoders run with gradients: they train with the transformer)."""
    b, h, w = masks.shape
    lc = pipe.vae.config.latent_channels
    x, y = to_pixels(images), to_pixels(targets)  # (B, 3, H, W)
    m = torch.from_numpy(masks)[:, None].float()  # (B, 1, H, W), 1 = paint
    mask_p, masked_p = pipe.prepare_mask_latents(m, x * (1 - m), b, lc, 1, h, w, torch.float32, "cpu", None)
    f = pipe.vae_scale_factor
    x0 = pipe._pack_latents(pipe.vae.encode(y).latents, b, lc, h // f, w // f)  # (B, L, 4 lc)
    embeds, pooled, text_ids = pipe.encode_prompt(prompt=prompts, prompt_2=None, device="cpu", num_images_per_prompt=1,
                                                  max_sequence_length=pipe.tokenizer.model_max_length)
    img_ids = pipe._prepare_latent_image_ids(b, h // f // 2, w // f // 2, "cpu", torch.float32)
    return FlowInputs(
        cond=torch.cat([masked_p, mask_p], dim=-1), x0=x0, token_mask=mask_p.amax(-1) > 0,
        text={"pooled_projections": pooled, "encoder_hidden_states": embeds, "txt_ids": text_ids, "img_ids": img_ids},
    )


def sample_sigmas(n: int, generator: torch.Generator, how: str = "logit_normal", mean: float = 0.0) -> torch.Tensor:
    """[n] noise levels in (0, 1): 'uniform', or 'logit_normal' (sigmoid of N(mean, 1), SD3's
    choice at mean 0: more weight on the middle of the path; a positive mean moves it towards
    pure noise, where a near-deterministic fill's shape is decided)."""
    if how == "uniform":
        return torch.rand(n, generator=generator).clamp(1e-3, 1 - 1e-3)
    if how == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator) + mean)
    raise ValueError(f"sigma sampling must be 'uniform' or 'logit_normal', got {how!r}")


def flow_loss(pipe: Any, inputs: FlowInputs, generator: torch.Generator, outside_weight: float = 0.1,
              sigmas: str = "logit_normal", sigma_mean: float = 0.0, weighting: str = "velocity") -> tuple[torch.Tensor, dict[str, float]]:
    """Rectified-flow loss with x-prediction: x_s = (1 - s) x0 + s eps; the network predicts x0.

    The error is the velocity's, ``|v_hat - v|^2 = |x0_hat - x0|^2 / s^2``, with s floored at
    ``SIGMA_FLOOR`` as the sampler's conversion is (``weighting='velocity'``), or the clean
    image's error alone (``'x0'``: every noise level counts the same, so the high-noise steps
    that decide a fill's shape are not drowned by the easy low-noise ones); per token [B, L], weighted 1 on tokens that
    hold masked pixels and ``outside_weight`` elsewhere (outside the mask the fill is pasted
    back; the model only needs to stay sane there). Returns (loss, detached stats)."""
    x0 = inputs.x0
    if weighting not in ("velocity", "x0"):
        raise ValueError(f"weighting must be 'velocity' or 'x0', got {weighting!r}")
    s = sample_sigmas(x0.shape[0], generator, sigmas, sigma_mean)[:, None, None]  # (B, 1, 1)
    eps = torch.randn(x0.shape, generator=generator)
    xs = (1 - s) * x0 + s * eps
    x0_hat = pipe.transformer.predict_x0(hidden_states=torch.cat([xs, inputs.cond], dim=-1), timestep=s.flatten(),
                                         guidance=None, **inputs.text)  # (B, L, 4 lc)
    err = ((x0_hat - x0) ** 2).mean(-1)  # (B, L)
    if weighting == "velocity":
        err = err / s.clamp_min(SIGMA_FLOOR)[..., 0] ** 2
    wt = torch.where(inputs.token_mask, 1.0, outside_weight)
    loss = (err * wt).sum() / wt.sum()
    with torch.no_grad():
        inside = ((x0_hat - x0) ** 2).mean(-1)[inputs.token_mask]
        stats = {"loss/flow": loss.item(), "loss/x0_inside": inside.mean().item() if len(inside) else 0.0}
    return loss, stats


def trainable_modules(pipe: Any) -> dict[str, torch.nn.Module]:
    """The components with weights, by name (``PARTS``)."""
    return {name: getattr(pipe, name) for name in PARTS}


def tied_names(module: torch.nn.Module) -> set[str]:
    """State-dict keys that repeat an earlier key's tensor (T5's ``encoder.embed_tokens`` is ``shared``)."""
    seen, tied = set(), set()
    for k, v in module.state_dict(keep_vars=True).items():
        if id(v) in seen:
            tied.add(k)
        seen.add(id(v))
    return tied


def state_dict(pipe: Any) -> dict[str, torch.Tensor]:
    """Every weight of the world editor once (tied copies left out), keys prefixed by component
    (``transformer.x_embedder.weight``)."""
    out = {}
    for name, module in trainable_modules(pipe).items():
        tied = tied_names(module)
        for k, v in module.state_dict().items():
            if k not in tied:
                out[f"{name}.{k}"] = v.detach().cpu().contiguous()
    return out


def load_state(pipe: Any, state: dict[str, torch.Tensor]) -> None:
    """Load ``state_dict(pipe)``'s output back: every key of every component, nothing extra."""
    for name, module in trainable_modules(pipe).items():
        prefix = name + "."
        res = module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=False)
        missing = set(res.missing_keys) - tied_names(module)
        if missing or res.unexpected_keys:
            raise ValueError(f"{name}: weights missing {sorted(missing)[:5]}, unexpected {sorted(res.unexpected_keys)[:5]}")


def arch_metadata(arch: WorldEditorArch) -> dict[str, str]:
    return {"format": "aot-world-editor", "arch": json.dumps(asdict(arch))}


def arch_from_metadata(meta: dict[str, str] | None, path: str | Path) -> WorldEditorArch:
    if not meta or meta.get("format") != "aot-world-editor":
        raise ValueError(f"{path} is not a saved world editor (no 'aot-world-editor' metadata)")
    d = json.loads(meta["arch"])
    d["rope_axes"] = tuple(d["rope_axes"])
    d.setdefault("backbone", "flux")  # saved before the UNet backbone existed
    if "unet_channels" in d:
        d["unet_channels"] = tuple(d["unet_channels"])
    return WorldEditorArch(**d)


def save_weights(state: dict[str, torch.Tensor], arch: WorldEditorArch, path: str | Path) -> Path:
    """Write a world editor's weights (``state_dict`` keys) to ``path`` (a file, or
    ``WEIGHTS_FILE`` in a folder) atomically, the architecture in the metadata."""
    from safetensors.torch import save_file

    from ..io import atomic_path

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_FILE
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=arch_metadata(arch))
    return path


def save_world_editor(pipe: Any, arch: WorldEditorArch, path: str | Path) -> Path:
    """Write ``pipe``'s weights with ``save_weights``."""
    return save_weights(state_dict(pipe), arch, path)


def load_world_pipeline(path: str | Path):
    """The pipeline saved at ``path`` (a ``.safetensors`` file or a folder holding ``WEIGHTS_FILE``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(2, "no saved world editor", str(path))
    with safe_open(str(path), "pt") as fh:
        arch = arch_from_metadata(fh.metadata(), path)
    pipe = build_world_pipeline(arch)
    load_state(pipe, {k: v for k, v in load_file(str(path)).items() if k.split(".")[0] in PARTS})
    return pipe


def world_editor_config(path: str | Path = "", steps: int = 8, seed: int = 0):
    """The ``EditorConfig`` of the world editor saved at ``path``: its prompt length and its
    removal prompt (``DiffusersEditor(world_editor_config(path))`` loads it)."""
    from .diffusers_editor import EditorConfig

    return EditorConfig(pipeline="FluxFillPipeline", path=str(path), steps=steps, seed=seed,
                        max_sequence_length=WorldEditorArch().max_text_tokens, background_prompt=WORLD_BACKGROUND_PROMPT)


def load_world_editor(path: str | Path, steps: int = 8, seed: int = 0):
    """A ``DiffusersEditor`` on the world editor saved at ``path``."""
    from .diffusers_editor import DiffusersEditor

    pipe = load_world_pipeline(path)
    cfg = world_editor_config(path, steps, seed)
    cfg.max_sequence_length = pipe.tokenizer.model_max_length
    return DiffusersEditor(cfg, pipe=pipe)
