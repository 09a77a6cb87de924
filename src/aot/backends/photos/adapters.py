"""V*-bench and POPE layouts onto the photo item format (:mod:`.records`).

V* Bench (``vstar_bench/``, as its authors release it): one folder per category
(``direct_attributes``, ``relative_position``), and in it each photo ``NAME.jpg`` beside its
annotation ``NAME.json``::

    {"question": "What is the color of the glove?",
     "options": ["white", "black", "red", "blue"],     # the correct option first
     "target_object": ["glove"],                       # one name per box
     "bbox": [[x, y, w, h]]}                           # pixels, top-left corner and size

The correct option comes first in every file, so the options are permuted (seeded by the
record's id, the same every run) to spread answers over the letters. Boxes become
``[x, y, x + w, y + h]``, clipped to the photo, with the object name as label; direct_attributes questions are kind
``attribute``, relative_position ``relation``.

POPE (``coco_pope_random.json`` / ``popular`` / ``adversarial``): JSON lines of
``{"question_id", "image", "text": "Is there a dog in the image?", "label": "yes"|"no"}``
with ``image`` a file in the COCO image folder. The object is read from the question; a
"no" question lists it as ``absent`` (an edit must not add one). A "yes" question gets its
boxes from a COCO instances file when one is given (``instances_val2014.json``: ``images``,
``annotations`` with ``bbox`` [x, y, w, h], ``categories``; crowd boxes skipped), else none.

Both write records with image paths relative to the output file's folder, so the folder of
items and photos can move as one. Errors are :class:`.records.PhotoDataError` naming the
file (and line).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ...vqa import LETTERS
from .records import PhotoDataError, read_rows

VSTAR_KINDS = {"direct_attributes": "attribute", "relative_position": "relation"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".JPG", ".JPEG", ".PNG")
_POPE_OBJECT = re.compile(r"^\s*is there (?:a |an |any |some )?(.+?) in the (?:image|picture|photo)\s*\?\s*$", re.IGNORECASE)


def _rel(path: Path, out_dir: Path | None) -> str:
    return os.path.relpath(path.resolve(), out_dir.resolve()) if out_dir is not None else str(path.resolve())


def permutation(key: str, n: int) -> list[int]:
    """A permutation of range(n) seeded by ``key`` (the same every run and on every machine)."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def _xywh(b: Any, where: str) -> list[int]:
    if not isinstance(b, (list, tuple)) or len(b) != 4 or not all(isinstance(v, (int, float)) for v in b):
        raise PhotoDataError(f"{where}: a bbox must be [x, y, w, h] numbers, got {b!r}")
    x, y, w, h = (float(v) for v in b)
    return [int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h))]


def photo_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo, read from its header."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def clip(box: list[int], width: int, height: int) -> list[int]:
    """A box clipped to the photo (annotation tools round outwards by a pixel now and then)."""
    return [min(max(box[0], 0), width), min(max(box[1], 0), height), min(max(box[2], 0), width), min(max(box[3], 0), height)]


