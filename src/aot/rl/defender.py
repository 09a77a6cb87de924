"""Defender RL: GRPO/DAPO on (image, question) items with the paper's defender reward."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..models.defender import Defender, question_conversation, to_pil
from ..rewards import defender_reward
from ..vqa import Question
from .grpo import RLConfig, make_trainer


@dataclass(frozen=True)
class QAItem:
    """One training item: an image (H, W, 3) uint8 and a question about it."""

    image: np.ndarray
    question: Question


def to_dataset(items: Sequence[QAItem]):
    """A ``datasets.Dataset`` with TRL's columns: prompt (conversational), image, and the reward's
    columns answer (letter) and options."""
    from datasets import Dataset

    if not items:
        raise ValueError("defender RL needs at least one item")
    return Dataset.from_dict(
        {
            "prompt": [question_conversation(it.question) for it in items],
            "image": [to_pil(it.image) for it in items],
            "answer": [it.question.answer for it in items],
            "options": [list(it.question.options) for it in items],
            "kind": [it.question.kind for it in items],
        }
    )


def train_defender(defender: Defender, items: Sequence[QAItem], cfg: RLConfig, output_dir: str | None = None) -> dict[str, Any]:
    """Run ``cfg.max_steps`` GRPO steps on ``items``; updates ``defender.model`` in place.

    Returns namespaced metrics: ``defender/reward`` (mean over steps), kept/dropped groups of the
    dynamic-sampling filter, ``time/defender_rl_s``.
    """
    t0 = time.perf_counter()
    ds = to_dataset(items)
    with tempfile.TemporaryDirectory(prefix="aot-grpo-") as tmp:
        trainer = make_trainer(defender.model, defender.processor, ds, [defender_reward], cfg, output_dir or tmp)
        trainer.train()
        defender.model = trainer.model if not cfg.lora else trainer.model.merge_and_unload()
        hist = [h for h in trainer.state.log_history if "reward" in h]
    defender.model.eval()
    rewards = [h["reward"] for h in hist]
    return {
        "defender/reward": float(np.mean(rewards)) if rewards else float("nan"),
        "defender/reward_first": float(rewards[0]) if rewards else float("nan"),
        "defender/reward_last": float(rewards[-1]) if rewards else float("nan"),
        "defender/kept_groups": int(trainer.ds_kept),
        "defender/dropped_groups": int(trainer.ds_dropped),
        "defender/trained_groups": int(trainer.ds_trained),
        "defender/steps": int(trainer.state.global_step),
        "time/defender_rl_s": time.perf_counter() - t0,
    }
