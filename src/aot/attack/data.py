"""Attacker data: cold-start examples from an AOT-SFT dataset, and fresh attack items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..backends import Backend, get_backend
from ..io import decode_png
from ..vqa import Question, Target
from .base import AttackItem

_COLUMNS = ["id", "effective", "scene_seed", "question_kind", "question", "options", "answer", "targets", "question_spec", "clean_image", "edit_program"]


def record_item(rec: dict, backend: Backend | None = None) -> AttackItem:
    """An AOT-SFT record's clean side as an item: its stored image, its question, and the
    backend's replay key (one JSON column per field; the world: ``scene``) for the attackers
    that read it. Errors name the record."""
    backend = get_backend(backend)
    try:
        q = Question(
            kind=rec["question_kind"], text=rec["question"], options=tuple(rec["options"]), answer=rec["answer"],
            targets=tuple(Target(int(t["id"]), tuple(int(v) for v in t["box"]), str(t.get("label") or "")) for t in rec["targets"]),  # type: ignore[misc]
            spec=json.loads(rec["question_spec"]),
        )
        key = {f: json.loads(rec[f]) for f in backend.replay_fields}
        img = rec["clean_image"]
        image = decode_png(img["bytes"] if isinstance(img, dict) else img, what=f"record {rec['id']} clean_image")
        return backend.replay(key, q, int(rec["scene_seed"]), image=image)
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"record {rec.get('id', '?')}: malformed field ({type(e).__name__}: {e})") from None


def sft_examples(dataset_dir: str | Path, limit: int | None = None, min_examples: int = 0, backend: Backend | None = None) -> list[tuple[AttackItem, str]]:
    """(item, program text) for every *effective* record of an AOT-SFT dataset, in dataset
    order; when there are fewer than ``min_examples``, integrity-passing useless edits pad the
    list (they still teach the edit language and the integrity constraints)."""
    from ..data.store import iter_records

    backend = get_backend(backend)
    effective, useless = [], []
    for rec in iter_records(dataset_dir, columns=_COLUMNS + list(backend.replay_fields) + ["category"]):
        if not rec["edit_program"]:
            continue
        if rec["effective"]:
            effective.append(rec)
        elif rec["category"] == "useless" and len(useless) < max(min_examples, 0):
            useless.append(rec)
    chosen = effective + useless[: max(0, min_examples - len(effective))]
    if limit is not None:
        chosen = chosen[:limit]
    return [(record_item(r, backend), r["edit_program"]) for r in chosen]


ATTACK_EVAL_OFFSET = 90
"""Held-out attack items live at evaluation base 900 + 90 (see aot.eval.seeds)."""
ATTACK_TRAIN_BASE = 300
"""Attacker RL items (outside the evaluation range) start at base 300."""
ATTACK_COLD_START_BASE = 800
"""Scenes of heuristic-proposer edits that pad a cold start (``cold_start_examples``)."""


def eval_attack_items(n: int, seed: int = 0, backend: Backend | None = None) -> list[AttackItem]:
    """Held-out attack items: the eval split, never trained on."""
    return get_backend(backend).items("eval", n, ATTACK_EVAL_OFFSET, seed)


def attack_items(n: int, base_seed: int, kinds: tuple[str, ...] | None = None, start: int = 0, seed_fn: Callable[[int], int] | None = None,
                 backend: Backend | None = None) -> list[AttackItem]:
    """``n`` fresh training items from the AOT-SFT source distribution (the backend's attack
    pool; the world: a simple scene and question extended into a complex scene), from the train
    split's slot ``base_seed``. ``start`` and ``seed_fn`` (the world's scene seeds of item
    ``start + i``) serve scripts that pick world seeds themselves."""
    if seed_fn is None and start == 0:
        return get_backend(backend).items("train", n, base_seed, kinds=kinds)
    from ..backends.world import draw
    from ..seeds import item_seed

    return draw(n, lambda i: seed_fn(start + i) if seed_fn else item_seed(base_seed, start + i), "attack", kinds, f"base seed {base_seed}")


def teacher_examples(n: int, base_seed: int, teacher: str = "heuristic", backend: Backend | None = None) -> list[tuple[AttackItem, str]]:
    """Up to ``n`` (item, program) pairs written by the ``teacher`` proposer (a name in
    ``aot.attack.ATTACKERS``, default the heuristic) that pass integrity: a fallback teacher
    when AOT-SFT holds too few effective edits (e.g. a defender that is never right on clean
    images, so nothing can be flipped)."""
    from . import make_attacker

    backend = get_backend(backend)
    items = attack_items(2 * n, base_seed, backend=backend)
    out = []
    for it, text in zip(items, make_attacker(teacher, backend=backend).propose(items)):
        if backend.attempt(it, text).passed:
            out.append((it, text))
        if len(out) >= n:
            break
    return out


def cold_start_examples(
    dataset_dir: str | Path, min_examples: int = 0, seed: int = 0, limit: int | None = None, teacher: str = "heuristic",
    backend: Backend | None = None,
) -> tuple[list[tuple[AttackItem, str]], int]:
    """The attacker's cold-start set: the effective edits of an AOT-SFT dataset (``sft_examples``,
    at most ``limit``), padded to ``min_examples`` with its integrity-passing useless edits, then
    with ``teacher``-proposer edits that pass integrity on fresh scenes (base
    ``ATTACK_COLD_START_BASE + seed``). Returns the examples and how many came from the teacher."""
    examples = sft_examples(dataset_dir, limit, min_examples=min_examples, backend=backend)
    extra = teacher_examples(min_examples - len(examples), ATTACK_COLD_START_BASE + seed, teacher, backend) if len(examples) < min_examples else []
    return examples + extra, len(extra)
