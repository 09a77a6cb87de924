"""Attackers (proposers): ``Attacker.propose(batch) -> list[str]`` of edit programs in text form.

Registered by name in :data:`ATTACKERS`; ``make_attacker("heuristic")`` builds one. A trained
model attacker registers itself here under its own name and plugs into the dataset builder and
the self-play loop unchanged.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any, Callable

from ..backends import DEFAULT_BACKEND, get_backend
from ..edits import OP_NAMES
from .base import AttackItem, Attacker, ProposeOnce, item_rng
from .heuristic import STRATEGIES, HeuristicAttacker
from .random_attacker import RandomAttacker

ATTACKERS: dict[str, Callable[..., Attacker]] = {
    "random": RandomAttacker,
    "heuristic": HeuristicAttacker,
    # the same with the relative ops: the baselines at the model attacker's action space
    "random-all": partial(RandomAttacker, kinds=OP_NAMES, name="random-all"),
    "heuristic-relative": partial(HeuristicAttacker, relative=True, name="heuristic-relative"),
}


def takes_backend(name: str) -> bool:
    """Whether the registered attacker ``name`` writes for any backend (its constructor takes
    one); the others read the world's scene graph and work on the world alone."""
    return "backend" in inspect.signature(ATTACKERS[name]).parameters


def make_attacker(name: str, backend: Any = None, **kwargs: Any) -> Attacker:
    """Build a registered attacker by name (keyword arguments go to its constructor).
    ``backend`` (an instance or a registered name; None: the default) reaches the attackers
    that write for any backend; naming another backend for a world-only attacker is an error."""
    if name not in ATTACKERS:
        raise ValueError(f"unknown attacker {name!r}; choose from {', '.join(sorted(ATTACKERS))}")
    if backend is not None:
        if takes_backend(name):
            kwargs["backend"] = backend
        elif get_backend(backend).name != DEFAULT_BACKEND:
            neutral = ", ".join(sorted(n for n in ATTACKERS if takes_backend(n)))
            raise ValueError(f"attacker {name!r} reads the world's scene graph and works on the world backend only; "
                             f"on backend {get_backend(backend).name!r} use one of {neutral} (or a trained model attacker)")
    return ATTACKERS[name](**kwargs)


__all__ = ["ATTACKERS", "AttackItem", "Attacker", "HeuristicAttacker", "ProposeOnce", "RandomAttacker", "STRATEGIES", "item_rng", "make_attacker", "takes_backend"]
