"""Benchmarks generated from the world, registered by name.

Each benchmark builds a list of :class:`~aot.eval.core.Item` from evaluation seeds only
(:mod:`aot.eval.seeds`) and computes its metrics from the scored items, for greedy decoding
and for strict-k mode. ``EvalConfig.n`` / ``EvalConfig.sizes`` count *units*; model queries
per unit in brackets.

- ``vstar`` (unit: question [1]): V*-like attribute and relative-position questions about
  small targets (no large target, at least one small) in complex scenes; accuracy overall
  and per kind.
- ``hr`` (question [1]): the same on ``HR_REGIME``: a 128 px canvas, 16-32 objects, targets
  all small.
- ``pope`` (question per subset [3]; rounded up to even): yes/no existence, half positive,
  half negative; negatives drawn at random, "popular" (colour and shape each present, the
  pair absent) or "adversarial" (an existing object with one attribute changed). Accuracy,
  precision, recall, F1 and yes-ratio per subset, and their mean.
- ``hallusion`` (group [6]): a figure and 2 edited variants (a question target recoloured or
  reshaped, moved or removed, or the absent object of a negative existence question added)
  with 2 paired questions whose answers are recomputed exactly on each variant: they may
  change, that is the point. aAcc, fAcc, qAcc.
- ``clean`` (question [1]): simple scenes, every question kind: the forgetting check.
- ``robust`` (base question [1 + 8]): a fixed attack suite, each edit op type alone, drawn at
  random until the integrity check passes (the answer is unchanged). Accuracy and attack
  success per op type and over all attacks.
- ``heldout`` (base question [1 + valid attacks]): accuracy under a held-out attacker
  (``EvalConfig.attacker``); edits that fail to parse or fail the integrity check leave the
  image clean. Success, parse rate, integrity pass rate, op mix.

Attack success is the share of attacked questions that the model got right on the clean image
and gets wrong on the edited one. Add a benchmark with :func:`register`; ``run_suite`` and
``aot eval --suite`` pick it up by name.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import get_backend
from ..edits import EditError, MoveObject, Op, RemoveObject, ReplaceAttrs, AddObject, apply_program, random_program
from ..edits.ops import ABSOLUTE_OPS, OP_NAMES
from ..vqa import Item as VQAItem
from ..world import render, sample_question, sample_scene
from ..world.questions import LETTERS, NEGATIVE_STRATEGIES, Question, Target, evaluate, existence_question, scene_questions
from ..world.sampler import RegimeConfig
from ..world.types import ATTRIBUTE_VALUES, ATTRIBUTES, MATERIALS, SIZE_NAMES, SIZES, TEXTURE_KINDS, Scene
from .core import EvalConfig, Item, Outcome, answer_text, mc_metrics
from .metrics import accuracy, hallusion_metrics, pope_metrics
from .seeds import eval_scene_seed

HR_REGIME = RegimeConfig(
    name="hr",
    size=128,
    n_objects=(16, 32),
    size_weights=(0.75, 0.25, 0.0),
    backgrounds=TEXTURE_KINDS + ("gradient",),
    clutter=(8, 20),
    min_gap=-1.0,
    overlap_factor=0.8,
    brightness=(0.8, 1.15),
    contrast=(0.7, 1.1),
)
"""HR-like scenes: a larger canvas, more objects, no large ones (``EvalConfig.hr_size`` resizes it)."""

Metrics = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    unit: str
    default_n: int
    build: Callable[[EvalConfig, int], list[Item]]
    """(cfg, units) -> items."""
    metrics: Callable[[Sequence[Item], Sequence[Outcome], EvalConfig], Metrics]
    """-> {"greedy": {...}, "strict3": {...}, "info": {...}[, "about": {...}]}: metrics per decoding
    mode, mode-free counts and rates (numbers), and optional descriptive strings."""
    headline: tuple[str, ...] = ("accuracy",)
    """Metric names (within each decoding mode) shown in comparison tables."""
    in_all: bool = True
    """Part of ``--suite all`` (file benchmarks are not: they need files)."""
    any_backend: bool = False
    """Draws its items from the evaluation's backend (``EvalConfig.backend``); the others
    generate world scenes. On a backend other than the world, ``all`` means these."""


BENCHMARKS: dict[str, Benchmark] = {}


def register(b: Benchmark) -> Benchmark:
    if b.name in BENCHMARKS:
        raise ValueError(f"benchmark {b.name!r} is already registered")
    BENCHMARKS[b.name] = b
    return b


def resolve_suite(names: str | Sequence[str], backend: str = "world") -> list[str]:
    """'all' | 'a,b' | ['a', 'b'] -> registered names, in registry order for 'all'. On a
    ``backend`` other than the world only the benchmarks that draw from it can run, and 'all'
    means them."""
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    world = backend == "world"
    out: list[str] = []
    for n in (x.strip() for x in names):
        if not n:
            continue
        if n == "all":
            out += [k for k, b in BENCHMARKS.items() if (b.in_all if world else b.any_backend)]
        elif n in BENCHMARKS:
            if not world and not BENCHMARKS[n].any_backend:
                ok = ", ".join(k for k, b in BENCHMARKS.items() if b.any_backend)
                raise ValueError(f"benchmark {n!r} generates world scenes; on backend {backend!r} choose from all, {ok}")
            out.append(n)
        else:
            raise ValueError(f"unknown benchmark {n!r}; choose from all, {', '.join(BENCHMARKS)}")
    seen: set[str] = set()
    return [n for n in out if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


# --- shared helpers -----------------------------------------------------------------------
def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(tag)])


def _draw(offset: int, cfg: EvalConfig, n: int, make: Callable[[int, int], list[Item] | None], max_tries: int = 20) -> list[Item]:
    """Call ``make(scene_seed, k)`` on successive evaluation scenes until ``n`` units were made
    (``k`` = units so far); ``make`` returns the unit's items or None to skip the scene."""
    out: list[Item] = []
    units = 0
    for i in range(n * max_tries):
        if units >= n:
            break
        got = make(eval_scene_seed(offset, cfg.seed, i), units)
        if got:
            out += got
            units += 1
    if units < n:
        raise RuntimeError(f"benchmark at offset {offset}: only {units} of {n} units after {n * max_tries} scenes")
    return out


