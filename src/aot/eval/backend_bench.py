"""Benchmarks on any backend: its held-out items clean, and under a held-out attacker's edits.

The world benchmarks (:mod:`aot.eval.benchmarks`) generate scenes; these two draw from the
evaluation's backend (``EvalConfig.backend``: the world, the photo backend's file, a user's
own) through the seam alone, so ``aot eval --backend photos --data FILE`` has a suite:

- ``backend-clean``: accuracy on the backend's eval split (slot ``CLEAN_OFFSET``);
- ``backend-attacked``: the held-out attacker (``EvalConfig.attacker``) proposes one program per
  eval item (slot ``ATTACKED_OFFSET``); the backend edits and judges it; an edit that fails to
  parse or fails integrity leaves the clean image (a void attack). Clean and attacked accuracy,
  success (right on the clean image, wrong on the edited one), parse and integrity pass rates.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..backends import build_backend
from .benchmarks import Benchmark, Metrics, _mc, _modes, register, resolve_attacker
from .core import EvalConfig, Item, Outcome
from .metrics import accuracy

CLEAN_OFFSET = 50
"""Eval slot (base 900 + 50) of ``backend-clean``."""
ATTACKED_OFFSET = 51
"""Eval slot of ``backend-attacked``'s base items."""


def _clean_build(cfg: EvalConfig, n: int) -> list[Item]:
    items = build_backend(cfg.backend).items("eval", n, CLEAN_OFFSET, cfg.seed)
    return [Item("backend-clean", it.image, it.question, {"subset": it.question.kind, "id": it.id or str(it.seed)}) for it in items]


def _attacked_build(cfg: EvalConfig, n: int) -> list[Item]:
    backend = build_backend(cfg.backend)
    attacker = resolve_attacker(cfg.attacker, backend)
    bases = backend.items("eval", n, ATTACKED_OFFSET, cfg.seed)
    texts = attacker.propose(bases)
    if len(texts) != len(bases):
        raise ValueError(f"attacker {getattr(attacker, 'name', attacker)!r} returned {len(texts)} programs for {len(bases)} items")
    name = str(getattr(attacker, "name", type(attacker).__name__))
    judge = backend.run_judge_settings(cfg.integrity)
    items: list[Item] = []
    attacked: list[Item] = []
    for k, (base, text) in enumerate(zip(bases, texts)):
        a = backend.attempt(base, text, judge)
        meta = {"base": k, "id": base.id or str(base.seed), "attacker": name, "program": text, "parsed": a.program is not None,
                "valid": a.passed, "ops": [getattr(op, "name", type(op).__name__) for op in a.program or ()]}
        items.append(Item("backend-attacked", base.image, base.question, {**meta, "role": "clean"}))
        if a.passed and a.edit is not None:
            attacked.append(Item("backend-attacked", a.edit.image, base.question, {**meta, "role": "attacked"}))
    return items + attacked


def _attacked_metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
    clean = [(it, o) for it, o in zip(items, outs) if it.meta["role"] == "clean"]
    edited = {it.meta["base"]: o for it, o in zip(items, outs) if it.meta["role"] == "attacked"}
    res: Metrics = {}
    for mode in _modes(cfg):
        def ok(o: Outcome) -> bool:
            return o.correct if mode == "greedy" else o.strict_correct(cfg.strict_trials)

        c = [ok(o) for _, o in clean]
        a = [ok(edited.get(it.meta["base"], o)) for it, o in clean]  # a void attack: the clean outcome
        res[mode] = {"clean/accuracy": accuracy(c), "attacked/accuracy": accuracy(a), "success": accuracy([x and not y for x, y in zip(c, a)])}
    ops = Counter(op for it, _ in clean if it.meta["valid"] for op in it.meta["ops"])
    total = sum(ops.values())
    res["info"] = {
        "n": float(len(clean)),
        "parse_rate": accuracy([it.meta["parsed"] for it, _ in clean]),
        "integrity_pass_rate": accuracy([it.meta["valid"] for it, _ in clean]),
        **{f"op_mix/{op}": v / total for op, v in sorted(ops.items())},
    }
    res["about"] = {"attacker": clean[0][0].meta["attacker"] if clean else "?"}  # type: ignore[dict-item]
    return res


register(Benchmark(
    "backend-clean", "Clean accuracy on the backend's held-out items (its eval split).",
    "question", 16, _clean_build, _mc(), in_all=False, any_backend=True,
))
register(Benchmark(
    "backend-attacked", "Accuracy under a held-out attacker's integrity-checked edits on the backend's held-out items.",
    "base question", 8, _attacked_build, _attacked_metrics, headline=("attacked/accuracy", "success"), in_all=False, any_backend=True,
))
