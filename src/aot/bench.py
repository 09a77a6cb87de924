"""Benchmarks that print figures (not timed tests): defender evaluation throughput, sampled
(k per question) generation with and without the shared prefill, and GRPO speed."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch


def eval_throughput(model: str = "base", n: int = 256, batch_size: int = 64, repeats: int = 3, regime: str = "simple") -> dict[str, Any]:
    """Greedy questions/s, batched (median over repeats), and unbatched for the ratio."""
    from .models.defender import load_defender
    from .models.prompt import format_prompt
    from .selfplay import clean_items

    d = load_defender(model)
    items = clean_items(n, 890, regime)  # bases below 900: no evaluation seed is touched
    imgs, prompts = [it.image for it in items], [format_prompt(it.question) for it in items]
    d.generate(imgs[:8], prompts[:8], batch_size=8)  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        d.generate(imgs, prompts, batch_size=batch_size)
        rates.append(n / (time.perf_counter() - t))
    m = min(32, n)
    t = time.perf_counter()
    d.generate(imgs[:m], prompts[:m], batch_size=1)
    single = m / (time.perf_counter() - t)
    med = statistics.median(rates)
    return {"model": model, "regime": regime, "n": n, "batch_size": batch_size, "threads": torch.get_num_threads(),
            "greedy_questions_per_s": med, "unbatched_questions_per_s": single, "batching_speedup": med / single}


def sampled_throughput(model: str = "base", n: int = 128, k: int = 3, batch_size: int = 64, repeats: int = 3,
                       regime: str = "simple", max_new_tokens: int = 12) -> dict[str, Any]:
    """``Defender.generate`` sampled ``k`` times per question (temperature 1, as strict-k
    evaluation, AOT-SFT answering and reward scoring do): the plain ``num_return_sequences``
    path against the shared prefill, questions/s as medians over ``repeats`` runs, interleaved."""
    from .models.defender import load_defender
    from .models.evaluation import eval_items
    from .models.prompt import format_prompt

    d = load_defender(model)
    items = eval_items(n, regime)
    imgs, prompts = [it.image for it in items], [format_prompt(it.question) for it in items]
    kw = dict(num_return_sequences=k, do_sample=True, temperature=1.0, max_new_tokens=max_new_tokens, batch_size=batch_size)
    for shared in (False, True):  # warm-up
        d.generate(imgs[:8], prompts[:8], shared_prefill=shared, seed=0, **kw)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        for shared in (False, True):
            t = time.perf_counter()
            d.generate(imgs, prompts, shared_prefill=shared, seed=r, **kw)
            rates[shared].append(n / (time.perf_counter() - t))
    old, new = statistics.median(rates[False]), statistics.median(rates[True])
    return {"model": model, "regime": regime, "n": n, "k": k, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
            "repeats": repeats, "threads": torch.get_num_threads(),
            "plain_questions_per_s": old, "shared_questions_per_s": new, "speedup": new / old}


def grpo_speed(model: str = "base", steps: int = 5, prompts_per_step: int = 8, num_generations: int = 5, max_completion_length: int = 16,
               repeats: int = 1) -> dict[str, Any]:
    """Defender GRPO steps/s with the paper's settings, rollouts generated as TRL does (the
    prompt repeated per rollout) and with the shared prefill, interleaved ``repeats`` times
    (medians); the share of a step spent generating, for each."""
    from .models.defender import load_defender
    from .rewards import defender_reward
    from .rl.defender import to_dataset
    from .rl.grpo import RLConfig, make_trainer
    from .selfplay import clean_items
    import tempfile

    ds = to_dataset(clean_items(steps * prompts_per_step, 891, "complex"))
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(repeats):
        for shared in (False, True):
            d = load_defender(model)
            cfg = RLConfig(learning_rate=1e-5, max_steps=steps, prompts_per_step=prompts_per_step, num_generations=num_generations,
                           max_completion_length=max_completion_length, dynamic_sampling=False, shared_prefill=shared)
            with tempfile.TemporaryDirectory() as tmp:
                tr = make_trainer(d.model, d.processor, ds, [defender_reward], cfg, tmp, progress=False)
                t = time.perf_counter()
                tr.train()
                total = time.perf_counter() - t
            runs[shared].append((total, tr.generate_seconds))
    out: dict[str, Any] = {"model": model, "steps": steps, "prompts_per_step": prompts_per_step, "num_generations": num_generations,
                           "repeats": repeats, "threads": torch.get_num_threads()}
    for shared, name in ((False, "repeated"), (True, "shared")):
        total = statistics.median(t for t, _ in runs[shared])
        gen = statistics.median(g for _, g in runs[shared])
        out |= {f"{name}_seconds": total, f"{name}_steps_per_s": steps / total,
                f"{name}_rollouts_per_s": steps * prompts_per_step * num_generations / total, f"{name}_generation_share": gen / total}
    out["speedup"] = out["shared_steps_per_s"] / out["repeated_steps_per_s"]
    return out


def flow_grpo_speed(editor: str = "tiny", size: int = 64, requests: int = 2, group_size: int = 4, sample_steps: int = 8,
                    repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Flow-GRPO on the diffusion attacker's editor at ``size`` x ``size`` (simple world scenes,
    one object's box each): rollouts/s (SDE fills with log-probabilities recorded) and the
    seconds of a training step (rollout + update), medians over ``repeats`` steps after one
    warm-up step. The reward is a seeded random number per fill (a stand-in: the defender and
    judge are timed elsewhere), so every step has advantages to back-propagate."""
    from PIL import Image

    from .attack.diffusion import load_fill_editor
    from .backends import get_backend
    from .editors.box_ops import box_mask
    from .editors.world_data import BOX_PAD, fill_box
    from .rl.flow_grpo import FillRequest, FlowGRPOConfig, FlowGRPOTrainer

    if size % 16:
        raise ValueError(f"size must be a multiple of 16 (the editor's token), got {size}")
    ed = load_fill_editor(editor, sample_steps, seed)
    items = get_backend("world").items("train", requests, 890, pool="replay")  # simple 64x64 scenes, below the evaluation range
    reqs = []
    for it in items:
        o = it.scene.objects[0]
        side = it.image.shape[0]
        box = fill_box([o], side, side, BOX_PAD)  # the first object's box, scaled with the image
        image = it.image if side == size else np.asarray(Image.fromarray(it.image).resize((size, size)))
        box = tuple(min(size, round(v * size / side)) for v in box)
        reqs.append(FillRequest(image, box_mask(image.shape[:2], box), f"{o.size} {o.color} {o.material} {o.shape}"))
    rng = np.random.default_rng(seed)
    trainer = FlowGRPOTrainer(ed, lambda images, _: rng.random(len(images)).tolist(), FlowGRPOConfig(group_size=group_size))
    trainer.step(reqs, seed=0)  # warm-up
    rollout, update = [], []
    for r in range(repeats):
        stats = trainer.step(reqs, seed=r + 1)
        rollout.append(stats["time/rollout_s"])
        update.append(stats["time/update_s"])
    n = requests * group_size
    med_r, med_u = statistics.median(rollout), statistics.median(update)
    return {
        "editor": editor, "size": size, "requests": requests, "group_size": group_size, "sample_steps": sample_steps, "repeats": repeats,
        "threads": torch.get_num_threads(), "rollouts_per_s": n / med_r, "rollout_seconds": med_r, "update_seconds": med_u,
        "step_seconds": statistics.median([a + b for a, b in zip(rollout, update)]),
    }