def _target_sizes(scene: Scene, q: Question) -> list[str]:
    return [scene.get(t.id).size for t in q.targets]  # type: ignore[union-attr]


def _ok_small(scene: Scene, q: Question, small_only: bool) -> bool:
    sizes = _target_sizes(scene, q)
    if small_only:
        return bool(sizes) and all(s == "small" for s in sizes)
    return bool(sizes) and "large" not in sizes and "small" in sizes


def _modes(cfg: EvalConfig) -> list[str]:
    return ["greedy"] + ([cfg.strict_mode] if cfg.strict_trials else [])


# --- V*-like and HR-like ------------------------------------------------------------------
def _small_target_build(bench: str, offset: int, regime: Callable[[EvalConfig], str | RegimeConfig], small_only: bool):
    def build(cfg: EvalConfig, n: int) -> list[Item]:
        reg = regime(cfg)

        def make(seed: int, k: int) -> list[Item] | None:
            scene = sample_scene(seed, reg)
            rng = _rng(seed, 0x57A)
            kind = ("attribute", "relation")[k % 2]
            for _ in range(6):
                q = sample_question(scene, rng, kind)
                if q is not None and _ok_small(scene, q, small_only):
                    return [Item(bench, render(scene), q, {"subset": kind, "scene_seed": seed})]
            return None

        return _draw(offset, cfg, n, make)

    return build


def _hr_regime(cfg: EvalConfig) -> RegimeConfig:
    if cfg.hr_size == HR_REGIME.size:
        return HR_REGIME
    from dataclasses import replace

    scale = (cfg.hr_size / HR_REGIME.size) ** 2  # keep the object density
    lo, hi = HR_REGIME.n_objects
    return replace(HR_REGIME, size=cfg.hr_size, n_objects=(max(1, round(lo * scale)), max(1, round(hi * scale))))


def _mc(group_key: str | None = "subset"):
    def metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
        m = mc_metrics(items, outs, cfg.strict_trials, group_key)
        m["info"] = {"n": float(len(items))}
        return m

    return metrics


