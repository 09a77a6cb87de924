"""Attackers (proposers): ``Attacker.propose(batch) -> list[str]`` of edit programs in text form.

Registered by name in :data:`ATTACKERS`; ``make_attacker("heuristic")`` builds one. A trained
model attacker registers itself here under its own name and plugs into the dataset builder and
the self-play loop unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

from .base import AttackItem, Attacker, item_rng
from .heuristic import STRATEGIES, HeuristicAttacker
from .random_attacker import RandomAttacker

ATTACKERS: dict[str, Callable[..., Attacker]] = {
    "random": RandomAttacker,
    "heuristic": HeuristicAttacker,
}


def make_attacker(name: str, **kwargs: Any) -> Attacker:
    """Build a registered attacker by name (keyword arguments go to its constructor)."""
    if name not in ATTACKERS:
        raise ValueError(f"unknown attacker {name!r}; choose from {', '.join(sorted(ATTACKERS))}")
    return ATTACKERS[name](**kwargs)


__all__ = ["ATTACKERS", "AttackItem", "Attacker", "HeuristicAttacker", "RandomAttacker", "STRATEGIES", "item_rng", "make_attacker"]
