"""Flow-GRPO on a diffusers inpainting editor: LoRA on the transformer, one step written out in order.

    step(requests, seed):
      1. rollout   for each request, G fills in one pipeline call, SDE steps recorded (no grad)
      2. reward    reward_fn(images, requests) -> [P x G] floats; group-normalised advantages
      3. update    for each request and recorded SDE step: recompute log-probs with gradients,
                   clipped policy loss (+ beta x KL to the LoRA-free reference), accumulate;
                   one AdamW step on the LoRA weights

The reward is a plain callable ``(images [N, H, W, 3] uint8, requests: list[FillRequest]) ->
N floats``, ``requests[i]`` being the request that made ``images[i]`` (its ``meta`` carries
whatever the reward needs: an item id, the question, the target boxes). The attacker reward
(integrity x efficacy against a frozen defender) plugs in here unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from .loss import clipped_policy_loss, gaussian_kl, group_advantages
from .rollout import StepRecord, record_sde, recompute_log_prob
from .sde import SDEConfig, step_std


@dataclass
class FlowGRPOConfig:
    """Flow-GRPO settings; defaults follow the Flow-GRPO paper where it gives one."""

    sde: SDEConfig = field(default_factory=SDEConfig)
    """Noise level and the window of SDE steps."""
    group_size: int = 4
    """Fills per request (the GRPO group)."""
    learning_rate: float = 1e-4
    """AdamW learning rate of the LoRA weights."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epsilon_low: float = 1e-4
    """Lower clip of the importance ratio. Tiny, as in Flow-GRPO: log-probabilities are
    per-element means, so ratios move far less than a language model's."""
    epsilon_high: float = 1e-4
    """Upper clip of the importance ratio."""
    beta: float = 0.0
    """Weight of the KL to the reference (the transformer with LoRA off); 0 skips the
    reference forward."""
    adv_clip: float = 5.0
    """Advantages are clipped to [-adv_clip, adv_clip]."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip of the LoRA weights."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA alpha."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"])
    """Transformer modules LoRA adapts: the attention projections of Flux/Qwen-Image blocks and
    of a UNet's attention blocks, and a UNet's resnet convolutions (the born world editor's
    backbone: its attention sits only in the 12x12 middle, so the convolutions are what paint);
    names a model lacks are ignored as long as one matches."""

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"flow_grpo.group_size must be at least 2 (advantages compare a group), got {self.group_size}")
        if self.epsilon_low <= 0 or self.epsilon_high <= 0:
            raise ValueError("flow_grpo.epsilon_low and epsilon_high must be positive")
        if self.beta < 0:
            raise ValueError(f"flow_grpo.beta must be non-negative, got {self.beta}")


@dataclass
class FillRequest:
    """One thing to fill: an image, the mask to paint, the prompt, and what the reward needs."""

    image: np.ndarray
    """HxWx3 uint8."""
    mask: np.ndarray
    """HxW bool, True = paint."""
    prompt: str
    meta: dict[str, Any] = field(default_factory=dict)
    """Passed through to the reward (item id, question, target boxes, ...)."""


RewardFn = Callable[[np.ndarray, list[FillRequest]], Sequence[float]]


class Rollouts(NamedTuple):
    """One step's rollouts (P requests x G fills)."""

    images: np.ndarray
    """[P x G, H, W, 3] uint8 fills after paste-back, request-major."""
    steps: list[list[StepRecord]]
    """[P][recorded SDE steps], each record batched over the G fills."""
    rewards: torch.Tensor
    """[P, G]."""
    advantages: torch.Tensor
    """[P, G], group-normalised and clipped."""


def request_seed(seed: int, index: int) -> int:
    """A seed for request ``index`` of a step seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def add_lora(transformer: torch.nn.Module, cfg: FlowGRPOConfig) -> list[torch.nn.Parameter]:
    """Freeze ``transformer``, add a PEFT LoRA adapter to it in place; returns the LoRA parameters.
    A transformer that already holds an adapter (an earlier trainer's, or loaded weights) keeps
    it: its LoRA parameters are trained on (a new trainer is a new optimizer, not a new adapter)."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    if getattr(transformer, "peft_config", None):
        for name, p in transformer.named_parameters():
            p.requires_grad_("lora_" in name)
    else:
        transformer.add_adapter(LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.lora_target_modules))
    params = [p for p in transformer.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"LoRA found none of {cfg.lora_target_modules} in {type(transformer).__name__}")
    return params