register(Benchmark(
    "vstar", "V*-like: attribute and relative-position questions about small targets in complex scenes.",
    "question", 16, _small_target_build("vstar", 0, lambda cfg: "complex", small_only=False), _mc(),
    headline=("accuracy",),
))
register(Benchmark(
    "hr", "HR-like: attribute and relative-position questions about small targets on a larger, busier canvas.",
    "question", 16, _small_target_build("hr", 1, lambda cfg: _hr_regime(cfg), small_only=True), _mc(),
    headline=("accuracy",),
))


# --- POPE-like ----------------------------------------------------------------------------
def _pope_build(cfg: EvalConfig, n: int) -> list[Item]:
    n += n % 2  # balanced: an even number of questions per subset
    items: list[Item] = []
    for si, strategy in enumerate(NEGATIVE_STRATEGIES):

        def make(seed: int, k: int, strategy: str = strategy) -> list[Item] | None:
            scene = sample_scene(seed, "complex")
            positive = k % 2 == 0  # balanced: alternate yes / no
            q = existence_question(scene, _rng(seed, 0x909E), positive=positive, strategy=strategy)
            if q is None:
                return None
            return [Item("pope", render(scene), q, {"subset": strategy, "label": q.answer_text, "scene_seed": seed})]

        items += _draw(2 + 10 * si, cfg, n, make)  # offsets 2, 12, 22: one base per subset
    return items


def _pope_metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
    res: Metrics = {m: {} for m in _modes(cfg)}
    k = cfg.strict_trials
    for mode in res:
        per: list[dict[str, float]] = []
        present = list(dict.fromkeys(it.meta["subset"] for it in items))
        for strategy in [s for s in NEGATIVE_STRATEGIES if s in present] + [s for s in present if s not in NEGATIVE_STRATEGIES]:
            sel = [i for i, it in enumerate(items) if it.meta["subset"] == strategy]
            if mode == "greedy":
                preds = [answer_text(items[i].question, outs[i].pred) for i in sel]
            else:
                preds = [answer_text(items[i].question, outs[i].strict_pred(items[i].question, k)) for i in sel]
            m = pope_metrics(preds, [items[i].meta["label"] for i in sel])
            per.append(m)
            res[mode].update({f"{strategy}/{key}": v for key, v in m.items()})
        for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            res[mode][f"mean/{key}"] = float(np.mean([p[key] for p in per])) if per else math.nan
    res["info"] = {"n": float(len(items))}
    return res


register(Benchmark(
    "pope", "POPE-like: balanced yes/no existence with random, popular and adversarial negatives.",
    "question per subset", 8, _pope_build, _pope_metrics,
    headline=("adversarial/f1", "mean/accuracy"),
))


# --- Hallusion-like -----------------------------------------------------------------------
HALLUSION_KINDS = ("existence", "attribute", "relation", "count")
HALLUSION_VARIANTS = 2
"""Edited variants per figure (plus the original)."""


def _variant_op(scene: Scene, rng: np.random.Generator, qs: list[Question]) -> Op | None:
    """One edit aimed at a question: change, move or remove one of its targets, or add the
    object a negative existence question asks about."""
    q = qs[int(rng.integers(len(qs)))]
    if not q.targets:
        ref = q.spec.get("ref", {})
        if q.kind != "existence" or "color" not in ref or "shape" not in ref:
            return None
        size = SIZE_NAMES[int(rng.integers(len(SIZE_NAMES)))]
        m = math.ceil(SIZES[size]) + 1
        x, y = int(rng.integers(m, scene.width - m)), int(rng.integers(m, scene.height - m))
        return AddObject(size, ref["color"], MATERIALS[int(rng.integers(len(MATERIALS)))], ref["shape"], x, y)
    t = q.targets[int(rng.integers(len(q.targets)))]
    o = scene.get(t.id)
    if o is None:
        return None
    kind = ("replace", "replace", "move", "remove")[int(rng.integers(4))]
    if kind == "replace":
        attr = str(q.spec["attr"]) if q.kind == "attribute" and rng.random() < 0.7 else ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
        vals = [v for v in ATTRIBUTE_VALUES[attr] if v != getattr(o, attr)]
        return ReplaceAttrs(o.id, {attr: vals[int(rng.integers(len(vals)))]})
    if kind == "move":
        m = math.ceil(o.radius) + 1
        return MoveObject(o.id, int(rng.integers(m, scene.width - m)), int(rng.integers(m, scene.height - m)))
    return RemoveObject(o.id)


