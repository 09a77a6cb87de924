"""Gallery entries: attacks that fooled the base defender, with base and final answers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..eval.benchmarks import BENCHMARKS
from ..eval.core import EvalConfig, score_items
from ..world.questions import Question
from .images import data_uri


def gallery_entry(question: Question, clean_image: np.ndarray, edited_image: np.ndarray, answers: dict[str, str | None],
                  program: str = "", caption: str = "") -> dict[str, Any]:
    """One JSON-able gallery entry (images as PNG data URIs)."""
    return {
        "question": question.text,
        "options": list(question.options),
        "answer": question.answer,
        "clean_image": data_uri(clean_image),
        "edited_image": data_uri(edited_image),
        "program": program,
        "answers": dict(answers),
        "caption": caption,
    }


def attack_gallery(base, final, cfg: EvalConfig | None = None, attacker: Any = None, max_entries: int = 8) -> list[dict[str, Any]]:
    """Attack held-out questions with ``attacker`` (default ``cfg.attacker``), keep the
    integrity-passing edits that fooled ``base`` (right on the clean image, wrong on the edited
    one, greedy) and record ``final``'s answers on them. ``cfg.sizes['heldout']`` / ``cfg.n``
    sets how many questions are attacked."""
    cfg = replace(cfg or EvalConfig(), strict_trials=0, keep_predictions=False)
    if attacker is not None:
        cfg = replace(cfg, attacker=attacker)
    bench = BENCHMARKS["heldout"]
    items = bench.build(cfg, cfg.size("heldout", bench.default_n))
    outs = score_items(base, items, cfg)
    clean = {it.meta["base"]: (it, o) for it, o in zip(items, outs) if it.meta["role"] == "clean"}
    fooled = [(it, o) for it, o in zip(items, outs) if it.meta["role"] == "attacked" and clean[it.meta["base"]][1].correct and not o.correct]
    fooled = fooled[:max_entries]
    if not fooled:
        return []
    final_outs = score_items(final, [it for it, _ in fooled], cfg)
    entries = []
    for (it, o), fo in zip(fooled, final_outs):
        cit = clean[it.meta["base"]][0]
        entries.append(gallery_entry(
            it.question, cit.image, it.image, {"base": o.pred, "final": fo.pred}, program=it.meta.get("program", ""),
            caption=f"scene seed {it.meta.get('scene_seed')}, attacker {it.meta.get('attacker', '?')}",
        ))
    return entries
