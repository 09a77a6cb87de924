"""``aot_vlm``: a small custom vision-language model, registered with the ``transformers`` Auto
classes, that the born defender uses.

Why a custom architecture (docs/born-defender.md, "Why not a stock architecture"):
the stock tiny Qwen2.5-VL, LLaVA and Idefics3 decoders of our size did not learn to *select* an
object by its name within the 90-minute budget, even with perfect symbolic visual tokens or
with the scene written out as text (``experiments/born_defender/``). Two changes make that
selection a one-hop match, which a small model learns in minutes:

* **Prefix-LM attention** (as PaliGemma): the image and the whole user turn (question and
  options) attend to each other in both directions; the answer is decoded causally. A visual
  cell can see the words that name it, and an option's word can see its letter.
* **A convolutional vision encoder** whose cells are trained (``aot.pretrain``) to land next to
  the word embeddings that name them, so "the circle" in the question and a circle's cell match
  by a dot product from the first step.

Everything else is a plain pre-norm decoder (RMSNorm, rotary positions, SwiGLU, tied
embeddings) with a ``transformers`` KV cache, so ``generate``, ``save_pretrained`` /
``AutoModelForImageTextToText.from_pretrained``, PEFT (``q_proj`` ... ``down_proj`` are
``nn.Linear``) and TRL work on it unchanged. It takes the Qwen2-VL processor's inputs
(``pixel_values`` as flattened patches, ``image_grid_thw``): one visual token per
``patch_size * spatial_merge_size`` pixel cell, the number the processor expands
``<|image_pad|>`` to.

The prefix ends at the first ``<|im_start|>`` after the last image token (the assistant turn);
without image tokens the model is plain causal. The same rule holds for a prompt alone
(generation) and for prompt + completion (training), so both give the same log-probs.

This file is also the model's *remote code*: it imports only ``torch`` and ``transformers``, and
``save_pretrained`` copies it beside the weights with an ``auto_map`` in ``config.json`` and
``processor_config.json`` (``register_for_auto_class`` at the bottom), so a process that never
imports ``aot`` loads a saved defender with ``AutoModelForImageTextToText.from_pretrained(DIR,
trust_remote_code=True)`` and ``AutoProcessor.from_pretrained(DIR, trust_remote_code=True)``
(``AotVlmProcessor``: the Qwen2-VL processor without its video slot, which cannot be saved or
built without torchvision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin


class AotVlmConfig(PretrainedConfig):
    """Sizes of an ``aot_vlm`` model (defaults: the born defender, about 2.6 M parameters)."""

    model_type = "aot_vlm"

    def __init__(
        self,
        vocab_size: int = 1024,
        hidden_size: int = 192,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 6,
        intermediate_size: int = 512,
        max_position_embeddings: int = 1024,
        rope_theta: float = 10000.0,
        rms_norm_eps: float = 1e-6,
        vision_channels: tuple[int, ...] | list[int] = (32, 64, 96, 128),
        vision_strides: tuple[int, ...] | list[int] | None = None,
        patch_size: int = 8,
        spatial_merge_size: int = 2,
        temporal_patch_size: int = 2,
        image_token_id: int | None = None,
        prefix_end_token_id: int | None = None,
        bidirectional_prefix: bool = True,
        match_heads: int = 2,
        match_init: float = 4.0,
        initializer_range: float = 0.02,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.vision_channels = list(vision_channels)
        # one stride per stage (2 halves the side, 1 keeps it): a cell is their product in pixels
        self.vision_strides = list(vision_strides) if vision_strides is not None else [2] * len(self.vision_channels)
        self.patch_size = patch_size
        self.spatial_merge_size = spatial_merge_size
        self.temporal_patch_size = temporal_patch_size
        self.image_token_id = image_token_id
        self.prefix_end_token_id = prefix_end_token_id
        self.bidirectional_prefix = bidirectional_prefix
        self.match_heads = match_heads
        self.match_init = match_init
        self.initializer_range = initializer_range
        if hidden_size % num_attention_heads:
            raise ValueError(f"aot_vlm: hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        cell = patch_size * spatial_merge_size
        if len(self.vision_strides) != len(self.vision_channels) or any(s not in (1, 2) for s in self.vision_strides):
            raise ValueError(f"aot_vlm: vision_strides {self.vision_strides} must give a stride of 1 or 2 to each of the {len(self.vision_channels)} vision stages")
        side = 1
        for s in self.vision_strides:
            side *= s
        if side != cell:
            raise ValueError(f"aot_vlm: vision_strides {self.vision_strides} give {side}-pixel cells, but patch_size x spatial_merge_size is {cell}")
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


# --- vision -----------------------------------------------------------------------------------
def patches_to_images(pixel_values: torch.Tensor, grid_thw: torch.Tensor, patch: int, merge: int, temporal: int) -> list[torch.Tensor]:
    """Undo the Qwen2-VL image processor's patch layout: (sum t*h*w, C*T*P*P) -> one (C, h*P,
    w*P) image per row of ``grid_thw`` (first frame). The processor orders patches by merge
    window: (t, h/m, w/m, m, m) with each row channel, frame, y, x."""
    out, start = [], 0
    for t, h, w in grid_thw.tolist():
        n = t * h * w
        x = pixel_values[start : start + n].view(t, h // merge, w // merge, merge, merge, -1, temporal, patch, patch)
        x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(t * temporal, -1, h * patch, w * patch)
        out.append(x[0])
        start += n
    return out


def sincos_grid(h: int, w: int, dim: int, device=None, base: float = 100.0) -> torch.Tensor:
    """(h*w, dim) 2-D sine-cosine codes of a row-major grid (MAE style): x then y, each sin
    then cos, frequencies ``base ** -(i / (dim // 4))``, zero-padded to ``dim``."""
    q = dim // 4
    omega = 1.0 / (base ** (torch.arange(q, dtype=torch.float32, device=device) / q))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device), torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
    parts = []
    for c in (xs.reshape(-1), ys.reshape(-1)):
        a = c[:, None] * omega[None, :]
        parts += [torch.sin(a), torch.cos(a)]
    return F.pad(torch.cat(parts, 1), (0, dim - 4 * q))


class ConvStage(nn.Module):
    """Strided conv then a residual 3x3 conv (GroupNorm, GELU): stride 2 halves the side."""

    def __init__(self, cin: int, cout: int, stride: int = 2):
        super().__init__()
        self.down = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm1 = nn.GroupNorm(8, cout)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, cout)

    def forward(self, x):
        x = F.gelu(self.norm1(self.down(x)))
        return x + F.gelu(self.norm2(self.conv(x)))


