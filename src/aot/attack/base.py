"""The attacker (proposer) interface.

An attacker reads a batch of :class:`aot.vqa.Item` (clean image, question, and the backend's
scene for the attackers that read one) and writes one edit program per item in the text form
of :mod:`aot.edits` (the backend's ``parse`` reads it back). The
dataset builder, the self-play loop and the evaluation call only ``propose``; what sits behind
it (random sampling, hand-written heuristics, a trained model) is chosen by name in
:data:`aot.attack.ATTACKERS`.

Determinism contract: the program for an item depends only on the item (its ``seed`` included)
and the attacker's settings, never on the other items of the batch. The dataset builder relies
on it so that a shard's content does not depend on how candidates are batched or distributed.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..vqa import Item

AttackItem = Item
"""One thing to attack: an item from a backend (its scene, image (H, W, 3) uint8, question and
per-item seed, from which a stochastic attacker draws alone). The name is kept for attackers."""


@runtime_checkable
class Attacker(Protocol):
    """``propose(batch) -> list[str]``: one edit program (text form) per item, same order."""

    name: str

    def propose(self, batch: Sequence[AttackItem]) -> list[str]: ...


class ProposeOnce:
    """``attacker`` whose program for an item (by its seed) is written once and then replayed, so
    several defenders answer the same edited images without the attacker running again."""

    def __init__(self, attacker: Attacker):
        self.attacker, self.name = attacker, str(getattr(attacker, "name", type(attacker).__name__))
        self.cache: dict[int, str] = {}

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        todo = [it for it in batch if it.seed not in self.cache]
        for it, text in zip(todo, self.attacker.propose(todo) if todo else []):
            self.cache[it.seed] = text
        return [self.cache[it.seed] for it in batch]


def item_rng(item: AttackItem, tag: int) -> np.random.Generator:
    """The item's own random stream; ``tag`` keeps different attackers' streams apart."""
    return np.random.default_rng([int(item.seed), int(tag)])
