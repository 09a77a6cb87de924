"""The flow-matching sampler as an SDE with a Gaussian log-probability per step (Flow-GRPO).

A rectified-flow model predicts the velocity ``v = eps - x0`` of ``x_s = (1 - s) x0 + s eps``
at noise level ``s`` (sigma, 1 = pure noise, 0 = image). The ODE sampler steps
``x <- x + v dt`` with ``dt = s_next - s < 0``; it is deterministic, so a sample has no
likelihood to push on. Flow-GRPO swaps it for the reverse-time SDE with the same marginals:

    score(x)  = -(x + (1 - s) v) / s                    (from eps = x + (1 - s) v)
    std_s     = a * sqrt(s / (1 - s))                     (noise level a, about 0.7)
    mean      = x + [v + std_s^2 / (2 s) * (x + (1 - s) v)] dt
    x_next    = mean + std_s * sqrt(-dt) * z,   z ~ N(0, I)

so each step is a Gaussian whose log-density of the sampled ``x_next`` is the policy's
log-probability. At ``s = 1`` (the first step of most schedules) ``s / (1 - s)`` is infinite:
``sigma_cap`` (the largest sigma below 1 in the schedule) caps ``s`` inside the square root's
denominator. Log-probabilities are averaged over the latent's elements, not summed, so an
importance ratio stays near 1 whatever the latent size (Flow-GRPO does the same; it is why
its clip range is about 1e-4 rather than GRPO's 0.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class SDEConfig:
    """Where the sampler injects noise, and how much."""

    noise_level: float = 0.7
    """Flow-GRPO's a in std = a * sqrt(sigma / (1 - sigma))."""
    window_start: int = 0
    """First denoising step (0-based) that is an SDE step."""
    window_end: int | None = None
    """One past the last SDE step; None = through the last step. Steps outside the window are
    the deterministic ODE step and carry no log-probability (Flow-GRPO-Fast trains on a window
    of a few early steps only)."""

    def __post_init__(self) -> None:
        if self.noise_level <= 0:
            raise ValueError(f"sde.noise_level must be positive, got {self.noise_level}")
        if self.window_start < 0 or (self.window_end is not None and self.window_end <= self.window_start):
            raise ValueError(f"sde window [{self.window_start}, {self.window_end}) is empty or negative")

    def is_sde_step(self, i: int) -> bool:
        """Whether denoising step ``i`` samples from the SDE (and so has a log-probability)."""
        return i >= self.window_start and (self.window_end is None or i < self.window_end)


def sde_std(sigma: float, noise_level: float, sigma_cap: float) -> float:
    """``a * sqrt(sigma / (1 - min(sigma, sigma_cap)))``: the SDE's diffusion coefficient at ``sigma``."""
    if not 0.0 < sigma_cap < 1.0:
        raise ValueError(f"sigma_cap must be in (0, 1), got {sigma_cap}")
    return noise_level * math.sqrt(sigma / (1.0 - min(sigma, sigma_cap)))


def step_std(sigma: float, sigma_next: float, noise_level: float, sigma_cap: float) -> float:
    """Std of x_next given x: ``std_s * sqrt(-dt)``."""
    return sde_std(sigma, noise_level, sigma_cap) * math.sqrt(sigma - sigma_next)


def sde_mean(x: torch.Tensor, v: torch.Tensor, sigma: float, sigma_next: float, std: float) -> torch.Tensor:
    """Mean of the SDE step from ``x`` with velocity ``v`` (same shape as ``x``)."""
    dt = sigma_next - sigma  # < 0: sampling runs from noise to image
    return x + (v + std**2 / (2.0 * sigma) * (x + (1.0 - sigma) * v)) * dt


def gaussian_log_prob(y: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(y; mean, std^2 I) averaged over every dim but the first: [B, ...] -> [B]."""
    logp = -((y - mean) ** 2) / (2.0 * std**2) - math.log(std) - LOG_SQRT_2PI
    return logp.flatten(1).mean(1)


def sde_step(
    x: torch.Tensor,
    v: torch.Tensor,
    sigma: float,
    sigma_next: float,
    noise_level: float,
    sigma_cap: float,
    generator: torch.Generator | None = None,
    next_x: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SDE step: (x_next [B, ...] in x's dtype, its log-probability [B], the step mean [B, ...]).

    With ``next_x`` given, nothing is sampled: the log-probability of that ``next_x`` is
    computed (recomputing a recorded step with gradients). The maths runs in float32; the
    sample is cast to ``x``'s dtype *before* its log-probability is taken, so a recorded step
    and its recomputation score the very same tensor.
    """
    mean = sde_mean(x.float(), v.float(), sigma, sigma_next, sde_std(sigma, noise_level, sigma_cap))
    s = step_std(sigma, sigma_next, noise_level, sigma_cap)
    if next_x is None:
        # noise drawn on the CPU generator then moved: same seed, same sample on any device
        z = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device)
        next_x = (mean + s * z).to(x.dtype)
    return next_x, gaussian_log_prob(next_x.float(), mean, s), mean


def ode_step(x: torch.Tensor, v: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """The deterministic Euler step ``x + v (sigma_next - sigma)`` (the stock sampler)."""
    return x + v * (sigma_next - sigma)