class AotVisionEncoder(nn.Module):
    """Images -> one token per cell of ``patch_size * spatial_merge_size`` pixels.

    (C, H, W) -> stem 3x3 conv -> one stage per ``vision_channels`` (``vision_strides``, 2 by
    default) -> (H/cell, W/cell)
    cells -> + 2-D position code -> linear to the text width: (H/cell * W/cell, hidden)."""

    def __init__(self, config: AotVlmConfig):
        super().__init__()
        ch = config.vision_channels
        self.stem = nn.Conv2d(3, ch[0], 3, padding=1)
        self.stages = nn.ModuleList(ConvStage(a, b, s) for a, b, s in zip([ch[0]] + ch[:-1], ch, config.vision_strides))
        self.pos = nn.Linear(ch[-1], ch[-1], bias=False)
        self.proj = nn.Sequential(nn.Linear(ch[-1], config.hidden_size), nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size))
        self.config = config

    def cells(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, h*w, channels) cell features, row-major, before the projection."""
        x = F.gelu(self.stem(images))
        for s in self.stages:
            x = s(x)
        n, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (N, h*w, c)
        return x + self.pos(sincos_grid(h, w, c, x.device))

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """(sum patches, C*T*P*P), (n_images, 3) -> (sum cells, hidden), images in order."""
        c = self.config
        images = patches_to_images(pixel_values, grid_thw, c.patch_size, c.spatial_merge_size, c.temporal_patch_size)
        feats: list[torch.Tensor | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            by_size.setdefault(tuple(im.shape[-2:]), []).append(i)
        for idx in by_size.values():  # one conv batch per image size
            f = self.proj(self.cells(torch.stack([images[i] for i in idx])))
            for j, i in enumerate(idx):
                feats[i] = f[j]
        return torch.cat(feats, 0)  # type: ignore[arg-type]


# --- text decoder -------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotary(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate (B, H, L, D) by positions (B, L) (half-split rotary, as Llama)."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d))
    ang = pos[:, None, :, None].float() * inv  # (B, 1, L, D/2)
    cos, sin = torch.cat([ang.cos()] * 2, -1).to(x.dtype), torch.cat([ang.sin()] * 2, -1).to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    """Multi-head self-attention with rotary positions. The first ``match_heads`` heads add a
    *match bias* to their logits: ``match_scale[h] * cos(e_i, e_j)``, the cosine between the
    layer-0 inputs (token embeddings, visual tokens) of query i and key j. A word attends to
    the same word and to the visual cells trained to sit next to it from the first step, so
    "which option says red" and "which cell is the ring" are lookups the model need not
    discover. It is implemented by appending the unit embedding to those heads' keys and the
    scaled unit embedding to their queries, so the KV cache carries it."""

    def __init__(self, config: AotVlmConfig, layer_idx: int):
        super().__init__()
        h = config.hidden_size
        self.heads, self.hd = config.num_attention_heads, h // config.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.o_proj = nn.Linear(h, h, bias=False)
        self.layer_idx, self.theta = layer_idx, config.rope_theta
        self.n_match = min(config.match_heads, self.heads)
        if self.n_match:
            self.match_scale = nn.Parameter(torch.full((self.n_match,), float(config.match_init)))
        self.capture = False
        """When True, ``forward`` keeps ``(q, k, mask)`` in ``self.captured``: the attention
        logits are ``q @ k^T`` (scale folded into q), for grounding losses in pretraining."""
        self.captured = None

    def forward(self, x, pos, mask, cache, e0=None):
        # x (B, L, D); pos (B, L); mask (B, 1, L, past+L); e0 (B, L, D) unit layer-0 inputs
        b, L, _ = x.shape
        q, k, v = (p(x).view(b, L, self.heads, self.hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rotary(q, pos, self.theta), rotary(k, pos, self.theta)
        q = q * self.hd**-0.5
        if self.n_match and e0 is not None:
            m = self.n_match
            em = e0[:, None].expand(b, self.heads, L, e0.shape[-1])
            gate = torch.zeros(self.heads, device=x.device, dtype=x.dtype)
            gate = torch.cat([self.match_scale.to(x.dtype), gate[m:]])  # plain heads: zero match term
            q = torch.cat([q, em * gate[None, :, None, None]], -1)
            k = torch.cat([k, em], -1)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        if self.capture:
            self.captured = (q, k, mask)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)  # (B, H, L, hd)
        return self.o_proj(y.transpose(1, 2).reshape(b, L, -1))


class Block(nn.Module):
    def __init__(self, config: AotVlmConfig, layer_idx: int):
        super().__init__()
        h, i = config.hidden_size, config.intermediate_size
        self.input_layernorm = RMSNorm(h, config.rms_norm_eps)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(h, config.rms_norm_eps)
        self.gate_proj, self.up_proj = nn.Linear(h, i, bias=False), nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x, pos, mask, cache, e0=None):
        x = x + self.self_attn(self.input_layernorm(x), pos, mask, cache, e0)
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


def prefix_ends(input_ids: torch.Tensor, image_token_id: int | None, start_token_id: int | None, is_img: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) index of the first ``start_token_id`` after the last image token of each row: the
    end (exclusive) of the bidirectional prefix; 0 (no prefix) for rows without image tokens.
    ``is_img`` (B, L) bool marks the image tokens (default: ``input_ids == image_token_id``)."""
    B, L = input_ids.shape
    if start_token_id is None or (image_token_id is None and is_img is None):
        return torch.zeros(B, dtype=torch.long, device=input_ids.device)
    idx = torch.arange(L, device=input_ids.device).expand(B, L)
    if is_img is None:
        is_img = input_ids == image_token_id
    last_img = torch.where(is_img, idx, torch.full_like(idx, -1)).max(1).values  # (B,)
    after = (input_ids == start_token_id) & (idx > last_img[:, None])
    first = torch.where(after, idx, torch.full_like(idx, L)).min(1).values
    return torch.where(is_img.any(1), first, torch.zeros_like(first))


