"""The random proposer: valid random edit programs, seeded per item (the non-learned baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..edits import format_program, random_program
from .base import AttackItem, item_rng

RANDOM_TAG = 0xA77A


@dataclass
class RandomAttacker:
    """``random_program`` on each item's scene: programs always parse and apply, but pay no
    attention to the question (they may touch its targets; the builder's checks reject those)."""

    max_ops: int = 2
    """At most this many ops per program (1..4)."""
    kinds: tuple[str, ...] | None = None
    """Op names to draw from (default: the eight ``aot.edits.ABSOLUTE_OPS``; the registered ``random-all`` uses all of ``OP_NAMES``)."""
    name: str = "random"

    def __post_init__(self) -> None:
        if not 1 <= self.max_ops <= 4:
            raise ValueError(f"RandomAttacker: max_ops must be in 1..4, got {self.max_ops}")

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        return [format_program(random_program(it.scene, item_rng(it, RANDOM_TAG), self.max_ops, self.kinds)) for it in batch]
