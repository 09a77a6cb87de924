"""The random proposer: valid random edit programs, seeded per item (the non-learned baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..backends import get_backend
from .base import AttackItem, item_rng

RANDOM_TAG = 0xA77A


@dataclass
class RandomAttacker:
    """The backend's ``random_program`` on each item (the world: ``aot.edits.random_program`` on
    its scene; another backend: random boxes clear of the targets, or its own sampler): programs
    that parse and apply but pay no attention to the question (they may touch its targets; the
    builder's checks reject those)."""

    max_ops: int = 2
    """At most this many ops per program (1..4)."""
    kinds: tuple[str, ...] | None = None
    """Op names to draw from (default: the backend's; the world's are the eight
    ``aot.edits.ABSOLUTE_OPS``, and the registered ``random-all`` uses all of ``OP_NAMES``)."""
    name: str = "random"
    backend: Any = None
    """Whose edit language to write: a backend or its registered name (None: the default, the world)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_ops <= 4:
            raise ValueError(f"RandomAttacker: max_ops must be in 1..4, got {self.max_ops}")

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        backend = get_backend(self.backend)
        return [backend.random_program(it, item_rng(it, RANDOM_TAG), self.max_ops, self.kinds) for it in batch]
