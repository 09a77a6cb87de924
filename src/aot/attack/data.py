"""Attacker data: cold-start examples from an AOT-SFT dataset, and fresh attack items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import decode_png
from ..world.dataset import scene_seed
from ..world.extend import extend_scene
from ..world.questions import Question, Target, sample_question
from ..world.render import render
from ..world.sampler import sample_scene
from ..world.types import Scene
from .base import AttackItem

_COLUMNS = ["id", "effective", "scene", "scene_seed", "question_kind", "question", "options", "answer", "targets", "question_spec", "clean_image", "edit_program"]


def record_item(rec: dict) -> AttackItem:
    """An AOT-SFT record's clean side as an AttackItem (errors name the record)."""
    try:
        scene = Scene.from_dict(json.loads(rec["scene"]))
        q = Question(
            kind=rec["question_kind"], text=rec["question"], options=tuple(rec["options"]), answer=rec["answer"],
            targets=tuple(Target(int(t["id"]), tuple(int(v) for v in t["box"])) for t in rec["targets"]),  # type: ignore[misc]
            spec=json.loads(rec["question_spec"]),
        )
        img = rec["clean_image"]
        image = decode_png(img["bytes"] if isinstance(img, dict) else img, what=f"record {rec['id']} clean_image")
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"record {rec.get('id', '?')}: malformed field ({type(e).__name__}: {e})") from None
    return AttackItem(scene, image, q, int(rec["scene_seed"]))


def sft_examples(dataset_dir: str | Path, limit: int | None = None, min_examples: int = 0) -> list[tuple[AttackItem, str]]:
    """(item, program text) for every *effective* record of an AOT-SFT dataset, in dataset
    order; when there are fewer than ``min_examples``, integrity-passing useless edits pad the
    list (they still teach the edit language and the integrity constraints)."""
    from ..data.store import iter_records

    effective, useless = [], []
    for rec in iter_records(dataset_dir, columns=_COLUMNS + ["category"]):
        if not rec["edit_program"]:
            continue
        if rec["effective"]:
            effective.append(rec)
        elif rec["category"] == "useless" and len(useless) < max(min_examples, 0):
            useless.append(rec)
    chosen = effective + useless[: max(0, min_examples - len(effective))]
    if limit is not None:
        chosen = chosen[:limit]
    return [(record_item(r), r["edit_program"]) for r in chosen]


ATTACK_EVAL_OFFSET = 90
"""Held-out attack items live at evaluation base 900 + 90 (see aot.eval.seeds)."""
ATTACK_TRAIN_BASE = 300
"""Attacker RL items (outside the evaluation range) start at base 300."""
ATTACK_COLD_START_BASE = 800
"""Scenes of heuristic-proposer edits that pad a cold start (``cold_start_examples``)."""


def eval_attack_items(n: int, seed: int = 0) -> list[AttackItem]:
    """Held-out attack items: seeds in the evaluation range, never trained on."""
    from ..eval.seeds import eval_scene_seed

    return attack_items(n, base_seed=0, start=0, seed_fn=lambda i: eval_scene_seed(ATTACK_EVAL_OFFSET, seed, i))


def attack_items(n: int, base_seed: int, kinds: tuple[str, ...] | None = None, start: int = 0, seed_fn=None) -> list[AttackItem]:
    """``n`` fresh items from the AOT-SFT source distribution: a simple scene and question,
    extended into a complex scene (extensions that fail their checks are skipped)."""
    from ..world.questions import QUESTION_KINDS

    kinds = kinds or QUESTION_KINDS
    items: list[AttackItem] = []
    i = 0
    while len(items) < n:
        s = seed_fn(start + i) if seed_fn else scene_seed(base_seed, start + i)
        i += 1
        rng = np.random.default_rng([s, 0xA77])
        src = sample_scene(s, "simple")
        q = sample_question(src, rng, kinds[int(rng.integers(len(kinds)))])
        if q is None:
            continue
        ext = extend_scene(src, q, s)
        if not ext.ok:
            continue
        items.append(AttackItem(ext.scene, render(ext.scene), ext.question, s))  # type: ignore[arg-type]
        if i > 20 * n + 100:
            raise RuntimeError(f"could not make {n} attack items from base seed {base_seed}")
    return items


def teacher_examples(n: int, base_seed: int, teacher: str = "heuristic") -> list[tuple[AttackItem, str]]:
    """Up to ``n`` (item, program) pairs written by the ``teacher`` proposer (a name in
    ``aot.attack.ATTACKERS``, default the heuristic) that pass integrity: a fallback teacher
    when AOT-SFT holds too few effective edits (e.g. a defender that is never right on clean
    images, so nothing can be flipped)."""
    from ..edits import EditError, apply_program, parse_program
    from ..integrity import check
    from . import make_attacker

    items = attack_items(2 * n, base_seed)
    out = []
    for it, text in zip(items, make_attacker(teacher).propose(items)):
        try:
            res = apply_program(it.scene, parse_program(text), it.image)
        except EditError:
            continue
        if check(it.scene, it.image, it.question, res).passed:
            out.append((it, text))
        if len(out) >= n:
            break
    return out


def cold_start_examples(
    dataset_dir: str | Path, min_examples: int = 0, seed: int = 0, limit: int | None = None, teacher: str = "heuristic"
) -> tuple[list[tuple[AttackItem, str]], int]:
    """The attacker's cold-start set: the effective edits of an AOT-SFT dataset (``sft_examples``,
    at most ``limit``), padded to ``min_examples`` with its integrity-passing useless edits, then
    with ``teacher``-proposer edits that pass integrity on fresh scenes (base
    ``ATTACK_COLD_START_BASE + seed``). Returns the examples and how many came from the teacher."""
    examples = sft_examples(dataset_dir, limit, min_examples=min_examples)
    extra = teacher_examples(min_examples - len(examples), ATTACK_COLD_START_BASE + seed, teacher) if len(examples) < min_examples else []
    return examples + extra, len(extra)
