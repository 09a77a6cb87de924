"""The item seed space: training and evaluation seeds never meet.

Item seeds are ``base * SEED_STRIDE + index``. Evaluation owns the base seeds
``EVAL_BASES = [900, 1000)``; everything that trains must draw items from bases below 900.
Inside the evaluation range each use (a benchmark, a monitor set) has its own base
``900 + offset``, and a run seed (0..99) picks a slice of indices: item ``i`` of offset ``o``
under run seed ``s`` is ``item_seed(900 + o, s * RUN_STRIDE + i)``. A backend's ``train`` and
``eval`` splits are these two ranges (see :mod:`aot.backends`).
"""

from __future__ import annotations

SEED_STRIDE = 10_000_000
"""Item seeds are base * SEED_STRIDE + index: distinct base seeds never share an item."""
EVAL_BASES: tuple[int, int] = (900, 1000)
"""Base seeds [lo, hi) reserved for evaluation; training must use bases < 900."""
RUN_STRIDE = 100_000
"""Item indices per run seed: an evaluation set holds at most this many items per run."""
MAX_RUN_SEED = 100


def item_seed(base: int, index: int) -> int:
    """Seed of item ``index`` of the stream ``base`` (the world calls it ``scene_seed``)."""
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"scene index {index} outside [0, {SEED_STRIDE})")
    return int(base) * SEED_STRIDE + int(index)


def eval_item_seed(offset: int, run_seed: int, index: int) -> int:
    """Seed of item ``index`` of the evaluation set at base ``900 + offset`` under ``run_seed``."""
    if not 0 <= offset < EVAL_BASES[1] - EVAL_BASES[0]:
        raise ValueError(f"benchmark seed offset {offset} outside [0, {EVAL_BASES[1] - EVAL_BASES[0]})")
    if not 0 <= run_seed < MAX_RUN_SEED:
        raise ValueError(f"evaluation run seed {run_seed} outside [0, {MAX_RUN_SEED})")
    if not 0 <= index < RUN_STRIDE:
        raise ValueError(f"benchmark scene index {index} outside [0, {RUN_STRIDE})")
    return item_seed(EVAL_BASES[0] + offset, run_seed * RUN_STRIDE + index)


def is_eval_seed(seed: int) -> bool:
    """True when an item seed lies in the evaluation range (never train on one)."""
    return EVAL_BASES[0] <= int(seed) // SEED_STRIDE < EVAL_BASES[1]
