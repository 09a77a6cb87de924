"""DAPO dynamic sampling: groups whose rewards are all (nearly) equal carry no signal.

The paper drops groups whose mean reward is <= 0.01 or >= 0.99. TRL's GRPOTrainer does not,
so ``DynamicSamplingGRPOTrainer`` applies this filter after scoring: completions of a dropped
group get a zero loss mask and zero advantage, so they add neither gradient nor tokens to the
token-level normaliser. Unlike DAPO we do not re-sample to refill the batch (a batch with
fewer live groups takes a smaller step); kept/dropped counts are logged as
``dynamic_sampling/kept_groups`` and ``dynamic_sampling/dropped_groups``.

DAPO itself keeps sampling until the batch is full of informative groups. ``RLConfig.refill``
approximates that with a fixed over-sample: each step draws ``refill x prompts_per_step``
prompts, scores them all, and trains on the first ``prompts_per_step`` informative groups
(:func:`refill_groups`); the rest are discarded before the loss (no forward/backward on them).
"""

from __future__ import annotations

import torch


def keep_groups(rewards: torch.Tensor, num_generations: int, low: float = 0.01, high: float = 0.99) -> torch.Tensor:
    """rewards: (N,) with N = groups * num_generations, grouped contiguously.
    Returns a bool (groups,) mask: True where low < mean reward < high."""
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {num_generations}")
    means = torch.nanmean(rewards.view(-1, num_generations).double(), dim=1)  # (groups,)
    tol = 1e-6  # rewards arrive as float32: a mean of "exactly" 0.99 must still count as saturated
    return (means > low + tol) & (means < high - tol)


def keep_varied_groups(rewards: torch.Tensor, num_generations: int, tol: float = 1e-6) -> torch.Tensor:
    """For rewards outside [0, 1] (the attacker's): keep groups whose rewards are not all equal.
    rewards: (N,) grouped contiguously; returns (groups,) bool."""
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {num_generations}")
    g = rewards.view(-1, num_generations).double()
    return (g.max(dim=1).values - g.min(dim=1).values) > tol


def keep_completions(rewards: torch.Tensor, num_generations: int, low: float = 0.01, high: float = 0.99, mode: str = "mean") -> torch.Tensor:
    """The group mask (``mode`` 'mean': the paper's thresholds; 'std': drop constant groups)
    expanded to one entry per completion: (N,) bool."""
    if mode == "mean":
        keep = keep_groups(rewards, num_generations, low, high)
    elif mode == "std":
        keep = keep_varied_groups(rewards, num_generations)
    else:
        raise ValueError(f"unknown dynamic-sampling mode {mode!r}; use 'mean' or 'std'")
    return keep.repeat_interleave(num_generations)


def refill_groups(keep: torch.Tensor, target: int) -> tuple[torch.Tensor, bool]:
    """DAPO's refill on an over-sampled batch. keep: (groups,) bool from the filter.
    Returns (indices of the groups to train on, in order, at most ``target``; live) where
    ``live`` is False when no group is informative: then the first group alone is returned, to
    be masked out (a step needs at least one row)."""
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    idx = torch.nonzero(keep, as_tuple=False).flatten()[:target]
    if idx.numel() == 0:
        return torch.zeros(1, dtype=torch.long), False
    return idx, True
