"""Pretraining of the born world editor on exact world fills (``aot pretrain-editor``).

The loop, top to bottom (``pretrain_editor(cfg)``):
  0. build the pipeline (``world_editor.build_world_pipeline``, seeded) or resume it and its
     AdamW state from ``out/checkpoint.safetensors``;
  1. each step: the step's batch of exact triples (``world_data.train_batch``: a function of
     (seed, step)), the pipeline's own conditioning (``flow_inputs``), the rectified-flow loss
     (``flow_loss``, noise from a generator seeded by (seed, step)), one AdamW step on the
     transformer and both text encoders;
  2. every ``log_every`` steps a curve row; every ``save_every`` steps (and at the end, or when
     ``time_budget_min`` runs out) an atomic checkpoint (weights, their moving average, AdamW
     state), the averaged weights alone (``world_editor.safetensors``, what ships),
     ``curve.json`` and ``config.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .world_data import FillMix, stack, train_batch
from .world_editor import (
    WorldEditorArch, arch_from_metadata, arch_metadata, build_world_pipeline, flow_inputs, flow_loss, load_state,
    save_weights, state_dict, trainable_modules,
)
from .world_loop import StepBar, load_checkpoint, load_optimizer_tensors, lr_at, save_checkpoint, write_json

CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass
class EditorTrainConfig:
    """Settings of the born world editor's pretraining."""

    out: str = "runs/world_editor"
    """Folder of the checkpoint, the shipped weights, curve.json and config.json."""
    arch: WorldEditorArch = field(default_factory=WorldEditorArch)
    """Model sizes."""
    mix: FillMix = field(default_factory=lambda: FillMix(complex_frac=0.5))
    """Regimes and ops of the training triples."""
    steps: int = 3500
    """Optimizer steps (the learning-rate schedule spans them). Measured here on two cores:
    0.6 s a step at the default batch and mix, so about 36 minutes."""
    batch_size: int = 64
    """Triples per step (one regime per step)."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    warmup: int = 200
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    outside_weight: float = 0.1
    """Loss weight of tokens with no masked pixel (pasted back at use)."""
    sigmas: str = "logit_normal"
    """Noise levels drawn in training: 'logit_normal' or 'uniform'."""
    sigma_mean: float = 0.5
    """Mean of the logit-normal noise levels (positive: more steps near pure noise)."""
    weighting: str = "x0"
    """Loss weighting: 'velocity' (the x-prediction's error / sigma^2) or 'x0' (its error alone)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""
    ema: float = 0.999
    """Decay of the weights' exponential moving average (what ``world_editor.safetensors``
    holds; the usual remedy for a diffusion model's noisy last steps); 0 ships the raw weights.
    The decay ramps up as min(ema, (1 + step) / (10 + step))."""
    seed: int = 0
    """Seeds the initial weights, the data stream and the noise."""
    log_every: int = 50
    """Steps between curve rows."""
    save_every: int = 250
    """Steps between checkpoints."""
    time_budget_min: float = 0.0
    """Stop and save after this many minutes of this process (0: no limit)."""
    resume: bool = True
    """Go on from ``out/checkpoint.safetensors`` when it exists."""
    threads: int = 2
    """torch CPU threads."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("pretrain-editor: steps and batch_size must be at least 1")
        if self.weighting not in ("velocity", "x0"):
            raise ValueError(f"pretrain-editor: weighting must be 'velocity' or 'x0', got {self.weighting!r}")
        if self.sigmas not in ("logit_normal", "uniform"):
            raise ValueError(f"pretrain-editor: sigmas must be 'logit_normal' or 'uniform', got {self.sigmas!r}")
        if not 0.0 <= self.outside_weight <= 1.0:
            raise ValueError(f"pretrain-editor: outside_weight must be in [0, 1], got {self.outside_weight}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"pretrain-editor: ema is a decay in [0, 1), got {self.ema}")
        if self.log_every < 1 or self.save_every < 1:
            raise ValueError("pretrain-editor: log_every and save_every must be at least 1")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The noise generator of ``step`` (resumed runs draw the same noise)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, 0xF10]).generate_state(1)[0]))


def train_step(pipe: Any, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], cfg: EditorTrainConfig, step: int) -> dict[str, float]:
    """One optimizer step at ``step`` (0-based): batch, loss, clip, update; returns stats."""
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
    batch = train_batch(step, cfg.batch_size, cfg.mix, cfg.seed)
    inputs = flow_inputs(pipe, *stack(batch))
    loss, stats = flow_loss(pipe, inputs, step_generator(cfg.seed, step), cfg.outside_weight, cfg.sigmas, cfg.sigma_mean, cfg.weighting)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    stats["grad/norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
    opt.step()
    return stats | {"lr": opt.param_groups[0]["lr"]}


def update_ema(ema: dict[str, torch.Tensor], current: dict[str, torch.Tensor], decay: float) -> None:
    """ema <- decay ema + (1 - decay) current, in place (non-float entries are copied)."""
    for k, v in current.items():
        if v.is_floating_point():
            ema[k].lerp_(v, 1.0 - decay)
        else:
            ema[k].copy_(v)


def resolved_config(cfg: EditorTrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def pretrain_editor(cfg: EditorTrainConfig) -> dict[str, Any]:
    """Train (or go on training) the world editor; returns the run summary (also in curve.json)."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = build_world_pipeline(cfg.arch, seed=cfg.seed)
    modules = trainable_modules(pipe)
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    start, curve = 0, []
    ema = {k: v.clone() for k, v in state_dict(pipe).items()} if cfg.ema else {}
    ckpt = out / CHECKPOINT_FILE
    if cfg.resume and ckpt.exists():
        tensors, meta, start = load_checkpoint(ckpt)
        if arch_from_metadata(meta, ckpt) != cfg.arch:
            raise ValueError(f"{ckpt} holds another architecture ({meta['arch']}); pass a new --out or the same sizes")
        load_state(pipe, {k: v for k, v in tensors.items() if not k.startswith(("optim.", "ema."))})
        load_optimizer_tensors(opt, tensors)
        if cfg.ema:  # a checkpoint without an average starts one from its weights
            ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")} or {k: v.clone() for k, v in state_dict(pipe).items()}
        if (out / "curve.json").exists():
            curve = [r for r in json.loads((out / "curve.json").read_text())["curve"] if r["step"] <= start]
    write_json(out / "config.json", resolved_config(cfg))
    for m in modules.values():
        m.train()
    t0, running = time.time(), {}
    bar = StepBar("editor", cfg.steps, start, cfg.progress)

    def save(step: int) -> None:
        raw = state_dict(pipe)
        save_checkpoint(ckpt, raw | {f"ema.{k}": v for k, v in ema.items()}, opt, step, arch_metadata(cfg.arch))
        save_weights(ema or raw, cfg.arch, out)
        write_json(out / "curve.json", {"config": resolved_config(cfg), "steps_done": step, "curve": curve})

    step = start
    try:
        while step < cfg.steps:
            stats = train_step(pipe, opt, params, cfg, step)
            if cfg.ema:
                update_ema(ema, state_dict(pipe), min(cfg.ema, (1 + step) / (10 + step)))
            step += 1
            for k, v in stats.items():
                running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
            bar.update(step, f"loss {running['loss/flow']:.4f} x0 inside {running['loss/x0_inside']:.4f}")
            minutes = (time.time() - t0) / 60
            out_of_time = bool(cfg.time_budget_min and minutes >= cfg.time_budget_min)
            if step % cfg.log_every == 0 or step == cfg.steps or out_of_time:
                curve.append({"step": step, "minutes": round(minutes, 3)} | {k: round(v, 5) for k, v in running.items()})
            if step % cfg.save_every == 0 or step == cfg.steps or out_of_time:
                save(step)
            if out_of_time:
                break
    finally:
        bar.close()
    if step == start:
        save(step)
    for m in modules.values():
        m.eval()
    return {"out": str(out), "steps_done": step, "resumed_from": start, "minutes": round((time.time() - t0) / 60, 3),
            "final": curve[-1] if curve else {}}
