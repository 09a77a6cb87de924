"""GRPO/DAPO wiring on TRL, shared by the defender and the attacker.

``RLConfig`` holds the paper's settings (loss 'dapo', clip 0.2 / 0.28, no KL, 5 rollouts at
temperature 1.0, AdamW wd 0.01, token-level averaging, dynamic sampling). ``make_trainer``
builds a ``DynamicSamplingGRPOTrainer`` from it for any model + processor pair.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from trl import GRPOConfig, GRPOTrainer

from ..progress import RichProgress
from .dynamic_sampling import keep_completions, refill_groups
from .rollouts import unique_prompts


@dataclass
class RLConfig:
    """GRPO/DAPO settings; defaults follow the paper's defender config."""

    learning_rate: float = 1e-6
    """AdamW learning rate (paper: 1e-6 for a 7B model; tiny models need far more, e.g. 2e-5)."""
    weight_decay: float = 0.01
    """AdamW weight decay (paper: 0.01)."""
    num_generations: int = 5
    """Rollouts per prompt (the GRPO group size; paper: 5)."""
    prompts_per_step: int = 8
    """Prompts per optimizer step (paper: global batch 128)."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (paper: 1.0)."""
    epsilon_low: float = 0.2
    """Lower clip of the importance ratio (paper: 0.2)."""
    epsilon_high: float = 0.28
    """Upper clip of the importance ratio, DAPO's clip-higher (paper: 0.28)."""
    beta: float = 0.0
    """KL coefficient (paper: no KL term)."""
    loss_type: str = "dapo"
    """TRL loss type; 'dapo' = token-level averaging over the whole batch."""
    dynamic_sampling: bool = True
    """Drop groups whose mean reward is <= ds_low or >= ds_high (DAPO dynamic sampling)."""
    ds_mode: str = "mean"
    """'mean': drop groups whose mean reward is <= ds_low or >= ds_high (the paper's rule, for
    rewards in [0, 1]); 'std': drop groups whose rewards are all equal (for other reward ranges)."""
    ds_low: float = 0.01
    """Groups with mean reward at or below this are dropped."""
    ds_high: float = 0.99
    """Groups with mean reward at or above this are dropped."""
    refill: int = 1
    """DAPO's refill: each step samples ``refill x prompts_per_step`` prompts and trains on the
    first ``prompts_per_step`` groups the dynamic-sampling filter keeps (1: no over-sampling, a
    step trains on whatever survives the filter)."""
    max_steps: int = 10
    """Optimizer steps."""
    max_completion_length: int = 16
    """Longest completion in tokens."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    seed: int = 0
    """Seed for sampling and data order."""
    lora: bool = False
    """Train a PEFT LoRA adapter instead of all weights."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA alpha."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Module names LoRA adapts."""
    train_vision: bool = True
    """Train the vision tower too (paper: yes). False freezes it."""
    logging_steps: int = 1
    """Log every N steps."""
    shared_prefill: bool = True
    """Generate a prompt's rollouts from one prefill (image encoded once, KV cache repeated;
    ``aot.rl.rollouts``) instead of TRL's batch with the prompt repeated per rollout. Same
    distribution, other draws for a given seed."""

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2: GRPO advantages compare rollouts within a group")
        if self.ds_mode not in ("mean", "std"):
            raise ValueError(f"ds_mode must be 'mean' or 'std', got {self.ds_mode!r}")
        if self.ds_mode == "mean" and not 0.0 <= self.ds_low < self.ds_high <= 1.0:
            raise ValueError(f"need 0 <= ds_low < ds_high <= 1, got {self.ds_low}, {self.ds_high}")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0 for rollouts; use greedy decoding only in evaluation")
        if self.prompts_per_step < 1 or self.max_steps < 1:
            raise ValueError("prompts_per_step and max_steps must be >= 1")
        if self.epsilon_low <= 0 or self.epsilon_high <= 0:
            raise ValueError("epsilon_low and epsilon_high must be > 0")
        if self.refill < 1:
            raise ValueError(f"refill must be >= 1 (prompts sampled per step = refill x prompts_per_step), got {self.refill}")
        if self.refill > 1 and not self.dynamic_sampling:
            raise ValueError("refill > 1 needs dynamic_sampling: without the filter there is nothing to refill")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DynamicSamplingGRPOTrainer(GRPOTrainer):
    """GRPOTrainer plus the paper's dynamic-sampling filter (see ``dynamic_sampling.py``)."""

    def __init__(
        self, *args: Any, ds_enabled: bool = True, ds_low: float = 0.01, ds_high: float = 0.99, ds_mode: str = "mean",
        logits_processor: Any = None, refill_target: int | None = None, shared_prefill: bool = False, **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.logits_processor = logits_processor  # applied to rollouts (transformers path only)
        self.shared_prefill = shared_prefill
        self.shared_rollouts = 0  # generate calls that took the shared-prefill path
        self.ds_enabled, self.ds_low, self.ds_high, self.ds_mode = ds_enabled, ds_low, ds_high, ds_mode
        self._last_rewards_per_func: torch.Tensor | None = None
        self.ds_kept = 0
        self.ds_dropped = 0
        self.refill_target = refill_target  # groups trained per step when over-sampling (None: all)
        self.ds_trained = 0  # groups that reached the loss
        self.generate_seconds = 0.0  # time in rollout generation
        self.reward_seconds = 0.0  # time in reward functions (the attacker's includes defender calls)

    def _generate(self, prompts):  # type: ignore[override]
        t = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self.generate_seconds += time.perf_counter() - t

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs):  # type: ignore[override]
        """TRL's rollout generation, with ``self.logits_processor`` handed to ``model.generate``.

        TRL (1.16) builds its ``generate`` call itself and takes no logits processor, so the
        unwrapped model's ``generate`` is wrapped for the duration of the call. Rollouts are then
        sampled under the constraint while TRL computes log-probs under the unconstrained
        policy (the masked tokens keep their probability mass there): the update is slightly
        off-policy, which is accepted. vLLM and continuous batching are left unconstrained."""
        proc = self.logits_processor
        if (proc is None and not self.shared_prefill) or self.use_vllm or getattr(self, "use_transformers_continuous_batching", False):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs)
        from ..models.defender import Defender, processor_list

        if hasattr(proc, "reset"):
            proc.reset()
        model = self.accelerator.unwrap_model(self.model_wrapped)
        plain = model.generate
        extra = {"logits_processor": processor_list(proc)} if proc is not None else {}
        shared = Defender(model, self.processing_class) if self.shared_prefill else None

        def generate(*a: Any, **kw: Any) -> Any:
            tensors = {k: v for k, v in kw.items() if isinstance(v, torch.Tensor)}
            unique = unique_prompts(tensors, num_generations) if shared is not None and not a else None
            if unique is None:
                return plain(*a, **kw, **extra)
            # rows of one prompt come in contiguous groups of G: one prefill per prompt; the
            # shared path calls model.generate itself, so the plain method is put back meanwhile
            self.shared_rollouts += 1
            gen = {k: v for k, v in kw.items() if k not in tensors}
            model.generate = lambda *a2, **kw2: plain(*a2, **kw2, **extra)
            try:
                return shared.generate_ids(unique, num_generations, shared_prefill=True, **gen)
            finally:
                model.generate = generate

        model.generate = generate
        try:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs)
        finally:
            del model.generate  # back to the class's method

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[override]
        t = time.perf_counter()
        rpf = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.reward_seconds += time.perf_counter() - t
        self._last_rewards_per_func = rpf  # (N_global, n_funcs), gathered over processes
        return rpf

    def _generate_and_score_completions(self, inputs):  # type: ignore[override]
        out = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        if not self.ds_enabled or mode != "train" or self._last_rewards_per_func is None:
            return out
        rpf = self._last_rewards_per_func
        rewards = (rpf * self.reward_weights.to(rpf.device).unsqueeze(0)).nansum(dim=1)  # (N_global,)
        keep = keep_completions(rewards, self.num_generations, self.ds_low, self.ds_high, self.ds_mode)
        groups = keep.numel() // self.num_generations
        kept = int(keep.view(-1, self.num_generations)[:, 0].sum())
        self.ds_kept += kept
        self.ds_dropped += groups - kept
        self._metrics[mode]["dynamic_sampling/kept_groups"].append(float(kept))
        self._metrics[mode]["dynamic_sampling/dropped_groups"].append(float(groups - kept))
        if self.refill_target is not None and self.accelerator.num_processes == 1:
            return self._refill(out, keep)
        n_local = out["completion_ids"].size(0)
        start = self.accelerator.process_index * n_local
        keep_local = keep[start : start + n_local].to(out["completion_mask"].device)
        out["completion_mask"] = out["completion_mask"] * keep_local.unsqueeze(1).to(out["completion_mask"].dtype)
        out["advantages"] = out["advantages"] * keep_local.to(out["advantages"].dtype)
        mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
        out["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
        self.ds_trained += min(kept, groups)
        return out

    def _refill(self, out: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
        """Keep the rows of the first ``refill_target`` informative groups of an over-sampled
        batch (one process). ``out`` rows are (groups x G) completions, grouped contiguously."""
        from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

        g = self.num_generations
        gidx, live = refill_groups(keep.view(-1, g)[:, 0], self.refill_target)
        rows = (gidx.unsqueeze(1) * g + torch.arange(g)).flatten()  # (kept groups x G,)
        n = out["completion_ids"].size(0)
        split = split_pixel_values_by_grid(out)
        sel: dict[str, Any] = {}
        for k, v in split.items():
            if isinstance(v, torch.Tensor) and v.ndim > 0 and v.size(0) == n:
                sel[k] = v[rows.to(v.device)]
            elif isinstance(v, list) and len(v) == n:
                sel[k] = [v[i] for i in rows.tolist()]
            else:
                sel[k] = v
        sel = unsplit_pixel_values_by_grid(sel)
        if not live:  # nothing informative: one group, masked out
            sel["completion_mask"] = sel["completion_mask"] * 0
            sel["advantages"] = sel["advantages"] * 0
        mask = sel["completion_mask"] if "tool_mask" not in sel else sel["completion_mask"] * sel["tool_mask"]
        sel["num_items_in_batch"] = mask.sum()
        self.ds_trained += int(gidx.numel()) if live else 0
        return sel


def grpo_args(cfg: RLConfig, output_dir: str, **overrides: Any) -> GRPOConfig:
    """TRL GRPOConfig for ``cfg`` on CPU (or whatever accelerate finds when use_cpu=False)."""
    kw: dict[str, Any] = dict(
        output_dir=output_dir,
        use_cpu=not torch.cuda.is_available(),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.refill * cfg.prompts_per_step * cfg.num_generations,
        gradient_accumulation_steps=1,
        temperature=cfg.temperature,
        epsilon=cfg.epsilon_low,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        max_steps=cfg.max_steps,
        max_completion_length=cfg.max_completion_length,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        scale_rewards="group",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        bf16=False,
        fp16=False,
        # TRL turns activation checkpointing on by default; for small models it only costs time
        # and it disables the KV cache during rollouts (every decode step re-encodes the image)
        gradient_checkpointing=False,
    )
    kw.update(overrides)
    return GRPOConfig(**kw)


def make_trainer(
    model: Any,
    processor: Any,
    train_dataset: Any,
    reward_funcs: list[Callable[..., list[float]]],
    cfg: RLConfig,
    output_dir: str,
    progress: bool = True,
    desc: str = "GRPO",
    logits_processor: Any = None,
    **overrides: Any,
) -> DynamicSamplingGRPOTrainer:
    """``logits_processor``: applied to every rollout (e.g. the attacker's edit-language
    constraint); ``overrides`` go to ``GRPOConfig``."""
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.lora_target_modules, lora_dropout=0.0)
    if not cfg.train_vision:
        for name, p in model.named_parameters():
            if "visual" in name or "vision" in name:
                p.requires_grad_(False)
    trainer = DynamicSamplingGRPOTrainer(
        model=model,
        processing_class=processor,
        reward_funcs=reward_funcs,
        args=grpo_args(cfg, output_dir, **overrides),
        train_dataset=train_dataset,
        peft_config=peft_config,
        ds_enabled=cfg.dynamic_sampling,
        ds_low=cfg.ds_low,
        ds_high=cfg.ds_high,
        ds_mode=cfg.ds_mode,
        logits_processor=logits_processor,
        refill_target=cfg.prompts_per_step if cfg.refill > 1 else None,
        shared_prefill=cfg.shared_prefill,
    )
    # our own progress bar instead of the Trainer's printed log dicts
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(RichProgress(desc))
    return trainer