def load_lora(transformer: torch.nn.Module, cfg: FlowGRPOConfig, state: dict[str, torch.Tensor]) -> None:
    """Give ``transformer`` the LoRA adapter of ``cfg`` (or keep the one it has) and load
    ``state`` into it (keys as ``FlowGRPOTrainer.lora_state_dict`` writes them)."""
    from peft.utils import set_peft_model_state_dict

    add_lora(transformer, cfg)
    res = set_peft_model_state_dict(transformer, state)
    unexpected = list(getattr(res, "unexpected_keys", None) or [])
    if unexpected:
        raise ValueError(f"LoRA weights do not fit this transformer ({len(unexpected)} unknown, e.g. {unexpected[0]}); were they saved with other lora settings?")


class FlowGRPOTrainer:
    """Trains a ``DiffusersEditor``'s transformer (LoRA) with Flow-GRPO against ``reward_fn``."""

    def __init__(self, editor: Any, reward_fn: RewardFn, cfg: FlowGRPOConfig | None = None):
        self.editor, self.reward_fn, self.cfg = editor, reward_fn, cfg or FlowGRPOConfig()
        self.pipe = editor.pipe
        for module in self.pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)  # only LoRA learns; text encoders and VAE stay frozen
        self.params = add_lora(self.pipe.transformer, self.cfg)
        self.optimizer = torch.optim.AdamW(self.params, lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)

    @torch.no_grad()
    def rollout(self, requests: list[FillRequest], seed: int) -> Rollouts:
        """G fills per request with SDE steps recorded, their rewards and advantages."""
        g, images, steps = self.cfg.group_size, [], []
        for p, req in enumerate(requests):
            s = request_seed(seed, p)
            with record_sde(self.pipe, self.cfg.sde, seed=s) as calls:
                images.append(self.editor.inpaint_many(req.image, req.mask, req.prompt, seed=s, n=g))  # [G, H, W, 3]
            steps.append(calls[0])
        flat = np.concatenate(images)  # [P x G, H, W, 3]
        rewards = torch.as_tensor(np.asarray(self.reward_fn(flat, [r for r in requests for _ in range(g)]), dtype=np.float32))
        if rewards.shape != (len(flat),):
            raise ValueError(f"reward_fn returned {tuple(rewards.shape)} rewards for {len(flat)} images")
        rewards = rewards.view(len(requests), g)
        adv = group_advantages(rewards).clamp(-self.cfg.adv_clip, self.cfg.adv_clip)
        return Rollouts(flat, steps, rewards, adv)

    def update(self, rollouts: Rollouts) -> dict[str, float]:
        """One optimizer step over every recorded (request, SDE step); returns mean stats."""
        transformer, cfg = self.pipe.transformer, self.cfg
        units = [(p, rec) for p, recs in enumerate(rollouts.steps) for rec in recs]
        if not units:
            raise ValueError("no SDE steps were recorded: is the SDE window inside the schedule?")
        totals: dict[str, float] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for p, rec in units:
            log_prob, mean = recompute_log_prob(transformer, rec, cfg.sde.noise_level)  # [G], [G, ...]
            kl = None
            if cfg.beta > 0:
                kl = gaussian_kl(mean, self.reference_mean(rec), step_std(rec.sigma, rec.sigma_next, cfg.sde.noise_level, rec.sigma_cap))
            adv = rollouts.advantages[p].to(log_prob.device)
            loss, stats = clipped_policy_loss(log_prob, rec.log_prob, adv, cfg.epsilon_low, cfg.epsilon_high, kl, cfg.beta)
            (loss / len(units)).backward()  # accumulate: one unit's graph at a time
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v / len(units)
        totals["grad/norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm))
        self.optimizer.step()
        return totals

    @torch.no_grad()
    def reference_mean(self, rec: StepRecord) -> torch.Tensor:
        """The step mean [G, ...] under the transformer with LoRA switched off."""
        transformer = self.pipe.transformer
        transformer.disable_adapters()
        try:
            return recompute_log_prob(transformer, rec, self.cfg.sde.noise_level)[1]
        finally:
            transformer.enable_adapters()

    def step(self, requests: list[FillRequest], seed: int) -> dict[str, float]:
        """Rollout, reward, update; returns namespaced stats with timings."""
        t0 = time.perf_counter()
        rollouts = self.rollout(requests, seed)
        t1 = time.perf_counter()
        stats = self.update(rollouts)
        stats.update({
            "reward/mean": rollouts.rewards.mean().item(),
            "reward/std": rollouts.rewards.std(unbiased=False).item(),
            "time/rollout_s": t1 - t0,
            "time/update_s": time.perf_counter() - t1,
        })
        return stats

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA weights alone (PEFT naming), for safetensors."""
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.pipe.transformer).items()}

    def save_lora(self, path: str) -> None:
        """Write the LoRA weights to ``path`` as safetensors."""
        from safetensors.torch import save_file

        save_file(self.lora_state_dict(), path)