def attention_mask_4d(attention_mask: torch.Tensor, q_len: int, past: int, prefix_end: torch.Tensor | None) -> torch.Tensor:
    """(B, 1, q_len, past+q_len) bool: key j is visible to query i when it is not padding and
    j <= i, or both lie in the row's bidirectional prefix (``prefix_end``, first forward only).
    A padding query sees itself only (its output is never used)."""
    B, K = attention_mask.shape
    dev = attention_mask.device
    qpos = torch.arange(past, past + q_len, device=dev)
    kpos = torch.arange(K, device=dev)
    allowed = (kpos[None, :] <= qpos[:, None])[None]  # (1, q, K)
    if prefix_end is not None:
        pe = prefix_end[:, None, None]
        allowed = allowed | ((kpos[None, None, :] < pe) & (qpos[None, :, None] < pe))
    allowed = allowed & attention_mask.bool()[:, None, :]
    allowed = allowed | (kpos[None, None, :] == qpos[None, :, None])  # never an empty row
    return allowed[:, None]


class AotVlmPreTrainedModel(PreTrainedModel):
    config_class = AotVlmConfig
    base_model_prefix = "model"
    _supports_sdpa = True
    _no_split_modules = ["Block"]

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (RMSNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)


class AotVlmModel(AotVlmPreTrainedModel):
    """Vision encoder + token embeddings + decoder blocks; returns the final hidden states."""

    def __init__(self, config: AotVlmConfig):
        super().__init__(config)
        self.visual = AotVisionEncoder(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """(sum cells, hidden): the visual tokens, in the order of the image placeholders."""
        return self.visual(pixel_values, image_grid_thw)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, inputs_embeds=None, pixel_values=None, image_grid_thw=None, use_cache=None, mm_token_type_ids=None, **kwargs):
        """Returns ``BaseModelOutputWithPast`` (last_hidden_state (B, L, D), cache).

        Image placeholders are the tokens ``mm_token_type_ids`` marks 1 when given (the Qwen2-VL
        processor's flags, so a sampled ``<|image_pad|>`` in a completion stays text), else the
        ``image_token_id`` tokens."""
        c = self.config
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        B, L, _ = inputs_embeds.shape
        is_img = None
        if input_ids is not None:
            if mm_token_type_ids is not None and mm_token_type_ids.shape == input_ids.shape:
                is_img = mm_token_type_ids == 1
            else:
                is_img = input_ids == c.image_token_id
        if pixel_values is not None and input_ids is not None:
            feats = self.get_image_features(pixel_values, image_grid_thw).to(inputs_embeds.dtype)
            if int(is_img.sum()) != feats.shape[0]:
                raise ValueError(f"aot_vlm: {int(is_img.sum())} image tokens in the text but {feats.shape[0]} visual tokens from the images")
            inputs_embeds = inputs_embeds.masked_scatter(is_img[..., None], feats)
        if use_cache and cache is None:
            from transformers import DynamicCache

            cache = DynamicCache(config=c)
        past = cache.get_seq_length() if cache is not None else 0
        if attention_mask is None:
            attention_mask = torch.ones(B, past + L, dtype=torch.long, device=inputs_embeds.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -L:]
        pe = None
        if c.bidirectional_prefix and past == 0 and input_ids is not None:
            pe = prefix_ends(input_ids, c.image_token_id, c.prefix_end_token_id, is_img)
        mask = attention_mask_4d(attention_mask, L, past, pe)
        x = inputs_embeds
        e0 = F.normalize(inputs_embeds, dim=-1) if c.match_heads else None
        for layer in self.layers:
            x = layer(x, position_ids, mask, cache, e0)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(x), cache=cache if use_cache else None)