def _requestion(q: Question, scene: Scene, occluders) -> Question | None:
    """``q`` with its answer and targets recomputed on ``scene``; None when it has no answer
    there or the answer is not among its options."""
    ev = evaluate(scene, q.spec, occluders=occluders)
    if ev.answer is None or ev.answer not in q.options:
        return None
    targets = tuple(Target(i, scene.get(i).box()) for i in ev.targets)  # type: ignore[union-attr]
    return Question(q.kind, q.text, q.options, LETTERS[q.options.index(ev.answer)], targets, q.spec)


def _hallusion_build(cfg: EvalConfig, n: int) -> list[Item]:
    def make(seed: int, g: int) -> list[Item] | None:
        scene = sample_scene(seed, "complex")
        kinds = HALLUSION_KINDS[g % 4 :] + HALLUSION_KINDS[: g % 4]
        qs = scene_questions(scene, seed, 2, kinds[:2])
        if len(qs) < 2:
            return None
        rng = _rng(seed, 0x4A11)
        image = render(scene)
        items = [Item("hallusion", image, q, {"group": g, "variant": 0, "qid": j, "changed": False, "program": ""}) for j, q in enumerate(qs)]
        for v in range(1, HALLUSION_VARIANTS + 1):
            fallback = None
            chosen = None
            for _ in range(24):
                op = _variant_op(scene, rng, qs)
                if op is None:
                    continue
                try:
                    res = apply_program(scene, (op,), image)
                except EditError:
                    continue
                new = [_requestion(q, res.scene, res.occluders) for q in qs]
                if any(x is None for x in new):
                    continue
                cand = (res, new, op)
                if any(a.answer != q.answer for a, q in zip(new, qs)):  # type: ignore[union-attr]
                    chosen = cand
                    break
                fallback = fallback or cand
            chosen = chosen or fallback
            if chosen is None:
                return None
            res, new, op = chosen
            for j, (q0, q1) in enumerate(zip(qs, new)):
                items.append(Item("hallusion", res.image, q1, {  # type: ignore[arg-type]
                    "group": g, "variant": v, "qid": j, "changed": q1.answer != q0.answer, "program": op.to_text(),  # type: ignore[union-attr]
                }))
        for it in items:
            it.meta["scene_seed"] = seed
        return items

    return _draw(3, cfg, n, make)


def _hallusion_metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
    res: Metrics = {}
    for mode in _modes(cfg):
        ok = [o.correct if mode == "greedy" else o.strict_correct(cfg.strict_trials) for o in outs]
        res[mode] = hallusion_metrics([(it.meta["group"], it.meta["variant"], it.meta["qid"], c) for it, c in zip(items, ok)])
    edited = [it for it in items if it.meta["variant"] > 0]
    res["info"] = {
        "n": float(len(items)),
        "groups": float(len({it.meta["group"] for it in items})),
        "changed_share": accuracy([it.meta["changed"] for it in edited]) if edited else math.nan,
    }
    return res


register(Benchmark(
    "hallusion", "Hallusion-like: a figure and its edited variants with paired questions (aAcc, fAcc, qAcc).",
    "group", 4, _hallusion_build, _hallusion_metrics, headline=("aAcc", "fAcc", "qAcc"),
))


# --- clean (forgetting) -------------------------------------------------------------------
def _clean_build(cfg: EvalConfig, n: int) -> list[Item]:
    kinds = ("relation", "attribute", "existence", "count")

    def make(seed: int, k: int) -> list[Item] | None:
        scene = sample_scene(seed, "simple")
        q = sample_question(scene, _rng(seed, 0xC1EA), kinds[k % 4])
        return [Item("clean", render(scene), q, {"subset": q.kind, "scene_seed": seed})] if q else None

    return _draw(4, cfg, n, make)


register(Benchmark(
    "clean", "Clean accuracy on simple scenes, every question kind (the forgetting check).",
    "question", 16, _clean_build, _mc(),
))


# --- robustness: fixed single-op attacks --------------------------------------------------
ROBUST_KINDS = ("attribute", "relation", "existence", "count")


