"""Training and evaluating the diffusion attacker: Flow-GRPO on the editor's LoRA against a frozen defender.

    train_fills(attacker, defender, items, cfg, scoring, seed, start, stop)
      0. the defender's clean answers; keep the clean-correct items with a fill proposal
      1. each step k: ``requests_per_step`` proposals (items in turn, from k), the step's
         reward (``fill_reward`` seeded by (seed, k)), one ``FlowGRPOTrainer.step`` (G SDE fills
         per proposal, group advantages, one AdamW step on the LoRA)
    train_diffusion_run(...)   ``aot attacker train --kind diffusion``: the same, with an atomic
      checkpoint (LoRA, AdamW state, step) every ``save_every`` steps, resume, a progress bar
      and ``curve.json``

A step's proposals and noise are functions of (seed, step), so a resumed run takes the steps an
unbroken one takes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import BackendConfig
from .base import AttackItem
from .diffusion import DiffusionAttacker, DiffusionAttackerConfig
from .scoring import ScoringConfig, Scored, breakdown, clean_correctness, summarize

CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass
class DiffusionTrainConfig:
    """`aot attacker train --kind diffusion`: the attacker, how its fills are scored, the run."""

    diffusion: DiffusionAttackerConfig = field(default_factory=DiffusionAttackerConfig)
    """Proposer, editor, judge and Flow-GRPO settings (``steps`` is the run's length)."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """The attacker reward: k defender samples, penalties, efficacy (as the program attacker's)."""
    clean_correct_only: bool = True
    """Train on the questions the frozen defender answers right on the clean image (on the
    others every fill scores 0: a group teaches nothing)."""
    save_every: int = 10
    """Steps between checkpoints (and at the end)."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """Whose items (the world only, for now)."""

    def __post_init__(self) -> None:
        if self.save_every < 1:
            raise ValueError("save_every must be at least 1")
        if not self.backend.is_default:
            raise ValueError(f"backend: the diffusion attacker works on the world backend only (its judge reads world objects), not {self.backend.name!r}")


def step_seed(seed: int, step: int) -> int:
    """The seed of step ``step`` (its rollout noise and the defender's samples)."""
    return int(np.random.SeedSequence([int(seed), int(step), 0xD1F]).generate_state(1)[0] % 2**31)


def fill_requests(attacker: DiffusionAttacker, defender: Any, items: Sequence[AttackItem], scoring: ScoringConfig, seed: int,
                  clean_correct_only: bool = True) -> tuple[list[Any], dict[str, Any]]:
    """The training requests: one per item with a fill proposal (clean-correct ones only unless
    told otherwise; all of them when the defender is right on none); and their counts."""
    clean = clean_correctness(defender, items, scoring, seed=seed)
    props = attacker.proposals(items)
    reqs = [attacker.request(it, t, e, cc) for it, (t, e, _), cc in zip(items, props, clean) if e is not None]
    kept = [r for r in reqs if r.meta["clean_correct"]] if clean_correct_only else reqs
    stats = {"attacker/clean_correct_rate": float(np.mean(clean)) if clean else float("nan"),
             "attacker/proposal_rate": len(reqs) / len(items) if items else float("nan"), "attacker/train_items": len(kept or reqs)}
    if not reqs:
        raise ValueError(f"none of the {len(items)} training items got a fill proposal from proposer {attacker.cfg.proposer!r}")
    return kept or reqs, stats


def step_stats(history: Sequence[Scored]) -> dict[str, float]:
    s = summarize(history)
    return {"attacker/rollout_integrity_rate": s["integrity_pass_rate"], "attacker/rollout_success_rate": s["success_rate"]}


def train_fills(attacker: DiffusionAttacker, trainer: Any, defender: Any, requests: Sequence[Any], cfg: DiffusionAttackerConfig,
                scoring: ScoringConfig, seed: int, start: int = 0, stop: int | None = None,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Flow-GRPO steps ``start`` .. ``stop`` (default ``cfg.steps``) on ``requests`` (cycled);
    returns one stats row per step (also handed to ``on_step(steps done, row)``)."""
    rows = []
    r = cfg.requests_per_step
    for step in range(start, cfg.steps if stop is None else stop):
        batch = [requests[(step * r + j) % len(requests)] for j in range(r)]
        history: list[Scored] = []
        trainer.reward_fn = attacker.reward_fn(defender, scoring, step_seed(seed, step), history)
        stats = trainer.step(batch, seed=step_seed(seed, step)) | step_stats(history)
        rows.append(stats)
        if on_step is not None:
            on_step(step + 1, stats)
    return rows


def make_trainer(attacker: DiffusionAttacker) -> Any:
    """A Flow-GRPO trainer on the attacker's editor (a fresh optimizer; the LoRA is kept if it has one)."""
    from ..rl.flow_grpo import FlowGRPOTrainer

    return FlowGRPOTrainer(attacker.editor, lambda images, requests: [0.0] * len(images), attacker.cfg.flow_grpo)


def train_diffusion_attacker(attacker: DiffusionAttacker, defender: Any, items: Sequence[AttackItem], scoring: ScoringConfig, seed: int,
                             clean_correct_only: bool = True) -> dict[str, Any]:
    """One training run (the loop's attacker phase): a fresh optimizer, ``cfg.steps`` steps;
    namespaced metrics as ``aot.attack.train.train_attacker`` returns them."""
    t0 = time.perf_counter()
    with frozen(defender):
        requests, m = fill_requests(attacker, defender, items, scoring, seed, clean_correct_only)
        trainer = make_trainer(attacker)
        rows = train_fills(attacker, trainer, defender, requests, attacker.cfg, scoring, seed)
    return m | curve_summary(rows) | {"attacker/steps": len(rows), "time/attacker_rl_s": time.perf_counter() - t0}


def curve_summary(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean reward over the run, the first and last step's, and the mean rollout rates."""
    nan = float("nan")
    rewards = [r["reward/mean"] for r in rows]
    return {
        "attacker/reward": float(np.mean(rewards)) if rows else nan,
        "attacker/reward_first": rewards[0] if rows else nan,
        "attacker/reward_last": rewards[-1] if rows else nan,
        "attacker/rollout_integrity_rate": float(np.nanmean([r["attacker/rollout_integrity_rate"] for r in rows])) if rows else nan,
        "attacker/rollout_success_rate": float(np.nanmean([r["attacker/rollout_success_rate"] for r in rows])) if rows else nan,
    }


class frozen:
    """Within the block the defender's weights take no gradient (as the program attacker's RL)."""

    def __init__(self, defender: Any):
        self.params = list(defender.model.parameters()) if hasattr(defender, "model") else []

    def __enter__(self) -> None:
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for p, f in zip(self.params, self.flags):
            p.requires_grad_(f)


def evaluate_diffusion(attacker: DiffusionAttacker, defender: Any, items: Sequence[AttackItem], cfg: ScoringConfig | None = None,
                       seed: int = 0, keep_images: bool = False) -> tuple[dict[str, Any], list[Scored]]:
    """As ``aot.attack.train.evaluate_attacker`` (greedy defender by default): success, integrity
    pass and proposal ('parse') rates, fill-op mix, by op and by question kind; and the fills."""
    cfg = cfg or ScoringConfig(k=1, temperature=0.0)
    t0 = time.perf_counter()
    clean = clean_correctness(defender, items, cfg)
    scored = attacker.score(defender, items, clean, cfg, seed=seed, keep_images=keep_images)
    out = summarize(scored)
    out["attacker"] = "diffusion"
    out["seconds"] = time.perf_counter() - t0
    out["reject_reasons"] = dict(Counter(r.split(":")[0] for s in scored for r in s.reasons).most_common(8))
    out["by_op"] = breakdown(scored, [s.ops[0] if s.ops else "none" for s in scored])
    out["by_kind"] = breakdown(scored, [it.question.kind for it in items])
    return out, scored


# --- `aot attacker train --kind diffusion` ----------------------------------------------------
def differing(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like configs."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b)) for k in differing(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def train_diffusion_run(out: str | Path, defender_spec: str, config: str | Path | None, overrides: list[str], n_items: int, seed: int,
                        resume: bool = True, progress: bool = True, threads: int = 2, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole job: OUT/checkpoint.safetensors, OUT/attacker (the trained attacker),
    OUT/curve.json, OUT/config.json, OUT/metrics.json. Resumes from the checkpoint when the
    config is the one it was made with."""
    import torch

    from ..config import load_config
    from ..editors.world_loop import StepBar, load_checkpoint, load_optimizer_tensors, save_checkpoint, write_json
    from ..io import atomic_write_json
    from ..models.defender import load_defender
    from ..rl.flow_grpo import load_lora
    from .data import ATTACK_TRAIN_BASE, attack_items

    torch.set_num_threads(threads)
    out = Path(out)
    cfg = load_config(DiffusionTrainConfig, config, overrides)
    cfg.diffusion.check("diffusion.")
    resolved = json.loads(json.dumps({"config": asdict(cfg), "defender": defender_spec, "items": n_items, "seed": seed}))
    ckpt = out / CHECKPOINT_FILE
    if resume and ckpt.exists():
        prev = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else {}
        changed = [k for k in differing(prev, resolved) if k != "config.diffusion.steps"]  # a run may be lengthened
        if changed:
            raise ValueError(f"{out} holds a run of other settings ({', '.join(changed[:4])} differ); pass --no-resume to start afresh or another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", resolved)
    attacker = DiffusionAttacker(cfg.diffusion)
    defender = load_defender(defender_spec)
    items = attack_items(n_items, ATTACK_TRAIN_BASE + seed)
    t0 = time.perf_counter()
    with frozen(defender):
        requests, metrics = fill_requests(attacker, defender, items, cfg.scoring, seed, cfg.clean_correct_only)
        trainer = make_trainer(attacker)
        start, curve = 0, []
        if resume and ckpt.exists():
            tensors, _, start = load_checkpoint(ckpt)
            # into the trainer's own adapter (its parameters are the optimizer's), then AdamW's state
            load_lora(attacker.transformer, cfg.diffusion.flow_grpo, {k[5:]: v for k, v in tensors.items() if k.startswith("lora.")})
            load_optimizer_tensors(trainer.optimizer, tensors)
            if (out / "curve.json").exists():
                curve = [r for r in json.loads((out / "curve.json").read_text())["curve"] if r["step"] <= start]
            log(f"resuming after step {start} of {cfg.diffusion.steps}")
        bar = StepBar("flow-grpo", cfg.diffusion.steps, start, progress)

        def save(step: int) -> None:
            save_checkpoint(ckpt, {f"lora.{k}": v for k, v in attacker.lora_state().items()}, trainer.optimizer, step)
            attacker.save(out / "attacker")
            write_json(out / "curve.json", {"steps_done": step, "curve": curve})

        def on_step(step: int, stats: dict[str, float]) -> None:
            curve.append({"step": step, "minutes": round((time.perf_counter() - t0) / 60, 4)} | {k: round(float(v), 6) for k, v in stats.items()})
            bar.update(step, f"reward {stats['reward/mean']:.3f} integrity {stats['attacker/rollout_integrity_rate']:.2f}")
            if step % cfg.save_every == 0 or step == cfg.diffusion.steps:
                save(step)

        try:
            train_fills(attacker, trainer, defender, requests, cfg.diffusion, cfg.scoring, seed, start, on_step=on_step)
        finally:
            bar.close()
        if start >= cfg.diffusion.steps:
            save(start)
    metrics |= curve_summary(curve) if curve else {}
    metrics |= {"attacker/steps": cfg.diffusion.steps, "resumed_from": start, "time/attacker_rl_s": time.perf_counter() - t0}
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
