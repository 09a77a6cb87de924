"""The procedural world as a backend: scene graphs rendered exactly, answers recomputed exactly.

Items are rendered scenes with a question whose answer the scene graph decides; the editor is
:func:`aot.edits.apply_program` (scene-graph ops, one re-render, pixel ops); the judge is
:func:`aot.integrity.check` (exact answer recomputation, localized SSIM, box and duplicate
checks). An item's replay key is its scene graph (``{"scene": Scene.to_dict()}``); with the
program text it re-makes any edit, byte for byte.

Item streams (each seed's random stream is tagged, so the streams never share draws):

- pool ``attack``: a simple scene and a question (kind drawn from ``kinds``, stream tag
  ``0xA77``), extended into a complex scene that keeps the answer (AOT-SFT's source
  distribution; scenes whose extension fails are skipped);
- pool ``replay``: a simple scene and a question of any kind (tag ``0xC1``): the born
  defender's own distribution, replayed against forgetting.

Splits follow :mod:`aot.seeds`: ``train`` slot ``b`` is base seed ``b`` (< 900), ``eval`` slot
``o`` is base ``900 + o``; ``seed`` selects the run's slice of indices in either.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..edits import EditError, apply_program, format_program, parse_program, program_to_json, random_program
from ..integrity import IntegrityConfig, check
from ..seeds import EVAL_BASES, MAX_RUN_SEED, RUN_STRIDE, item_seed
from ..vqa import Item, Question
from ..world.extend import extend_scene
from ..world.questions import QUESTION_KINDS, matches, sample_question
from ..world.render import render
from ..world.sampler import REGIMES, sample_scene
from ..world.types import Scene
from .base import SPLITS, Backend, Edit, Grown, Verdict

ATTACK_TAG = 0xA77
"""Random-stream tag of the attack pool's question draw."""
REPLAY_TAG = 0xC1
"""Random-stream tag of the replay pool's question draw."""


def attack_item(s: int, kinds: Sequence[str] = QUESTION_KINDS) -> Item | None:
    """The attack-pool item of scene seed ``s``, or None when its extension fails."""
    rng = np.random.default_rng([s, ATTACK_TAG])
    src = sample_scene(s, "simple")
    q = sample_question(src, rng, kinds[int(rng.integers(len(kinds)))])
    if q is None:
        return None
    ext = extend_scene(src, q, s)
    if not ext.ok:
        return None
    return Item(ext.scene, render(ext.scene), ext.question, s)  # type: ignore[arg-type]


def replay_item(s: int) -> Item | None:
    """The replay-pool item of scene seed ``s`` (a simple scene), or None without a question."""
    sc = sample_scene(s, "simple")
    q = sample_question(sc, np.random.default_rng([s, REPLAY_TAG]))
    return Item(sc, render(sc), q, s) if q is not None else None


def draw(n: int, seeds: Callable[[int], int], pool: str = "attack", kinds: Sequence[str] | None = None, what: str = "") -> list[Item]:
    """The first ``n`` items of ``pool`` over scene seeds ``seeds(0), seeds(1), ...``."""
    if pool == "replay" and kinds is not None:
        raise ValueError("the replay pool draws questions of every kind; kinds applies to the attack pool")
    make = (lambda s: attack_item(s, tuple(kinds or QUESTION_KINDS))) if pool == "attack" else replay_item
    items: list[Item] = []
    i = 0
    while len(items) < n:
        if i > 20 * n + 100:
            raise RuntimeError(f"could not make {n} {pool} items from {what or 'these seeds'}")
        it = make(seeds(i))
        i += 1
        if it is not None:
            items.append(it)
    return items


