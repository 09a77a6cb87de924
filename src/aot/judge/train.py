"""Training and measuring the world judge on exact renders (``aot pretrain-judge``).

The loop (``pretrain_judge(cfg)``): each step renders a batch of fresh scenes (one regime per
step, ``complex_frac`` of them complex), builds their cell targets from the scene graph
(``model.cell_targets``) and takes one AdamW step; checkpoints, resume, ``curve.json`` and
the time budget work as in the world editor's loop (``aot.editors.world_loop``). At the end
(and with ``aot pretrain-judge --eval-only``) ``evaluate_judge`` measures precision and recall
against the renderer's truth on held-out scenes of both regimes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..editors.world_loop import StepBar, load_checkpoint, load_optimizer_tensors, lr_at, save_checkpoint, write_json
from ..seeds import SEED_STRIDE, eval_item_seed, item_seed
from .detections import Counts, match, truth_detections
from .model import JudgeArch, WorldJudge, draw_scenes, judge_loss, save_judge, training_batch

TRAIN_BASE = 861
"""Item base seed of the judge's training scenes (below the evaluation range)."""
EVAL_OFFSET = 61
"""Evaluation offset of the judge's held-out scenes (item base 961)."""
CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass
class JudgeTrainConfig:
    """Settings of the world judge's training."""

    out: str = "runs/world_judge"
    """Folder of the checkpoint, the weights (``world_judge.safetensors``), curve.json, config.json."""
    arch: JudgeArch = field(default_factory=JudgeArch)
    """Model sizes and decoding."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 32
    """Scenes per step."""
    complex_frac: float = 0.7
    """Share of steps on complex scenes."""
    lr: float = 2e-3
    """Peak AdamW learning rate."""
    warmup: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    seed: int = 0
    """Seeds the weights and the scene stream."""
    log_every: int = 50
    """Steps between curve rows."""
    save_every: int = 250
    """Steps between checkpoints."""
    eval_n: int = 500
    """Held-out scenes per regime measured at the end (0: skip)."""
    time_budget_min: float = 0.0
    """Stop and save after this many minutes (0: no limit)."""
    resume: bool = True
    """Go on from ``out/checkpoint.safetensors`` when it exists."""
    threads: int = 2
    """torch CPU threads."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("pretrain-judge: steps and batch_size must be at least 1")
        if not 0.0 <= self.complex_frac <= 1.0:
            raise ValueError(f"pretrain-judge: complex_frac is a share in [0, 1], got {self.complex_frac}")


def judge_batch(step: int, batch_size: int, complex_frac: float, arch: JudgeArch, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``step``: images (B, 3, H, W) in [0, 1] and cell targets (B, H/4, W/4, 7)."""
    rng = np.random.default_rng([int(seed), int(step), 0x1D6E])
    regime = "complex" if rng.random() < complex_frac else "simple"
    start = seed * 1_000_003 + step * batch_size
    return training_batch([item_seed(TRAIN_BASE, (start + i) % SEED_STRIDE) for i in range(batch_size)], regime, arch)


def evaluate_judge(judge: WorldJudge, n: int = 500, regimes: tuple[str, ...] = ("simple", "complex"), seed: int = 0,
                   max_dist: float = 3.0, batch_size: int = 50) -> dict[str, dict[str, float]]:
    """Precision / recall (place; place and attributes) and attribute accuracy per regime, on
    ``n`` held-out scenes each, against the renderer's truth (``detections.match``)."""
    res = {}
    for r, regime in enumerate(regimes):
        total = Counts()
        for lo in range(0, n, batch_size):
            scenes, images = draw_scenes([eval_item_seed(EVAL_OFFSET, seed, r * 50_000 + i) for i in range(lo, min(n, lo + batch_size))], regime)
            dets = judge.detect(images)
            for s, d in zip(scenes, dets):
                total = total + match(d, truth_detections(s, judge.arch.min_visible), max_dist)
        res[regime] = {k: round(v, 4) if isinstance(v, float) else v for k, v in total.summary().items()} | {"scenes": n}
    return res


def pretrain_judge(cfg: JudgeTrainConfig) -> dict[str, Any]:
    """Train (or go on training) the world judge; returns the run summary (also in curve.json)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    judge = WorldJudge(cfg.arch)
    opt = torch.optim.AdamW(judge.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, curve = 0, []
    ckpt = out / CHECKPOINT_FILE
    meta = {"format": "aot-world-judge", "arch": json.dumps(asdict(cfg.arch))}
    if cfg.resume and ckpt.exists():
        tensors, saved, start = load_checkpoint(ckpt)
        if saved.get("arch") != meta["arch"]:
            raise ValueError(f"{ckpt} holds another architecture ({saved.get('arch')}); pass a new --out or the same sizes")
        judge.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optim.")})
        load_optimizer_tensors(opt, tensors)
        if (out / "curve.json").exists():
            curve = [r for r in json.loads((out / "curve.json").read_text())["curve"] if r["step"] <= start]
    write_json(out / "config.json", asdict(cfg))
    judge.train()
    t0, running, step = time.time(), {}, start
    bar = StepBar("judge", cfg.steps, start, cfg.progress)

    def save(step: int, extra: dict[str, Any] | None = None) -> None:
        save_checkpoint(ckpt, {k: v.detach().contiguous() for k, v in judge.state_dict().items()}, opt, step, meta)
        save_judge(judge, out)
        write_json(out / "curve.json", {"config": asdict(cfg), "steps_done": step, "curve": curve} | (extra or {}))

    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
            x, t = judge_batch(step, cfg.batch_size, cfg.complex_frac, cfg.arch, cfg.seed)
            loss, stats = judge_loss(judge(x), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(judge.parameters(), 1.0)
            opt.step()
            step += 1
            for k, v in stats.items():
                running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
            bar.update(step, f"loss {running['loss/total']:.3f}")
            minutes = (time.time() - t0) / 60
            out_of_time = bool(cfg.time_budget_min and minutes >= cfg.time_budget_min)
            if step % cfg.log_every == 0 or step == cfg.steps or out_of_time:
                curve.append({"step": step, "minutes": round(minutes, 3)} | {k: round(v, 4) for k, v in running.items()})
            if step % cfg.save_every == 0 or step == cfg.steps or out_of_time:
                save(step)
            if out_of_time:
                break
    finally:
        bar.close()
    judge.eval()
    metrics = evaluate_judge(judge, cfg.eval_n, seed=cfg.seed) if cfg.eval_n else {}
    save(step, {"eval": metrics})
    return {"out": str(out), "steps_done": step, "resumed_from": start, "minutes": round((time.time() - t0) / 60, 3),
            "final": curve[-1] if curve else {}, "eval": metrics}
