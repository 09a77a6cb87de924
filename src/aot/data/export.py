"""Exports of an AOT-SFT dataset to the formats the training ecosystem reads.

- ``easyr1``: ``OUT/train.parquet`` with EasyR1/verl's RL columns (``problem`` with one
  ``<image>`` placeholder, ``answer``, ``images``), plus ``OUT/reward.py`` (``compute_score``,
  our defender reward in EasyR1's reward-function interface) and ``OUT/README.md`` with the
  config keys to point EasyR1 at them;
- ``llava``: ``OUT/llava.json`` (LLaVA conversation records) and ``OUT/images/<id>.png``;
- ``trl``: ``OUT/train.parquet`` with TRL's conversational vision SFT columns (``messages`` +
  ``images``), plus ``answer`` and ``options`` for ``aot.rewards.defender_reward``.

Each sample is a record's *edited* image (for clean records the edited image is the clean one)
with its question and answer. Every image is decoded before it is written: a corrupt one stops
the export with an :class:`ExportError` naming the record.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..io import atomic_write_bytes, atomic_write_text, decode_png
from ..models.tokenizer import answer_completion
from .sft import CATEGORIES
from .store import IMAGE_TYPE, iter_records

EXPORT_FORMATS: tuple[str, ...] = ("easyr1", "llava", "trl")
IMAGE_PLACEHOLDER = "<image>"
_COLUMNS = ["id", "category", "prompt", "options", "answer", "answer_text", "edited_image"]


class ExportError(ValueError):
    """A record cannot be exported (the message names it)."""


def _records(src: str | Path, categories: Iterable[str]) -> Iterator[dict[str, Any]]:
    keep = set(categories)
    bad = keep - set(CATEGORIES)
    if bad:
        raise ExportError(f"unknown categories {sorted(bad)}; choose from {', '.join(CATEGORIES)}")
    for r in iter_records(src, columns=_COLUMNS):
        if r["category"] in keep:
            img = r["edited_image"]
            data = img.get("bytes") if isinstance(img, dict) else None
            if not data:
                raise ExportError(f"record {r['id']}: edited_image has no bytes")
            try:
                decode_png(data, what=f"record {r['id']} (edited_image)")
            except ValueError as e:
                raise ExportError(str(e)) from None
            r["png"] = data
            yield r


def completion(r: dict[str, Any]) -> str:
    """The target answer of a record, in the born defender's format ('right \\boxed{B}')."""
    return answer_completion(r["answer_text"], r["answer"]).strip()


def _hf_meta(features: dict[str, Any]) -> dict[bytes, bytes]:
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode()}


def _write_parquet(path: Path, schema: pa.Schema, rows: Iterator[dict[str, Any]], batch: int = 512) -> int:
    """Stream rows into ``path`` through a temporary file renamed at the end (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    n = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            buf: list[dict[str, Any]] = []
            for r in rows:
                buf.append(r)
                if len(buf) >= batch:
                    w.write_table(pa.Table.from_pylist(buf, schema=schema))
                    n += len(buf)
                    buf = []
            if buf:
                w.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n


_S = {"dtype": "string", "_type": "Value"}
EASYR1_SCHEMA = pa.schema(
    [("id", pa.string()), ("category", pa.string()), ("problem", pa.string()), ("answer", pa.string()), ("images", pa.list_(IMAGE_TYPE))],
    metadata=_hf_meta({"id": _S, "category": _S, "problem": _S, "answer": _S, "images": {"feature": {"_type": "Image"}, "_type": "Sequence"}}),
)
_PART = pa.struct([("type", pa.string()), ("text", pa.string())])
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.list_(_PART))])
TRL_SCHEMA = pa.schema(
    [("id", pa.string()), ("category", pa.string()), ("messages", pa.list_(_MESSAGE)), ("images", pa.list_(IMAGE_TYPE)), ("answer", pa.string()), ("options", pa.list_(pa.string()))],
    metadata=_hf_meta({
        "id": _S, "category": _S,
        "messages": {"feature": {"role": _S, "content": {"feature": {"type": _S, "text": _S}, "_type": "Sequence"}}, "_type": "Sequence"},
        "images": {"feature": {"_type": "Image"}, "_type": "Sequence"},
        "answer": _S, "options": {"feature": _S, "_type": "Sequence"},
    }),
)

EASYR1_README = """# AOT-SFT for EasyR1 / verl

