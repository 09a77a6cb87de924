"""Adapters for real benchmark files, for users with real models and data.

Both register file benchmarks (not part of ``--suite all``: they need files):

``pope-file`` (``EvalConfig.pope_questions``, ``EvalConfig.pope_images``)
    POPE question files as released: one JSON object per line with ``question_id``, ``image``
    (a file name inside the image folder), ``text`` ("Is there a dog in the image?") and
    ``label`` ("yes"/"no"). Several files may be given separated by commas; a file's subset is
    ``random``, ``popular`` or ``adversarial`` when its name contains that word (as in
    ``coco_pope_adversarial.json``), else its stem. Metrics: accuracy, precision, recall, F1,
    yes-ratio per subset, greedy and strict-k.

``vstar-file`` (``EvalConfig.vstar_file``, ``EvalConfig.vstar_images``)
    V*-style multiple-choice questions, in either of two forms, as a JSON list, a JSON object
    ``{"items": [...]}`` or JSON lines:

    1. our documented form, one record per question::

           {"id": "q1",                      # optional, any JSON value
            "image": "sub/img.jpg",          # path relative to the image folder
            "question": "What is the colour of the cup?",
            "options": ["red", "blue", "green", "white"],   # 2 to 4 options
            "answer": "A",                   # a letter, or the text of one option
            "category": "direct_attributes", # optional; metrics are also given per category
            "targets": [[x0, y0, x1, y1]]}   # optional target boxes, pixels, x1/y1 exclusive

    2. the LLaVA-style ``test_questions.jsonl`` of V* Bench: ``question_id``, ``image``,
       ``category``, ``label`` (a letter) and ``text`` holding the question, then one line per
       option written ``(A) white``, then an instruction line (dropped: our prompt format adds
       its own).

    Metrics: accuracy overall and per category, greedy and strict-k.

Images are read with PIL and converted to RGB. Every error names the file and line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..vqa import LETTERS, Question, Target
from .benchmarks import NEGATIVE_STRATEGIES, Benchmark, _mc, _pope_metrics, register
from .core import EvalConfig, Item

_OPTION_LINE = re.compile(r"^\s*\(([A-D])\)\s*(.+?)\s*$")


class AdapterError(ValueError):
    """A benchmark file is malformed; the message names the file and record."""


def load_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise AdapterError(f"image not found: {path}") from None
    except Exception as e:  # PIL raises several types for corrupt data
        raise AdapterError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


def read_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(1-based record number, record) from a JSON list, ``{"items": [...]}`` or JSON lines."""
    path = Path(path)
    if not path.exists():
        raise AdapterError(f"benchmark file not found: {path}")
    if path.is_dir():
        raise AdapterError(f"{path} is a folder; give the benchmark's question file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AdapterError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise AdapterError(f"{path}: empty file, no questions")
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise AdapterError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
        if not data:
            raise AdapterError(f"{path}: an empty list, no questions")
        return list(enumerate(data, 1))
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # JSON lines
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            if not data["items"]:
                raise AdapterError(f"{path}: an empty items list, no questions")
            return list(enumerate(data["items"], 1))
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                raise AdapterError(f"{path}:{i}: invalid JSON ({e.msg})") from None
    return out


def _need(rec: dict[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in rec]
    if missing:
        raise AdapterError(f"{where}: missing field(s) {', '.join(missing)}")


# --- POPE ---------------------------------------------------------------------------------
def pope_subset(path: Path) -> str:
    name = path.name.lower()
    for s in NEGATIVE_STRATEGIES:
        if s in name:
            return s
    return path.stem


def load_pope(questions: str | Path | Sequence[str | Path], images: str | Path | None = None, limit: int | None = None) -> list[Item]:
    """Items of one or more POPE question files (``limit``: at most this many per file)."""
    files = [Path(p) for p in (questions.split(",") if isinstance(questions, str) else [questions] if isinstance(questions, Path) else questions)]
    items: list[Item] = []
    for f in files:
        root = Path(images) if images else f.parent
        subset = pope_subset(f)
        recs = read_records(f)
        for n, rec in recs[:limit] if limit else recs:
            where = f"{f}:{n}"
            if not isinstance(rec, dict):
                raise AdapterError(f"{where}: expected a JSON object")
            _need(rec, ("image", "text", "label"), where)
            label = str(rec["label"]).strip().lower()
            if label not in ("yes", "no"):
                raise AdapterError(f"{where}: label must be 'yes' or 'no', got {rec['label']!r}")
            q = Question(
                kind="existence", text=str(rec["text"]).strip(), options=("yes", "no"), answer="A" if label == "yes" else "B",
                targets=(), spec={"kind": "existence", "source": "pope", "question_id": rec.get("question_id")},
            )
            meta = {"subset": subset, "label": label, "question_id": rec.get("question_id"), "image_file": str(rec["image"])}
            items.append(Item("pope-file", load_image(root / str(rec["image"])), q, meta))
    return items


def _pope_file_build(cfg: EvalConfig, n: int) -> list[Item]:
    if not cfg.pope_questions:
        raise ValueError("benchmark pope-file needs a POPE question file: EvalConfig.pope_questions (aot eval --pope-questions FILE)")
    return load_pope(cfg.pope_questions, cfg.pope_images, n or None)


# --- V*-style -----------------------------------------------------------------------------
def parse_llava_text(text: str, where: str) -> tuple[str, list[str]]:
    """'question\\n(A) x\\n(B) y\\nAnswer with ...' -> ('question', ['x', 'y'])."""
    q_lines: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        m = _OPTION_LINE.match(line)
        if m:
            if m.group(1) != LETTERS[len(options)]:
                raise AdapterError(f"{where}: options must be lettered A, B, ... in order; got ({m.group(1)}) at position {len(options) + 1}")
            options.append(m.group(2))
        elif not options:
            q_lines.append(line)
        # lines after the options (the instruction) are dropped
    if not options:
        raise AdapterError(f"{where}: no '(A) ...' option lines in text")
    return "\n".join(q_lines).strip(), options


def vstar_question(rec: dict[str, Any], where: str) -> tuple[Question, str]:
    """(Question, category) of one V*-style record in either form."""
    if "options" in rec:
        _need(rec, ("question", "options", "answer"), where)
        text, options = str(rec["question"]).strip(), [str(o) for o in rec["options"]]
        ans = str(rec["answer"]).strip()
    else:
        _need(rec, ("text", "label"), where)
        text, options = parse_llava_text(str(rec["text"]), where)
        ans = str(rec["label"]).strip()
    if not 2 <= len(options) <= len(LETTERS):
        raise AdapterError(f"{where}: expected 2 to {len(LETTERS)} options, got {len(options)}")
    letters = LETTERS[: len(options)]
    a = ans.strip("()").strip().rstrip(".")
    if len(a) == 1 and a.upper() in letters:
        letter = a.upper()
    elif ans.lower() in [o.lower() for o in options]:
        letter = letters[[o.lower() for o in options].index(ans.lower())]
    else:
        raise AdapterError(f"{where}: answer {rec.get('answer', rec.get('label'))!r} is neither a letter {letters[0]}-{letters[-1]} nor an option")
    targets = []
    for i, b in enumerate(rec.get("targets") or []):
        if len(b) != 4:
            raise AdapterError(f"{where}: target box {i} must be [x0, y0, x1, y1], got {b!r}")
        targets.append(Target(i, tuple(int(round(float(v))) for v in b)))  # type: ignore[arg-type]
    category = str(rec.get("category", "all"))
    rid = rec.get("id", rec.get("question_id"))
    q = Question(kind=category, text=text, options=tuple(options), answer=letter, targets=tuple(targets), spec={"kind": "file", "source": "vstar", "id": rid})
    return q, category


def load_vstar(path: str | Path, images: str | Path | None = None, limit: int | None = None) -> list[Item]:
    path = Path(path)
    root = Path(images) if images else path.parent
    items: list[Item] = []
    recs = read_records(path)
    for n, rec in recs[:limit] if limit else recs:
        where = f"{path}:{n}"
        if not isinstance(rec, dict):
            raise AdapterError(f"{where}: expected a JSON object")
        _need(rec, ("image",), where)
        q, category = vstar_question(rec, where)
        items.append(Item("vstar-file", load_image(root / str(rec["image"])), q, {"subset": category, "id": q.spec["id"], "image_file": str(rec["image"])}))
    return items


def _vstar_file_build(cfg: EvalConfig, n: int) -> list[Item]:
    if not cfg.vstar_file:
        raise ValueError("benchmark vstar-file needs a question file: EvalConfig.vstar_file (aot eval --vstar FILE)")
    return load_vstar(cfg.vstar_file, cfg.vstar_images, n or None)


register(Benchmark(
    "pope-file", "POPE question files (jsonl: question_id, image, text, label) with an image folder.",
    "question per file (0: all)", 0, _pope_file_build, _pope_metrics,
    headline=("adversarial/f1", "mean/accuracy"), in_all=False,
))
register(Benchmark(
    "vstar-file", "V*-style multiple-choice JSON (see aot.eval.adapters) with an image folder.",
    "question (0: all)", 0, _vstar_file_build, _mc(), headline=("accuracy",), in_all=False,
))
