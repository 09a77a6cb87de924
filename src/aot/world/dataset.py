"""Sampling many scenes with questions, and writing them to disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..io import atomic_write_bytes, atomic_write_text, png_bytes
from ..seeds import SEED_STRIDE, item_seed  # noqa: F401  (SEED_STRIDE re-exported here)
from .questions import QUESTION_KINDS, Question, scene_questions
from .render import render
from .sampler import sample_scene
from .types import Scene

scene_seed = item_seed
"""Seed of scene ``index`` of base ``base``: ``base * SEED_STRIDE + index``."""


@dataclass(frozen=True)
class Sample:
    index: int
    scene: Scene
    image: np.ndarray  # (H, W, 3) uint8
    questions: list[Question]

    def record(self, image_path: str | None = None) -> dict:
        return {
            "index": self.index,
            "image": image_path,
            "scene": self.scene.to_dict(),
            "questions": [q.to_dict() for q in self.questions],
        }


def iter_samples(n: int, regime: str = "simple", seed: int = 0, questions_per_scene: int = 4, kinds: tuple[str, ...] = QUESTION_KINDS) -> Iterator[Sample]:
    for i in range(n):
        s = scene_seed(seed, i)
        scene = sample_scene(s, regime)
        yield Sample(i, scene, render(scene), scene_questions(scene, s, questions_per_scene, kinds))


def write_samples(samples: list[Sample], out: str | Path) -> Path:
    """DIR/images/NNNNNN.png and DIR/scenes.jsonl (each file written atomically)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for smp in samples:
        rel = f"images/{smp.index:06d}.png"
        atomic_write_bytes(out / rel, png_bytes(smp.image))
        lines.append(json.dumps(smp.record(rel), sort_keys=True))
    atomic_write_text(out / "scenes.jsonl", "\n".join(lines) + "\n")
    return out
