"""The evaluation seed space, disjoint from every training seed.

Scene seeds are ``base * 10^7 + index`` (:func:`aot.world.dataset.scene_seed`). Evaluation
owns the base seeds ``EVAL_BASES = [900, 1000)``; everything that trains (the born defender's
``aot.pretrain.TRAIN_SEEDS`` = bases 0..49 and its dev split ``EVAL_SEEDS`` = bases 100..109,
the tokenizer corpus, AOT-SFT, self-play curricula) must draw scenes from bases below 900.
:func:`is_eval_seed` tells whether a scene seed belongs to evaluation, so training code can
assert it never touches one.

Inside the range each benchmark has its own base (``EVAL_BASES[0] + offset``), and the run's
``seed`` (0..99) picks a slice of indices: scene ``i`` of benchmark ``offset`` under run seed
``s`` is ``scene_seed(900 + offset, s * 100_000 + i)``. The arithmetic lives in
:mod:`aot.seeds` (it knows nothing of scenes; every backend's splits follow it).
"""

from __future__ import annotations

from ..seeds import EVAL_BASES, MAX_RUN_SEED, RUN_STRIDE, SEED_STRIDE, is_eval_seed
from ..seeds import eval_item_seed as eval_scene_seed
from ..seeds import item_seed as scene_seed

__all__ = ["EVAL_BASES", "MAX_RUN_SEED", "RUN_STRIDE", "SEED_STRIDE", "eval_scene_seed", "is_eval_seed", "scene_seed"]