`train.parquet`: `problem` (prompt with one `<image>` placeholder), `answer` (JSON with the
answer letter and the options, read by `reward.py`), `images` (a list with one image).
`reward.py`: `compute_score`, the AOT defender reward (0.8 correct + 0.2 exact `\\boxed{{X}}`).

EasyR1 config keys:

    data.train_files={train}
    data.prompt_key=problem
    data.answer_key=answer
    data.image_key=images
    worker.reward.reward_type=sequential   # or batch: compute_score accepts both
    worker.reward.reward_function={reward}:compute_score

{n} records exported from {src}.
"""


def export_easyr1(src: str | Path, dest: str | Path, categories: Iterable[str] = CATEGORIES) -> dict[str, Any]:
    dest = Path(dest)

    def rows() -> Iterator[dict[str, Any]]:
        for r in _records(src, categories):
            yield {
                "id": r["id"],
                "category": r["category"],
                "problem": IMAGE_PLACEHOLDER + r["prompt"],
                "answer": json.dumps({"answer": r["answer"], "options": list(r["options"])}),
                "images": [{"bytes": r["png"], "path": None}],
            }

    n = _write_parquet(dest / "train.parquet", EASYR1_SCHEMA, rows())
    reward_src = Path(__file__).with_name("easyr1_reward.py")
    atomic_write_text(dest / "reward.py", reward_src.read_text())
    atomic_write_text(dest / "README.md", EASYR1_README.format(train=(dest / "train.parquet").resolve(), reward=(dest / "reward.py").resolve(), n=n, src=src))
    return {"format": "easyr1", "records": n, "files": ["train.parquet", "reward.py", "README.md"]}


def export_llava(src: str | Path, dest: str | Path, categories: Iterable[str] = CATEGORIES) -> dict[str, Any]:
    dest = Path(dest)
    images = dest / "images"
    out: list[dict[str, Any]] = []
    for r in _records(src, categories):
        rel = f"images/{r['id']}.png"
        atomic_write_bytes(dest / rel, r["png"])
        out.append({
            "id": r["id"],
            "image": rel,
            "conversations": [
                {"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{r['prompt']}"},
                {"from": "gpt", "value": completion(r)},
            ],
        })
    images.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest / "llava.json", json.dumps(out, indent=1) + "\n")
    return {"format": "llava", "records": len(out), "files": ["llava.json", "images/"]}


def export_trl(src: str | Path, dest: str | Path, categories: Iterable[str] = CATEGORIES) -> dict[str, Any]:
    dest = Path(dest)

    def rows() -> Iterator[dict[str, Any]]:
        for r in _records(src, categories):
            yield {
                "id": r["id"],
                "category": r["category"],
                "messages": [
                    {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": r["prompt"]}]},
                    {"role": "assistant", "content": [{"type": "text", "text": completion(r)}]},
                ],
                "images": [{"bytes": r["png"], "path": None}],
                "answer": r["answer"],
                "options": list(r["options"]),
            }

    n = _write_parquet(dest / "train.parquet", TRL_SCHEMA, rows())
    return {"format": "trl", "records": n, "files": ["train.parquet"]}


EXPORTERS: dict[str, Callable[..., dict[str, Any]]] = {"easyr1": export_easyr1, "llava": export_llava, "trl": export_trl}


def export(src: str | Path, fmt: str, dest: str | Path, categories: Iterable[str] = CATEGORIES) -> dict[str, Any]:
    """Export dataset ``src`` to ``dest`` in format ``fmt`` (one of EXPORT_FORMATS)."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ExportError(f"{dest} is not empty; choose a new --out")
    try:
        return EXPORTERS[fmt](src, dest, categories)
    except ExportError:
        if fmt == "llava" and dest.exists():  # do not leave a half-written image folder behind
            shutil.rmtree(dest, ignore_errors=True)
        raise