class WorldBackend(Backend):
    """The procedural world (see the module doc)."""

    name: ClassVar[str] = "world"
    pools: ClassVar[tuple[str, ...]] = ("attack", "replay")
    question_kinds: ClassVar[tuple[str, ...]] = QUESTION_KINDS
    regimes: ClassVar[Mapping[str, int]] = {k: r.size for k, r in REGIMES.items()}
    replay_fields: ClassVar[tuple[str, ...]] = ("scene",)
    edit_errors: ClassVar[tuple[type[Exception], ...]] = (EditError,)
    judge_settings: ClassVar[type | None] = IntegrityConfig
    edit_grammar: ClassVar[str] = "aot.edits"

    def items(self, split: str, n: int, slot: int, seed: int = 0, *, pool: str = "attack", kinds: Sequence[str] | None = None) -> list[Item]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        if pool not in self.pools:
            raise ValueError(f"unknown pool {pool!r}; choose from {', '.join(self.pools)}")
        lo, hi = EVAL_BASES
        width = lo if split == "train" else hi - lo
        if not 0 <= slot < width:
            raise ValueError(f"{split} slot {slot} outside [0, {width}) (train slots are base seeds below {lo}; eval slots are offsets into [{lo}, {hi}))")
        if not 0 <= seed < MAX_RUN_SEED:
            raise ValueError(f"seed {seed} outside [0, {MAX_RUN_SEED})")
        base = slot if split == "train" else lo + slot

        def seeds(i: int) -> int:
            if i >= RUN_STRIDE:  # the next run seed's slice starts here
                raise ValueError(f"{split} slot {slot}: item index {i} outside [0, {RUN_STRIDE})")
            return item_seed(base, seed * RUN_STRIDE + i)

        return draw(n, seeds, pool, kinds, f"{split} slot {slot} (base seed {base})")

    def grow(self, seed: int, rng: np.random.Generator, kind: str, source: str, target: str) -> Grown:
        scene = sample_scene(seed, source)
        q = sample_question(scene, rng, kind)
        if q is None:
            return Grown(None, "question", (f"no {kind} question: none found",))
        ext = extend_scene(scene, q, seed, target)
        if not ext.ok:
            return Grown(None, "extension", ext.reasons)
        return Grown(Item(ext.scene, render(ext.scene), ext.question, seed))  # type: ignore[arg-type]

    def replay_key(self, item: Item) -> dict[str, Any]:
        return {"scene": item.scene.to_dict()}

    def replay(self, key: Mapping[str, Any], question: Question, seed: int = 0, image: np.ndarray | None = None) -> Item:
        sc = Scene.from_dict(key["scene"])
        return Item(sc, render(sc) if image is None else image, question, seed)

    def parse(self, text: str) -> tuple[Any, ...]:
        return parse_program(text)

    def edit(self, item: Item, program: Sequence[Any]) -> Edit:
        res = apply_program(item.scene, program, item.image)
        d = res.image != item.image
        mask = d[..., 0] | d[..., 1] | d[..., 2]  # (H, W); ten times faster than np.any(axis=-1)
        return Edit(res.image, res.program, res.touched_boxes, res.touched_ops, mask, res)

    def judge(self, item: Item, edit: Edit, cfg: IntegrityConfig | None = None) -> Verdict:
        return check(item.scene, item.image, item.question, edit.state, cfg)

    def program_json(self, program: Sequence[Any]) -> list[dict[str, Any]]:
        return program_to_json(program)

    def random_program(self, item: Item, rng: np.random.Generator, max_ops: int = 2, ops: Sequence[str] | None = None) -> str:
        """:func:`aot.edits.random_program` on the item's scene graph (programs that always
        apply; ``ops`` default: the eight absolute ops)."""
        return format_program(random_program(item.scene, rng, max_ops, ops))

    def target_check(self, item: Item, edit: Edit) -> tuple[str, ...]:
        """Objects the edit changed that are targets, or that now fit one of the question's
        referring expressions (a copy of a target)."""
        q = item.question
        refs = [q.spec["a"], q.spec["b"]] if q.spec["kind"] == "relation" else [q.spec["ref"]]
        target_ids = {t.id for t in q.targets}
        before = {o.id: o for o in item.scene.objects}
        bad = []
        for o in edit.state.scene.objects:
            if before.get(o.id) == o:
                continue
            if o.id in target_ids:
                bad.append(f"target changed: object {o.id} is a target of the question")
            elif any(matches(o, r) for r in refs):
                bad.append(f"copy of a target: {o.size} {o.color} {o.material} {o.shape} (object {o.id}) fits the question's description")
        return tuple(bad)
