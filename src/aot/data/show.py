"""Contact sheet of a dataset: clean | edited pairs with the question and the defender's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_bytes, decode_png, png_bytes
from ..contact import contact_sheet
from .store import iter_records

_COLUMNS = ["id", "category", "question", "answer", "answer_text", "edit_program", "clean_image", "edited_image", "defender_clean_choice", "defender_edited_choice"]


def _answers(choices: list[str | None]) -> str:
    return "".join(c or "?" for c in choices) or "-"


def pick(src: str | Path, n: int, order: tuple[str, ...] = ("effective", "useless", "clean")) -> list[dict[str, Any]]:
    """Up to ``n`` records, effective ones first, each category in dataset order."""
    by_cat: dict[str, list[dict[str, Any]]] = {c: [] for c in order}
    for r in iter_records(src, columns=_COLUMNS):
        lst = by_cat.setdefault(r["category"], [])
        if len(lst) < n:
            lst.append(r)
        if all(len(v) >= n for v in by_cat.values()):
            break
    out: list[dict[str, Any]] = []
    for c in by_cat:
        out.extend(by_cat[c][: n - len(out)])
    return out


def contact_pairs(src: str | Path, n: int = 16, out: str | Path | None = None, pairs_per_row: int = 2) -> np.ndarray:
    """Sheet of ``n`` clean/edited pairs (written to ``out`` as PNG when given)."""
    recs = pick(src, n)
    if not recs:
        raise ValueError(f"{src}: no records to show")
    images, caps = [], []
    for r in recs:
        images.append(decode_png(r["clean_image"]["bytes"], f"record {r['id']} (clean_image)"))
        caps.append(f"{r['question']} [{r['answer']}: {r['answer_text']}] clean: {_answers(r['defender_clean_choice'])}")
        images.append(decode_png(r["edited_image"]["bytes"], f"record {r['id']} (edited_image)"))
        prog = r["edit_program"].replace("\n", "; ") or "(no edit)"
        caps.append(f"{r['category'].upper()} edited: {_answers(r['defender_edited_choice'])} | {prog}")
    sheet = contact_sheet(images, caps, cols=2 * pairs_per_row, scale=2, caption_lines=4, width_chars=32)
    if out is not None:
        atomic_write_bytes(out, png_bytes(sheet))
    return sheet
