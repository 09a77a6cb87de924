"""The evaluation seed space, disjoint from every training seed.

Scene seeds are ``base * 10^7 + index`` (:func:`aot.world.dataset.scene_seed`). Evaluation
owns the base seeds ``EVAL_BASES = [900, 1000)``; everything that trains (the born defender's
``aot.pretrain.TRAIN_SEEDS`` = bases 0..49 and its dev split ``EVAL_SEEDS`` = bases 100..109,
the tokenizer corpus, AOT-SFT, self-play curricula) must draw scenes from bases below 900.
:func:`is_eval_seed` tells whether a scene seed belongs to evaluation, so training code can
assert it never touches one.

Inside the range each benchmark has its own base (``EVAL_BASES[0] + offset``), and the run's
``seed`` (0..99) picks a slice of indices: scene ``i`` of benchmark ``offset`` under run seed
``s`` is ``scene_seed(900 + offset, s * 100_000 + i)``.
"""

from __future__ import annotations

from ..world.dataset import SEED_STRIDE, scene_seed

EVAL_BASES: tuple[int, int] = (900, 1000)
"""Base seeds [lo, hi) reserved for evaluation; training must use bases < 900."""
RUN_STRIDE = 100_000
"""Scene indices per run seed: a benchmark holds at most this many scenes per run."""
MAX_RUN_SEED = 100


def eval_scene_seed(offset: int, run_seed: int, index: int) -> int:
    """Scene seed of scene ``index`` of the benchmark at base ``900 + offset`` under ``run_seed``."""
    if not 0 <= offset < EVAL_BASES[1] - EVAL_BASES[0]:
        raise ValueError(f"benchmark seed offset {offset} outside [0, {EVAL_BASES[1] - EVAL_BASES[0]})")
    if not 0 <= run_seed < MAX_RUN_SEED:
        raise ValueError(f"evaluation run seed {run_seed} outside [0, {MAX_RUN_SEED})")
    if not 0 <= index < RUN_STRIDE:
        raise ValueError(f"benchmark scene index {index} outside [0, {RUN_STRIDE})")
    return scene_seed(EVAL_BASES[0] + offset, run_seed * RUN_STRIDE + index)


def is_eval_seed(seed: int) -> bool:
    """True when a scene seed lies in the evaluation range (never train on one)."""
    return EVAL_BASES[0] <= int(seed) // SEED_STRIDE < EVAL_BASES[1]
