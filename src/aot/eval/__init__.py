"""Evaluation: world benchmarks, real-file adapters, metrics and the suite runner.

    from aot.eval import EvalConfig, run_suite
    results = run_suite(defender, "all", EvalConfig(n=8, seed=0))
    results["metrics"]["pope/greedy/adversarial/f1"]

Benchmarks are registered by name in :data:`BENCHMARKS` (``aot.eval.benchmarks`` lists them);
every metric is computed greedily and in strict-k mode (``EvalConfig.strict_trials``, paper: 3).
Scenes come only from the evaluation seed range (:mod:`aot.eval.seeds`), disjoint from every
training seed.
"""

from . import adapters  # noqa: F401  (registers the file benchmarks)
from . import backend_bench  # noqa: F401  (registers the benchmarks on any backend)
from .benchmarks import BENCHMARKS, HR_REGIME, Benchmark, register, resolve_attacker, resolve_suite
from .core import EvalConfig, Item, Outcome, score_items
from .seeds import EVAL_BASES, eval_scene_seed, is_eval_seed
from .suite import build_items, results_table_md, run_suite, write_results

__all__ = [
    "BENCHMARKS", "EVAL_BASES", "HR_REGIME", "Benchmark", "EvalConfig", "Item", "Outcome", "build_items", "eval_scene_seed",
    "is_eval_seed", "register", "resolve_attacker", "resolve_suite", "results_table_md", "run_suite", "score_items", "write_results",
]
