"""Gallery entries: attacks that fooled the base defender, with base and final answers.

What AOT is about, shown item by item: an edit that fooled the base defender either no longer
fools the final one (the report's first category) or fools both (the second)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..backends import DEFAULT_BACKEND
from ..eval.benchmarks import BENCHMARKS
from ..eval.core import EvalConfig, score_items
from ..vqa import Question
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


def attack_gallery(base, final, cfg: EvalConfig | None = None, attacker: Any = None, per_group: int = 4,
                   questions: int | None = None) -> dict[str, Any]:
    """Attack held-out questions with ``attacker`` (default ``cfg.attacker``), keep the
    integrity-passing edits that fooled ``base`` (right on the clean image, wrong on the edited
    one, greedy) and record ``final``'s answers on them. ``questions`` (default
    ``cfg.sizes['heldout']`` / ``cfg.n``) sets how many questions are attacked.

    Returns the report's gallery section ``{"entries": [...], "note": str}``: up to
    ``per_group`` entries that no longer fool ``final`` and up to ``per_group`` that fool it too
    (the report groups them by the ``final`` answer), and a note with the counts behind them."""
    cfg = replace(cfg or EvalConfig(), strict_trials=0, keep_predictions=False)
    if attacker is not None:
        cfg = replace(cfg, attacker=attacker)
    # the world's held-out attack benchmark; on another backend its attacked eval items
    name = "heldout" if cfg.backend.name == DEFAULT_BACKEND else "backend-attacked"
    bench = BENCHMARKS[name]
    items = bench.build(cfg, questions or cfg.size(name, bench.default_n))
    outs = score_items(base, items, cfg)
    clean = {it.meta["base"]: (it, o) for it, o in zip(items, outs) if it.meta["role"] == "clean"}
    edits = [(it, o) for it, o in zip(items, outs) if it.meta["role"] == "attacked"]
    fooled = [(it, o) for it, o in edits if clean[it.meta["base"]][1].correct and not o.correct]
    final_outs = score_items(final, [it for it, _ in fooled], cfg) if fooled else []
    groups: dict[bool, list[dict[str, Any]]] = {True: [], False: []}  # final right on the edit?
    for (it, o), fo in zip(fooled, final_outs):
        if len(groups[fo.correct]) >= per_group:
            continue
        cit = clean[it.meta["base"]][0]
        groups[fo.correct].append(gallery_entry(
            it.question, cit.image, it.image, {"base": o.pred, "final": fo.pred}, program=it.meta.get("program", ""),
            caption=(f"scene seed {it.meta.get('scene_seed')}" if "scene_seed" in it.meta else f"item {it.meta.get('id', '?')}") + f", attacker {it.meta.get('attacker', '?')}",
        ))
    name = items[0].meta.get("attacker", "?") if items else "?"
    fixed = sum(fo.correct for fo in final_outs)
    note = (f"The held-out attacker ({name}) proposed an edit for each of {len(clean)} held-out questions the defenders "
            f"never trained on; {len(edits)} of the edits are valid (they parse and pass the integrity check: the true answer "
            f"is unchanged) and {len(fooled)} of those fooled the base defender (right on the clean image, wrong on the edited "
            f"one): {fixed} no longer fool the final defender, {len(fooled) - fixed} fool it too. Greedy answers; up to "
            f"{per_group} example{'s' if per_group != 1 else ''} of each.")
    return {"entries": groups[True] + groups[False], "note": note}