def vstar_records(folder: str | Path, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Records of a V* Bench folder (module doc); image paths relative to ``out_dir``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PhotoDataError(f"V* folder not found: {folder}")
    out_dir = Path(out_dir) if out_dir is not None else None
    records = []
    for ann in sorted(folder.glob("*/*.json")):
        where = str(ann)
        try:
            a = json.loads(ann.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PhotoDataError(f"{where}: not a JSON annotation ({e})") from None
        if not isinstance(a, dict):
            raise PhotoDataError(f"{where}: expected a JSON object")
        missing = [k for k in ("question", "options") if k not in a]
        if missing:
            raise PhotoDataError(f"{where}: missing field(s) {', '.join(missing)}")
        photos = [ann.with_suffix(s) for s in IMAGE_SUFFIXES if ann.with_suffix(s).is_file()]
        if not photos:
            raise PhotoDataError(f"{where}: no photo beside it ({ann.stem} with one of {', '.join(IMAGE_SUFFIXES[:4])})")
        options = [str(o) for o in a["options"]]
        if not 2 <= len(options) <= len(LETTERS):
            raise PhotoDataError(f"{where}: expected 2 to {len(LETTERS)} options, got {len(options)}")
        category = ann.parent.name
        rid = f"{category}/{ann.stem}"
        perm = permutation(rid, len(options))
        names, boxes = list(a.get("target_object") or []), list(a.get("bbox") or [])
        if len(names) != len(boxes):
            raise PhotoDataError(f"{where}: {len(names)} target_object name(s) but {len(boxes)} bbox(es)")
        records.append({
            "id": rid, "image": _rel(photos[0], out_dir), "question": str(a["question"]).strip(),
            "options": [options[i] for i in perm], "answer": LETTERS[perm.index(0)],  # the file lists the answer first
            "kind": VSTAR_KINDS.get(category, "other"),
            "targets": [{"box": clip(_xywh(b, where), *photo_size(photos[0])), "label": str(n)} for n, b in zip(names, boxes)],
        })
    if not records:
        raise PhotoDataError(f"{folder}: no CATEGORY/NAME.json annotations")
    return records


def coco_boxes(instances: str | Path) -> dict[tuple[str, str], list[list[int]]]:
    """(image file name, category name) -> [x0, y0, x1, y1] boxes of a COCO instances file."""
    path = Path(instances)
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhotoDataError(f"COCO instances file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PhotoDataError(f"{path}: not JSON ({e})") from None
    try:
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        cats = {c["id"]: c["name"] for c in coco["categories"]}
        out: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
        for ann in coco["annotations"]:
            if not ann.get("iscrowd", 0):
                out[(files[ann["image_id"]], cats[ann["category_id"]])].append(_xywh(ann["bbox"], str(path)))
    except (KeyError, TypeError) as e:
        raise PhotoDataError(f"{path}: not a COCO instances file (missing {e})") from None
    return dict(out)


def pope_records(questions: str | Path, images: str | Path, instances: str | Path | None = None,
                 out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Records of a POPE question file (module doc); image paths relative to ``out_dir``."""
    questions, images = Path(questions), Path(images)
    out_dir = Path(out_dir) if out_dir is not None else None
    boxes = coco_boxes(instances) if instances is not None else {}
    subset = next((s for s in ("adversarial", "popular", "random") if s in questions.name), questions.stem)
    records = []
    for where, rec in read_rows(questions):
        if not isinstance(rec, dict):
            raise PhotoDataError(f"{where}: expected a JSON object")
        missing = [k for k in ("image", "text", "label") if k not in rec]
        if missing:
            raise PhotoDataError(f"{where}: missing field(s) {', '.join(missing)}")
        label = str(rec["label"]).strip().lower()
        if label not in ("yes", "no"):
            raise PhotoDataError(f"{where}: label must be 'yes' or 'no', got {rec['label']!r}")
        m = _POPE_OBJECT.match(str(rec["text"]))
        if not m:
            raise PhotoDataError(f"{where}: cannot read the object from {rec['text']!r} (expected 'Is there a X in the image?')")
        obj = m.group(1).strip()
        r: dict[str, Any] = {
            "id": f"pope-{subset}-{rec.get('question_id', where.rsplit(':', 1)[1])}", "image": _rel(images / str(rec["image"]), out_dir),
            "question": str(rec["text"]).strip(), "options": ["yes", "no"], "answer": "A" if label == "yes" else "B", "kind": "existence",
            "targets": [{"box": b, "label": obj} for b in boxes.get((str(rec["image"]), obj), [])] if label == "yes" else [],
        }
        if label == "no":
            r["absent"] = [obj]
        records.append(r)
    if not records:
        raise PhotoDataError(f"{questions}: no questions")
    return records
