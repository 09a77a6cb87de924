"""Record a flow-matching pipeline's denoising steps as SDE steps with log-probabilities.

``record_sde(pipe, sde, seed)`` is a context manager: while it is open, every call of the
pipeline (directly, or through ``aot.editors.DiffusersEditor``) samples its steps inside the SDE
window from ``aot.rl.flow_grpo.sde.sde_step`` instead of the scheduler's ODE step, and records
each such step: the latents before and after, its log-probability, sigma and timestep, and the
transformer's exact inputs. ``recompute_log_prob`` later runs the transformer again on those
inputs, with gradients, and scores the recorded ``next_latents``.

Nothing here knows a pipeline class. It wraps two things every diffusers flow-matching
pipeline has: ``pipe.scheduler.step`` (a FlowMatchEulerDiscreteScheduler: ``sigmas`` and
``step_index``) and ``pipe.transformer`` (a forward pre-hook keeps its keyword inputs). A
pipeline must call the transformer once per step: true classifier-free guidance (two calls,
combined) is refused with a message; guidance-distilled models (Flux's guidance embedding) are
fine. Some pipelines (Qwen-Image edit) feed the transformer extra image tokens after the
latents and keep only the first ``L`` output tokens; ``velocity`` does the same slice.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

import torch

from .sde import SDEConfig, sde_step


class StepRecord(NamedTuple):
    """One recorded SDE step of one pipeline call (B = images in that call)."""

    index: int
    """Denoising step number (0 = first, from noise)."""
    timestep: float
    """The scheduler's timestep (sigma x num_train_timesteps, after any shift)."""
    sigma: float
    sigma_next: float
    sigma_cap: float
    """Largest sigma below 1 in the schedule; caps sigma in the std's denominator."""
    latents: torch.Tensor
    """[B, ...] x before the step, as the pipeline holds it (Flux: packed [B, L, C])."""
    next_latents: torch.Tensor
    """[B, ...] the sampled x after the step."""
    log_prob: torch.Tensor
    """[B] log-probability of ``next_latents`` under the rollout policy (float32)."""
    model_kwargs: dict[str, Any]
    """The transformer's keyword inputs at this step (tensors shared, not copied)."""


def velocity(transformer: torch.nn.Module, kwargs: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
    """The transformer's prediction on recorded inputs, cut to ``like``'s token count ([B, L, C])."""
    out = transformer(**{**kwargs, "return_dict": False})[0]
    if out.dim() == 3 and out.shape[1] > like.shape[1]:
        out = out[:, : like.shape[1]]  # image-conditioned pipelines append reference tokens
    return out


def schedule_cap(sigmas: torch.Tensor) -> float:
    """The largest sigma strictly below 1 (the cap for the first step's std), or 0.99 if none."""
    below = sigmas[sigmas < 1.0]
    return float(below.max()) if len(below) and float(below.max()) > 0 else 0.99


@contextmanager
def record_sde(pipe: Any, sde: SDEConfig, seed: int) -> Iterator[list[list[StepRecord]]]:
    """Within the block, pipeline calls sample SDE steps; yields a list that gets one list of
    ``StepRecord`` per pipeline call, in call order. ``seed`` seeds the SDE noise."""
    scheduler, transformer = pipe.scheduler, getattr(pipe, "transformer", None)
    if not hasattr(scheduler, "sigmas") or "FlowMatch" not in type(scheduler).__name__ or transformer is None:
        raise ValueError(
            f"{type(pipe).__name__} ({type(scheduler).__name__}) is not a flow-matching transformer pipeline: "
            "Flow-GRPO needs a FlowMatch scheduler and a .transformer"
        )
    generator = torch.Generator("cpu").manual_seed(seed)
    calls: list[list[StepRecord]] = []
    inputs: list[dict[str, Any]] = []  # transformer inputs since the last scheduler step
    last_index = [-1]
    original_step = scheduler.step

    def keep_inputs(module, args, kwargs):
        if args:
            raise ValueError("the transformer was called with positional inputs; record_sde needs keywords")
        inputs.append(dict(kwargs))

    def step(model_output, timestep, sample, *args, **kwargs):
        out = original_step(model_output, timestep, sample, *args, **kwargs)  # keeps the scheduler's index
        i = scheduler.step_index - 1
        if i <= last_index[0]:  # the index went back: a new pipeline call began
            last_index[0] = -1
        if last_index[0] == -1:
            calls.append([])
        last_index[0] = i
        seen = list(inputs)
        inputs.clear()
        if not sde.is_sde_step(i):
            return out  # ODE step: the scheduler's own Euler step
        if len(seen) != 1:
            raise ValueError(
                f"the transformer ran {len(seen)} times in step {i}; Flow-GRPO needs one call per step "
                "(turn off true classifier-free guidance, e.g. true_cfg_scale=1)"
            )
        sigma, sigma_next = float(scheduler.sigmas[i]), float(scheduler.sigmas[i + 1])
        cap = schedule_cap(scheduler.sigmas)
        next_x, log_prob, _ = sde_step(sample, model_output, sigma, sigma_next, sde.noise_level, cap, generator)
        calls[-1].append(StepRecord(i, float(timestep), sigma, sigma_next, cap, sample, next_x, log_prob, seen[0]))
        if kwargs.get("return_dict", True):
            return type(out)(prev_sample=next_x)
        return (next_x,)

    handle = transformer.register_forward_pre_hook(keep_inputs, with_kwargs=True)
    scheduler.step = step
    try:
        yield calls
    finally:
        handle.remove()
        del scheduler.step  # the instance attribute goes; the class's method shows again


def recompute_log_prob(
    transformer: torch.nn.Module, record: StepRecord, noise_level: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability [B] of ``record.next_latents`` under ``transformer`` now, with gradients,
    and the step mean [B, ...] (for a KL to a reference)."""
    v = velocity(transformer, record.model_kwargs, record.latents)
    _, log_prob, mean = sde_step(
        record.latents, v, record.sigma, record.sigma_next, noise_level, record.sigma_cap, next_x=record.next_latents
    )
    return log_prob, mean
