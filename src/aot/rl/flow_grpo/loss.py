"""Group-normalised advantages and the clipped policy-gradient loss of Flow-GRPO, as pure functions."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """GRPO advantages: each reward minus its group's mean, over the group's std.

    ``rewards`` is [P, G] (P prompts, G samples each). The std is the population std (a group
    of rewards [1, 0] gives advantages [1, -1] up to ``eps``); ``scale=False`` only centres.
    A group whose rewards are all equal gets advantages 0: it teaches nothing.
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + eps)


def gaussian_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: float) -> torch.Tensor:
    """KL(N(mean, std^2) || N(ref_mean, std^2)) per element, averaged over non-batch dims: [B].

    The policy and the reference share the step's std, so the KL is the squared distance of
    their means over 2 std^2.
    """
    return ((mean - ref_mean) ** 2 / (2.0 * std**2)).flatten(1).mean(1)


def clipped_policy_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    kl: torch.Tensor | None = None,
    beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO/GRPO clipped surrogate over samples [B], plus ``beta`` x KL; returns (loss, stats).

    ratio = exp(log_prob - old_log_prob); loss = mean(max(-A ratio, -A clip(ratio, 1 - lo,
    1 + hi))) + beta mean(kl). Stats are detached floats: ratio mean, the share of samples whose
    ratio was clipped, k3 approximate KL to the rollout policy, the policy and KL parts.
    """
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    policy = torch.maximum(unclipped, clipped).mean()
    kl_term = kl.mean() if kl is not None else torch.zeros((), device=policy.device)
    loss = policy + beta * kl_term
    with torch.no_grad():
        log_ratio = log_prob - old_log_prob
        stats = {
            "policy/ratio_mean": ratio.mean().item(),
            "policy/clip_frac": ((ratio < 1.0 - epsilon_low) | (ratio > 1.0 + epsilon_high)).float().mean().item(),
            "policy/approx_kl": (ratio - 1.0 - log_ratio).mean().item(),
            "losses/policy": policy.item(),
            "losses/kl": kl_term.item(),
        }
    return loss, stats
