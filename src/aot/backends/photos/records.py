"""Photo VQA items from a user's file: one record per question, JSON lines or parquet.

A record (one JSON object per line; a parquet file has the same columns, ``targets`` as a list
of structs or as JSON text)::

    {"id": "coffee-spoon",                       # optional; default "<file name>:<line>"
     "image": "photos/coffee.jpg",               # relative to the file, absolute, or skimage:NAME
     "question": "What lies on the saucer next to the cup?",
     "options": ["a spoon", "a fork", "a knife", "a cookie"],     # 2 to 4, distinct
     "answer": "A",                              # a letter, or the text of one option
     "kind": "object",                           # optional: one of PHOTO_KINDS (default "other")
     "targets": [{"box": [318, 65, 425, 325], "label": "spoon"}], # pixels, x1/y1 exclusive
     "absent": ["dog"],                          # optional: phrases the answer says are not there
     "split": "train"}                           # optional: overrides the hashed split

``targets`` are the instances the answer depends on (an edit must leave them alone; their
labels are the open-vocabulary detector's phrases); ``absent`` lists what a "no" answer
denies (an edit must not add one). ``skimage:NAME`` names a photo bundled with scikit-image
(``SKIMAGE_PHOTOS``), so the shipped sample needs no download.

Splits: an item is ``eval`` when the hash of its image reference falls below
``eval_fraction`` (:func:`hashed_split`), else ``train``; every question about one photo is
on the same side, so train and eval never share an image. A record's ``split`` overrides it.

Every error is a :class:`PhotoDataError` whose message starts ``FILE:LINE:`` (parquet:
``FILE:row N:``), which ``aot.cli`` prints as one ``error:`` line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...vqa import LETTERS, Box, Question, Target

PHOTO_KINDS: tuple[str, ...] = ("attribute", "object", "count", "existence", "relation", "other")
"""Question families a record may name (V*'s direct_attributes and relative_position map to
attribute and relation, POPE to existence)."""
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "colorwheel", "logo", "stereo_motorcycle",
    "camera", "coins", "horse", "moon", "page", "text", "clock",
)
"""Photos scikit-image ships (``skimage:NAME``); only these names are looked up."""
SKIMAGE_PREFIX = "skimage:"
FIELDS: tuple[str, ...] = ("id", "image", "question", "options", "answer", "kind", "targets", "absent", "split")


class PhotoDataError(ValueError):
    """A photo item file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class PhotoRecord:
    """One validated record: a question about one photo, with the photo loaded."""

    id: str
    image_ref: str
    """The image as the file names it (``skimage:NAME`` or a path as written)."""
    image_path: str
    """Where it was read from: ``skimage:NAME`` or the resolved absolute path (a replay key)."""
    image: np.ndarray = field(repr=False, compare=False)
    """(H, W, 3) uint8."""
    question: Question
    split: str
    where: str
    """``FILE:LINE`` of the record, for messages."""


def load_image(ref: str, root: Path) -> tuple[np.ndarray, str]:
    """(the photo as (H, W, 3) uint8, where it was read from) for an image reference."""
    if ref.startswith(SKIMAGE_PREFIX):
        name = ref[len(SKIMAGE_PREFIX):]
        if name not in SKIMAGE_PHOTOS:
            raise FileNotFoundError(f"no scikit-image photo {name!r}; choose from {', '.join(SKIMAGE_PHOTOS)}")
        try:
            import skimage.data
        except ImportError:
            raise FileNotFoundError(f"{ref} needs scikit-image (pip install scikit-image)") from None
        photo = getattr(skimage.data, name)()
        if isinstance(photo, tuple):  # stereo_motorcycle: (left, right, disparity); the left view
            photo = photo[0]
        return as_rgb(np.asarray(photo)), ref
    path = Path(ref)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")), str(path)
    except Exception as e:  # PIL raises several types for corrupt data
        raise FileNotFoundError(f"cannot read image {path} ({type(e).__name__}: {e})") from None


def as_rgb(a: np.ndarray) -> np.ndarray:
    """A grey, boolean, RGBA or float image as (H, W, 3) uint8."""
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3])


def hashed_split(image_ref: str, eval_fraction: float) -> str:
    """'eval' when the image reference hashes below ``eval_fraction`` of [0, 1), else 'train'."""
    h = int.from_bytes(hashlib.sha256(image_ref.encode()).digest()[:8], "big") / 2.0**64
    return "eval" if h < eval_fraction else "train"


def read_rows(path: Path) -> list[tuple[str, Any]]:
    """(``FILE:LINE`` or ``FILE:row N``, raw record) for every record of a JSONL or parquet file."""
    if not path.exists():
        raise PhotoDataError(f"photo item file not found: {path}")
    if path.is_dir():
        raise PhotoDataError(f"{path} is a folder; give a .jsonl or .parquet file of items")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a bad file
            raise PhotoDataError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from None
        return [(f"{path}:row {i}", r) for i, r in enumerate(rows, 1)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PhotoDataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"{path}:{i}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise PhotoDataError(f"{path}:{i}: invalid JSON ({e.msg}, column {e.colno})") from None
    return out


def _text(rec: dict[str, Any], key: str, where: str) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not v.strip():
        raise PhotoDataError(f"{where}: {key} must be non-empty text, got {v!r}")
    return v.strip()


def _answer_letter(ans: Any, options: list[str], where: str) -> str:
    letters = LETTERS[: len(options)]
    a = str(ans).strip()
    if len(a) == 1 and a.upper() in letters:
        return a.upper()
    low = [o.lower() for o in options]
    if a.lower() in low:
        return letters[low.index(a.lower())]
    raise PhotoDataError(f"{where}: answer {ans!r} is not among the options: give a letter {letters[0]}-{letters[-1]} or one of {options}")


def _box(v: Any, what: str, width: int, height: int, where: str) -> Box:
    if not isinstance(v, (list, tuple)) or len(v) != 4 or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v):
        raise PhotoDataError(f"{where}: {what} box must be [x0, y0, x1, y1] numbers, got {v!r}")
    x0, y0, x1, y1 = (int(round(float(c))) for c in v)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise PhotoDataError(f"{where}: {what} box {[x0, y0, x1, y1]} is empty or outside the {width}x{height} image")
    return (x0, y0, x1, y1)


