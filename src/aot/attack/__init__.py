"""Attackers (proposers): ``Attacker.propose(batch) -> list[str]`` of edit programs in text form.

Registered by name in :data:`ATTACKERS`; ``make_attacker("heuristic")`` builds one. A trained
model attacker registers itself here under its own name and plugs into the dataset builder and
the self-play loop unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from ..edits import OP_NAMES
from .base import AttackItem, Attacker, item_rng
from .heuristic import STRATEGIES, HeuristicAttacker
from .random_attacker import RandomAttacker

ATTACKERS: dict[str, Callable[..., Attacker]] = {
    "random": RandomAttacker,
    "heuristic": HeuristicAttacker,
    # the same with the relative ops: the baselines at the model attacker's action space
    "random-all": partial(RandomAttacker, kinds=OP_NAMES, name="random-all"),
    "heuristic-relative": partial(HeuristicAttacker, relative=True, name="heuristic-relative"),
}


def make_attacker(name: str, **kwargs: Any) -> Attacker:
    """Build a registered attacker by name (keyword arguments go to its constructor)."""
    if name not in ATTACKERS:
        raise ValueError(f"unknown attacker {name!r}; choose from {', '.join(sorted(ATTACKERS))}")
    return ATTACKERS[name](**kwargs)


__all__ = ["ATTACKERS", "AttackItem", "Attacker", "HeuristicAttacker", "RandomAttacker", "STRATEGIES", "item_rng", "make_attacker"]