class AotVlmForConditionalGeneration(AotVlmPreTrainedModel, GenerationMixin):
    """``aot_vlm`` with a (tied) language-model head."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: AotVlmConfig):
        super().__init__(config)
        self.model = AotVlmModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixel_values, image_grid_thw)

    def set_output_embeddings(self, value):
        self.lm_head = value

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``, with ``AutoModelForCausalLM`` in the ``auto_map``
        too (``register_for_auto_class`` names one Auto class per model class)."""
        name = f"{type(self).__module__.rsplit('.', 1)[-1]}.{type(self).__name__}"
        self.config.auto_map = dict(getattr(self.config, "auto_map", None) or {}, AutoModelForCausalLM=name)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, inputs_embeds=None, pixel_values=None, image_grid_thw=None, labels=None, use_cache=None, logits_to_keep: int | torch.Tensor = 0, return_dict=None, mm_token_type_ids=None, **kwargs):
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            inputs_embeds=inputs_embeds, pixel_values=pixel_values, image_grid_thw=image_grid_thw, use_cache=use_cache,
            mm_token_type_ids=mm_token_type_ids,
        )
        hidden, cache = out.last_hidden_state, out.cache
        sl = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, sl, :])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache if use_cache else None)


# --- processor ----------------------------------------------------------------------------------
class AotVlmProcessor(Qwen2VLProcessor):
    """The Qwen2-VL processor with two slots (image processor, tokenizer) and no video slot.

    Same inputs as ``Qwen2_5_VLProcessor`` for images and text (``<|image_pad|>`` expanded to one
    token per ``patch_size * merge_size`` cell, ``pixel_values``, ``image_grid_thw``,
    ``mm_token_type_ids``). Without the video slot ``save_pretrained`` works and
    ``AutoProcessor.from_pretrained`` rebuilds it whole (the stock one needs a video processor,
    which needs torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


# --- Auto classes ---------------------------------------------------------------------------------
# ``save_pretrained`` copies this file beside the weights and writes the ``auto_map`` entries.
AotVlmConfig.register_for_auto_class()
AotVlmForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
AotVlmProcessor.register_for_auto_class("AutoProcessor")


def register() -> None:
    """Register ``aot_vlm`` with the Auto classes of this process (idempotent); ``import
    aot.models`` does it."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

    try:
        AutoConfig.register("aot_vlm", AotVlmConfig)
    except ValueError:
        return  # already registered
    AutoModelForImageTextToText.register(AotVlmConfig, AotVlmForConditionalGeneration)
    AutoModelForCausalLM.register(AotVlmConfig, AotVlmForConditionalGeneration)
    AutoProcessor.register(AotVlmConfig, AotVlmProcessor)


__all__ = ["AotVlmConfig", "AotVlmForConditionalGeneration", "AotVlmModel", "AotVlmProcessor", "register", "patches_to_images", "prefix_ends", "attention_mask_4d"]