def _targets(raw: Any, width: int, height: int, where: str) -> tuple[Target, ...]:
    if isinstance(raw, str):  # a parquet column written as JSON text
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise PhotoDataError(f"{where}: targets is text but not JSON ({e.msg})") from None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PhotoDataError(f"{where}: targets must be a list of {{box, label}}, got {type(raw).__name__}")
    out = []
    for i, t in enumerate(raw):
        if isinstance(t, dict):
            box, label = t.get("box"), t.get("label") or ""
        else:  # a bare box
            box, label = t, ""
        if not isinstance(label, str):
            raise PhotoDataError(f"{where}: target {i} label must be text, got {label!r}")
        out.append(Target(i, _box(box, f"target {i}", width, height, where), label.strip()))
    return tuple(out)


def _phrases(raw: Any, where: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise PhotoDataError(f"{where}: absent must be a list of phrases, got {raw!r}")
    return [p.strip() for p in raw]


def parse_record(rec: Any, where: str, root: Path, eval_fraction: float, images: dict[str, tuple[np.ndarray, str]]) -> PhotoRecord:
    """Validate one raw record; ``images`` caches photos by reference (several questions share one)."""
    if not isinstance(rec, dict):
        raise PhotoDataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    unknown = sorted(k for k in rec if k not in FIELDS and rec[k] is not None)
    if unknown:
        raise PhotoDataError(f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(FIELDS)}")
    ref = _text(rec, "image", where)
    text = _text(rec, "question", where)
    options = rec.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
        raise PhotoDataError(f"{where}: options must be a list of non-empty texts, got {options!r}")
    options = [o.strip() for o in options]
    if not 2 <= len(options) <= len(LETTERS):
        raise PhotoDataError(f"{where}: expected 2 to {len(LETTERS)} options, got {len(options)}")
    if len({o.lower() for o in options}) != len(options):
        raise PhotoDataError(f"{where}: options repeat: {options}")
    if "answer" not in rec:
        raise PhotoDataError(f"{where}: missing field answer")
    letter = _answer_letter(rec["answer"], options, where)
    kind = rec.get("kind") or "other"
    if kind not in PHOTO_KINDS:
        raise PhotoDataError(f"{where}: kind {kind!r} is not one of {', '.join(PHOTO_KINDS)}")
    if ref not in images:
        try:
            images[ref] = load_image(ref, root)
        except FileNotFoundError as e:
            raise PhotoDataError(f"{where}: {e}") from None
        images[ref][0].setflags(write=False)  # shared by every item of the photo: edits copy it
    image, path = images[ref]
    h, w = image.shape[:2]
    targets = _targets(rec.get("targets"), w, h, where)
    absent = _phrases(rec.get("absent"), where)
    split = rec.get("split") or hashed_split(ref, eval_fraction)
    if split not in ("train", "eval"):
        raise PhotoDataError(f"{where}: split must be 'train' or 'eval', got {split!r}")
    rid = str(rec["id"]) if rec.get("id") is not None else f"{Path(where.rsplit(':', 1)[0]).name}:{where.rsplit(':', 1)[1]}"
    q = Question(kind=kind, text=text, options=tuple(options), answer=letter, targets=targets,
                 spec={"kind": kind, "id": rid, "absent": absent})
    return PhotoRecord(rid, ref, path, image, q, split, where)


def load_records(path: str | Path, eval_fraction: float = 0.25) -> list[PhotoRecord]:
    """Every record of a JSONL or parquet item file, validated, photos loaded."""
    path = Path(path)
    images: dict[str, tuple[np.ndarray, str]] = {}
    out: list[PhotoRecord] = []
    seen: dict[str, str] = {}
    for where, rec in read_rows(path):
        r = parse_record(rec, where, path.parent, eval_fraction, images)
        if r.id in seen:
            raise PhotoDataError(f"{where}: id {r.id!r} repeats the record at {seen[r.id]}")
        seen[r.id] = where
        out.append(r)
    if not out:
        raise PhotoDataError(f"{path}: no records")
    return out


def record_dict(q: Question, image: str, rid: str = "", split: str = "") -> dict[str, Any]:
    """A question as a record of this format (what the adapters write)."""
    d: dict[str, Any] = {"id": rid} if rid else {}
    d |= {"image": image, "question": q.text, "options": list(q.options), "answer": q.answer, "kind": q.kind,
          "targets": [{"box": list(t.box), **({"label": t.label} if t.label else {})} for t in q.targets]}
    if q.spec.get("absent"):
        d["absent"] = list(q.spec["absent"])
    if split:
        d["split"] = split
    return d


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write records (dicts of this format) one JSON object per line."""
    path = Path(path)
    path.write_text("".join(json.dumps(r, sort_keys=False) + "\n" for r in records), encoding="utf-8")
    return path
