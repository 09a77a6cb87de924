"""Flow-GRPO: GRPO for flow-matching diffusion editors (the paper's attacker trainer).

- ``sde``: the sampler as an SDE with a Gaussian log-probability per step (pure functions).
- ``loss``: group-normalised advantages, the clipped policy loss, the KL to a reference.
- ``rollout``: ``record_sde`` records a pipeline's SDE steps; ``recompute_log_prob`` re-scores
  one with gradients.
- ``trainer``: ``FlowGRPOTrainer`` (LoRA via PEFT) with a plain reward callable.
"""

from .loss import clipped_policy_loss, gaussian_kl, group_advantages
from .rollout import StepRecord, record_sde, recompute_log_prob
from .sde import SDEConfig, gaussian_log_prob, ode_step, sde_mean, sde_std, sde_step, step_std
from .trainer import FillRequest, FlowGRPOConfig, FlowGRPOTrainer, RewardFn, Rollouts, add_lora, load_lora

__all__ = [
    "FillRequest", "FlowGRPOConfig", "FlowGRPOTrainer", "RewardFn", "Rollouts", "SDEConfig", "StepRecord", "add_lora", "load_lora",
    "clipped_policy_loss", "gaussian_kl", "gaussian_log_prob", "group_advantages", "ode_step", "record_sde",
    "recompute_log_prob", "sde_mean", "sde_std", "sde_step", "step_std",
]
