"""Held-out evaluation of a defender: greedy accuracy, strict-3, format rate, throughput.

Scene seeds are split once for the whole project: the born defender trains on
``TRAIN_SEEDS`` and every evaluation draws from ``EVAL_SEEDS``; the ranges are disjoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..world import QUESTION_KINDS, Question, render, sample_question, sample_scene
from ..world.types import Scene
from .prompt import extract_choice, format_prompt, is_exact_format

TRAIN_SEEDS: tuple[int, int] = (0, 500_000_000)
"""Scene seeds [lo, hi) the born defender trains on."""
EVAL_SEEDS: tuple[int, int] = (1_000_000_000, 1_100_000_000)
"""Scene seeds [lo, hi) held out for evaluation; disjoint from TRAIN_SEEDS."""
EVAL_SEED_STRIDE = 1_000_003
"""Evaluation seed ``s`` starts its scenes at ``EVAL_SEEDS[0] + s * EVAL_SEED_STRIDE``."""


@dataclass(frozen=True)
class Item:
    """One (scene, image, question) triple."""

    scene: Scene
    image: np.ndarray
    question: Question


def question_for(scene_seed: int, regime: str = "simple", kind: str | None = None) -> Item | None:
    """The question drawn for a scene seed (deterministic), or None when none is valid."""
    scene = sample_scene(scene_seed, regime)
    rng = np.random.default_rng([scene_seed, 0xD0])
    q = sample_question(scene, rng, kind or QUESTION_KINDS[int(rng.integers(len(QUESTION_KINDS)))])
    return None if q is None else Item(scene, render(scene), q)


def eval_items(n: int, regime: str = "simple", seed: int = 0) -> list[Item]:
    """``n`` held-out items, one question per scene, kinds cycling through QUESTION_KINDS."""
    if not 0 <= seed < (EVAL_SEEDS[1] - EVAL_SEEDS[0]) // EVAL_SEED_STRIDE:
        raise ValueError(f"eval seed {seed} out of range")
    start = EVAL_SEEDS[0] + seed * EVAL_SEED_STRIDE
    out: list[Item] = []
    i = 0
    while len(out) < n:
        it = question_for(start + i, regime, QUESTION_KINDS[len(out) % len(QUESTION_KINDS)])
        i += 1
        if it is not None:
            out.append(it)
    return out


def evaluate_defender(
    defender,
    regime: str = "simple",
    n: int = 1000,
    seed: int = 0,
    strict_k: int = 3,
    batch_size: int = 128,
    max_new_tokens: int = 12,
    items: list[Item] | None = None,
) -> dict[str, Any]:
    """Greedy accuracy (overall and per kind), strict-k accuracy (k samples at temperature
    1.0, all correct: the paper's strict mode), exact-format rate and greedy questions/s."""
    items = items if items is not None else eval_items(n, regime, seed)
    images = [it.image for it in items]
    prompts = [format_prompt(it.question) for it in items]
    t0 = time.perf_counter()
    greedy = defender.generate(images, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    dt = time.perf_counter() - t0
    correct = [extract_choice(c[0], it.question.options) == it.question.answer for c, it in zip(greedy, items)]
    exact = [is_exact_format(c[0]) for c in greedy]
    res: dict[str, Any] = {
        "regime": regime,
        "n": len(items),
        "seed": seed,
        "accuracy": float(np.mean(correct)),
        "format_rate": float(np.mean(exact)),
        "questions_per_s": len(items) / dt,
    }
    kinds: dict[str, list[bool]] = {}
    for ok, it in zip(correct, items):
        kinds.setdefault(it.question.kind, []).append(ok)
    res["accuracy_by_kind"] = {k: float(np.mean(v)) for k, v in sorted(kinds.items())}
    if strict_k > 0:
        sampled = defender.generate(
            images, prompts, num_return_sequences=strict_k, do_sample=True, temperature=1.0,
            max_new_tokens=max_new_tokens, batch_size=max(1, batch_size // strict_k), seed=seed,
        )
        strict = [all(extract_choice(c, it.question.options) == it.question.answer for c in cs) for cs, it in zip(sampled, items)]
        res[f"strict{strict_k}_accuracy"] = float(np.mean(strict))
    return res
