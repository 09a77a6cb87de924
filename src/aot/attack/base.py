"""The attacker (proposer) interface.

An attacker reads a batch of (clean scene, clean image, question) items and writes one edit
program per item in the text form of :mod:`aot.edits` (``parse_program`` reads it back). The
dataset builder, the self-play loop and the evaluation call only ``propose``; what sits behind
it (random sampling, hand-written heuristics, a trained model) is chosen by name in
:data:`aot.attack.ATTACKERS`.

Determinism contract: the program for an item depends only on the item (its ``seed`` included)
and the attacker's settings, never on the other items of the batch. The dataset builder relies
on it so that a shard's content does not depend on how candidates are batched or distributed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..world.questions import Question
from ..world.types import Scene


@dataclass(frozen=True)
class AttackItem:
    """One thing to attack: the clean scene, its rendering (H, W, 3) uint8 and the question."""

    scene: Scene
    image: np.ndarray
    question: Question
    seed: int
    """Per-item seed; a stochastic attacker draws from it alone."""


@runtime_checkable
class Attacker(Protocol):
    """``propose(batch) -> list[str]``: one edit program (text form) per item, same order."""

    name: str

    def propose(self, batch: Sequence[AttackItem]) -> list[str]: ...


def item_rng(item: AttackItem, tag: int) -> np.random.Generator:
    """The item's own random stream; ``tag`` keeps different attackers' streams apart."""
    return np.random.default_rng([int(item.seed), int(tag)])
