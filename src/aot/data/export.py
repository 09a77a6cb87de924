"""Exports of an AOT-SFT dataset to the formats the training ecosystem reads.

- ``easyr1``: ``OUT/data/train.parquet`` with EasyR1/verl's RL columns (``problem`` with one
  ``<image>`` placeholder, ``answer``, ``images``), alone in its folder because EasyR1 picks
  its loader from the first file of a ``data.train_files`` folder; plus ``OUT/reward.py``
  (``compute_score``, our defender reward in EasyR1's reward-function interface) and
  ``OUT/README.md`` with the config keys (``EASYR1_KEYS``) that point EasyR1 at them;
- ``llava``: ``OUT/llava.json`` (LLaVA conversation records) and ``OUT/images/<id>.png``;
- ``trl``: ``OUT/train.parquet`` with TRL's conversational vision SFT columns (``messages`` +
  ``images``), plus ``answer`` and ``options`` for ``aot.rewards.defender_reward``.

Each sample is a record's *edited* image (for clean records the edited image is the clean one)
with its question and answer. The dataset is verified against its manifest first (an
unfinished, mixed or corrupt dataset is refused), and every image is decoded before it is
written: a corrupt one stops the export with an :class:`ExportError` naming the record. An
export is written into a temporary folder beside ``OUT`` and renamed to ``OUT`` only when
complete, so a failed export leaves nothing behind and can be rerun into the same ``OUT``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..io import atomic_path, atomic_write_bytes, atomic_write_text, decode_png
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
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(str(tmp), schema, compression="zstd") as w:
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

EASYR1_DATA_DIR = "data"
"""Sub-folder of an EasyR1 export holding ``train.parquet`` and nothing else: EasyR1 reads a
``data.train_files`` folder with the loader named by the extension of its *first* file."""
EASYR1_KEYS: dict[str, str] = {
    "data.train_files": "{data}",
    "data.val_files": "{data}",
    "data.prompt_key": "problem",
    "data.answer_key": "answer",
    "data.image_key": "images",
    "data.format_prompt": "null",
    "worker.reward.reward_function": "{reward}:compute_score",
}
"""The EasyR1 settings an export documents (checked against EasyR1's DataConfig and
RewardConfig fields in tests/test_export_easyr1.py). ``format_prompt`` is null because the
prompts already carry the answer instruction; the batch/sequential choice is ``REWARD_TYPE``
inside ``reward.py`` (EasyR1 reads it from the module; there is no config key for it)."""

EASYR1_README = """# AOT-SFT for EasyR1 / verl

`{data_dir}/train.parquet`: `problem` (prompt with one `<image>` placeholder), `answer` (JSON
with the answer letter and the options, read by `reward.py`), `images` (a list with one image).
`reward.py`: `compute_score`, the AOT defender reward (0.8 correct + 0.2 exact `\\boxed{{X}}`),
`REWARD_TYPE = "batch"`; it is standard-library Python and needs no `aot` install.

Train with EasyR1 (https://github.com/hiyouga/EasyR1), e.g. starting from its example config:

    python3 -m verl.trainer.main config=examples/config.yaml \\
{keys} \\
        worker.actor.model.model_path=YOUR_MODEL

`data.train_files` is the folder `{data_dir}/` (or the file `{data_dir}/train.parquet`); the
validation files above are the training data: export a held-out dataset for a real one.

{n} records exported from {src}.
"""


def easyr1_settings(dest: str | Path) -> dict[str, str]:
    """``EASYR1_KEYS`` with the absolute paths of an export in ``dest``."""
    dest = Path(dest).resolve()
    return {k: v.format(data=dest / EASYR1_DATA_DIR, reward=dest / "reward.py") for k, v in EASYR1_KEYS.items()}


def export_easyr1(src: str | Path, dest: str | Path, categories: Iterable[str] = CATEGORIES, location: str | Path | None = None) -> dict[str, Any]:
    """``location``: where ``dest`` will finally be (the README's paths), when it is written elsewhere first."""
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

    n = _write_parquet(dest / EASYR1_DATA_DIR / "train.parquet", EASYR1_SCHEMA, rows())
    reward_src = Path(__file__).with_name("easyr1_reward.py")
    atomic_write_text(dest / "reward.py", reward_src.read_text())
    keys = " \\\n".join(f"        {k}={v}" for k, v in easyr1_settings(location or dest).items())
    atomic_write_text(dest / "README.md", EASYR1_README.format(data_dir=EASYR1_DATA_DIR, keys=keys, n=n, src=src))
    return {"format": "easyr1", "records": n, "files": [f"{EASYR1_DATA_DIR}/train.parquet", "reward.py", "README.md"]}


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


def check_source(src: str | Path) -> None:
    """Refuse a dataset that is unfinished (no manifest), mixed (shards the manifest does not
    list) or damaged (a shard or the manifest does not match), before anything is written."""
    from .build import verify
    from .store import ShardError

    try:
        problems = verify(src)
    except FileNotFoundError as e:
        raise ExportError(f"cannot export {src}: {e}") from None
    except ShardError as e:
        raise ExportError(f"cannot export {src}: {e}") from None
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ExportError(f"cannot export {src}: {problems[0]}{more}; `aot data verify {src}` lists them")


def export(src: str | Path, fmt: str, dest: str | Path, categories: Iterable[str] = CATEGORIES) -> dict[str, Any]:
    """Export dataset ``src`` to ``dest`` in format ``fmt`` (one of EXPORT_FORMATS).

    ``dest`` must be new or empty. The export is written into a hidden sibling folder and
    renamed to ``dest`` when complete; on any failure the sibling is removed."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest} is not an empty folder; choose a new --out")
    check_source(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.export-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()  # mode 0777 less the umask, as any folder (mkdtemp would give 0700)
    try:
        kwargs = {"location": dest} if fmt == "easyr1" else {}
        res = EXPORTERS[fmt](src, tmp, categories, **kwargs)
        if dest.exists():
            dest.rmdir()  # empty (checked above); rename cannot replace it on every system
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return res