def _base_question(scene: Scene, seed: int, k: int, tag: int) -> Question | None:
    return sample_question(scene, _rng(seed, tag), ROBUST_KINDS[k % 4])


def _robust_build(cfg: EvalConfig, n: int) -> list[Item]:
    def make(seed: int, k: int) -> list[Item] | None:
        scene = sample_scene(seed, "complex")
        q = _base_question(scene, seed, k, 0x20B)
        if q is None:
            return None
        image = render(scene)
        backend, clean = get_backend("world"), VQAItem(scene, image, q, seed)
        items = [Item("robust", image, q, {"base": k, "op": "clean", "scene_seed": seed})]
        for oi, op in enumerate(ABSOLUTE_OPS):
            rng = _rng(seed, 0x20B0 + oi)
            for _ in range(cfg.attack_tries):
                prog = random_program(scene, rng, max_ops=1, kinds=(op,))
                if not prog:
                    continue
                ed = backend.edit(clean, prog)
                if backend.judge(clean, ed, cfg.integrity).passed:
                    items.append(Item("robust", ed.image, q, {"base": k, "op": op, "program": prog[0].to_text(), "scene_seed": seed}))
                    break
        return items

    return _draw(5, cfg, n, make)


def _attack_block(items: Sequence[Item], ok: Sequence[bool], attacked_key: str, attacked_value: str | None) -> dict[str, float]:
    """Accuracy on the attacked items of one kind, and success: share of them whose clean
    version was right and which are now wrong."""
    clean = {it.meta["base"]: c for it, c in zip(items, ok) if it.meta[attacked_key] == "clean"}
    sel = [(it, c) for it, c in zip(items, ok) if it.meta[attacked_key] != "clean" and (attacked_value is None or it.meta[attacked_key] == attacked_value)]
    return {
        "accuracy": accuracy([c for _, c in sel]),
        "success": accuracy([clean[it.meta["base"]] and not c for it, c in sel]),
    }


def _robust_metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
    res: Metrics = {}
    for mode in _modes(cfg):
        ok = [o.correct if mode == "greedy" else o.strict_correct(cfg.strict_trials) for o in outs]
        m: dict[str, float] = {"clean/accuracy": accuracy([c for it, c in zip(items, ok) if it.meta["op"] == "clean"])}
        for op in ABSOLUTE_OPS:
            for key, v in _attack_block(items, ok, "op", op).items():
                m[f"{op}/{key}"] = v
        for key, v in _attack_block(items, ok, "op", None).items():
            m[f"attacked/{key}"] = v
        res[mode] = m
    bases = sum(it.meta["op"] == "clean" for it in items)
    info: dict[str, float] = {"n": float(len(items)), "bases": float(bases)}
    for op in ABSOLUTE_OPS:
        info[f"{op}/found"] = sum(it.meta["op"] == op for it in items) / bases if bases else math.nan
    res["info"] = info
    return res


register(Benchmark(
    "robust", "Accuracy under a fixed attack suite: each edit op type alone, integrity-checked (answer unchanged).",
    "base question", 4, _robust_build, _robust_metrics, headline=("attacked/accuracy", "attacked/success"),
))


# --- robustness: a held-out attacker ------------------------------------------------------
class _FallbackRandomAttacker:
    """Used only when ``aot.attack`` is not installed: one random valid program per item."""

    name = "random"

    def propose(self, batch: Sequence[Any]) -> list[str]:
        from ..edits import format_program

        return [format_program(random_program(it.scene, np.random.default_rng([int(it.seed), 0xA77A]), 2)) for it in batch]


def resolve_attacker(spec: Any, backend: Any = None):
    """An object with ``propose``, a name registered in ``aot.attack.ATTACKERS``, a path that
    ``aot.attack.load_attacker`` accepts (when that exists), or the folder of a saved
    ``aot.attack.model.ModelAttacker`` (e.g. an attacker trained against the base defender).
    ``backend``: whose edit language a named or saved attacker writes (None: the world)."""
    if hasattr(spec, "propose"):
        return spec
    try:
        import aot.attack as attack
    except ImportError:
        attack = None  # type: ignore[assignment]
    if attack is None:
        if spec in ("random", "heuristic", None):
            return _FallbackRandomAttacker()
        raise ValueError(f"attacker {spec!r}: aot.attack is not available; pass an object with propose(batch)")
    if spec in attack.ATTACKERS:
        return attack.make_attacker(spec, backend)
    loader = getattr(attack, "load_attacker", None)
    if loader is not None:
        return loader(spec)
    if isinstance(spec, (str, Path)) and Path(spec).is_dir():  # a saved model attacker
        from ..attack.model import ModelAttacker

        return ModelAttacker.load(spec, backend=backend)
    raise ValueError(f"unknown attacker {spec!r}; choose from {', '.join(sorted(attack.ATTACKERS))} or pass an object with propose(batch)")


def attack_item(scene: Scene, image: np.ndarray, question: Question, seed: int) -> VQAItem:
    """The item an attacker reads (kept for callers of the earlier name)."""
    return VQAItem(scene, image, question, seed)


def _heldout_build(cfg: EvalConfig, n: int) -> list[Item]:
    attacker = resolve_attacker(cfg.attacker)
    backend = get_backend("world")
    bases: list[VQAItem] = []

    def make(seed: int, k: int) -> list[Item] | None:
        scene = sample_scene(seed, "complex")
        q = _base_question(scene, seed, k, 0x4E1D)
        if q is None:
            return None
        image = render(scene)
        bases.append(VQAItem(scene, image, q, seed))
        return [Item("heldout", image, q, {"base": k, "role": "clean", "scene_seed": seed})]

    items = _draw(6, cfg, n, make)
    texts = attacker.propose(bases)
    if len(texts) != len(bases):
        raise ValueError(f"attacker {getattr(attacker, 'name', attacker)!r} returned {len(texts)} programs for {len(bases)} items")
    for k, (base, text) in enumerate(zip(bases, texts)):
        a = backend.attempt(base, text, cfg.integrity)
        meta = {"base": k, "role": "attacked", "program": text, "parsed": a.program is not None, "valid": a.passed,
                "ops": [op.name for op in a.program or ()], "scene_seed": base.seed}
        items[k].meta.update({k2: v for k2, v in meta.items() if k2 not in ("base", "role", "scene_seed")})
        if a.passed and a.edit is not None:
            items.append(Item("heldout", a.edit.image, base.question, meta))
    name = str(getattr(attacker, "name", type(attacker).__name__))
    for it in items:
        it.meta["attacker"] = name
    return items


def _heldout_metrics(items: Sequence[Item], outs: Sequence[Outcome], cfg: EvalConfig) -> Metrics:
    clean = [(it, o) for it, o in zip(items, outs) if it.meta["role"] == "clean"]
    attacked = {it.meta["base"]: o for it, o in zip(items, outs) if it.meta["role"] == "attacked"}
    res: Metrics = {}
    for mode in _modes(cfg):
        def ok(o: Outcome) -> bool:
            return o.correct if mode == "greedy" else o.strict_correct(cfg.strict_trials)

        c = [ok(o) for _, o in clean]
        # a void attack (unparseable or failing integrity) leaves the clean image: its outcome
        a = [ok(attacked.get(it.meta["base"], o)) for it, o in clean]
        res[mode] = {
            "clean/accuracy": accuracy(c),
            "attacked/accuracy": accuracy(a),
            "success": accuracy([ci and not ai for ci, ai in zip(c, a)]),
        }
    ops = Counter(op for it, _ in clean if it.meta.get("valid") for op in it.meta.get("ops", []))
    total = sum(ops.values())
    res["info"] = {
        "n": float(len(clean)),
        "parse_rate": accuracy([it.meta.get("parsed", False) for it, _ in clean]),
        "integrity_pass_rate": accuracy([it.meta.get("valid", False) for it, _ in clean]),
        **{f"op_mix/{op}": ops[op] / total for op in OP_NAMES if total and (op in ABSOLUTE_OPS or ops[op])},  # relative ops only when used
    }
    res["about"] = {"attacker": clean[0][0].meta.get("attacker", "?") if clean else "?"}  # type: ignore[dict-item]
    return res


register(Benchmark(
    "heldout", "Accuracy under a held-out attacker's integrity-checked edits (transfer).",
    "base question", 8, _heldout_build, _heldout_metrics, headline=("attacked/accuracy", "success"),
))
