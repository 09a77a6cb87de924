"""The sharded record store: parquet shards with embedded PNG bytes, sidecars, a manifest.

Layout of a dataset directory::

    DIR/shard-00000.parquet   records (PNG bytes embedded; image columns typed as
                              ``datasets.Image`` through the Hugging Face schema metadata)
    DIR/shard-00000.json      sidecar: record count, file size and sha256, content hash, stats
    DIR/manifest.json         totals over all shards and the dataset's content hash

Every file is written atomically (temporary file, fsync, rename), parquet first and its sidecar
second, so a shard counts as complete only when its sidecar exists and agrees with the file.
The *content hash* of a shard is computed from the record values (images by the sha256 of their
PNG bytes), not from the parquet encoding, so it does not depend on the pyarrow version.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ..io import atomic_write_bytes, atomic_write_json

SHARD_PATTERN = "shard-{:05d}"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
"""Arrow layout of a ``datasets.Image`` value."""
TARGET_TYPE = pa.struct([("id", pa.int64()), ("box", pa.list_(pa.int64()))])
LABELLED_TARGET_TYPE = pa.struct([("id", pa.int64()), ("box", pa.list_(pa.int64())), ("label", pa.string())])
"""A target with its label (the phrase a detector looks for; empty when the file gives none):
the ``targets`` type of another backend's records. The world's records keep ``TARGET_TYPE``,
so their bytes and content hashes are what they were (see :func:`carries_labels`)."""
SSIM_TYPE = pa.struct([("id", pa.int64()), ("ssim", pa.float64())])

# column -> (arrow type, Hugging Face feature), in record order
_STR = {"dtype": "string", "_type": "Value"}
_I64 = {"dtype": "int64", "_type": "Value"}


def _list(feature: dict) -> dict:
    # "Sequence" rather than "List": read by every datasets version (old ones lack "List")
    return {"feature": feature, "_type": "Sequence"}


COLUMNS: dict[str, tuple[pa.DataType, dict]] = {
    "id": (pa.string(), _STR),
    "shard": (pa.int64(), _I64),
    "candidate": (pa.int64(), _I64),
    "scene_seed": (pa.int64(), _I64),
    "category": (pa.string(), _STR),
    "effective": (pa.bool_(), {"dtype": "bool", "_type": "Value"}),
    "question_kind": (pa.string(), _STR),
    "question": (pa.string(), _STR),
    "options": (pa.list_(pa.string()), _list(_STR)),
    "answer": (pa.string(), _STR),
    "answer_text": (pa.string(), _STR),
    "prompt": (pa.string(), _STR),
    "targets": (pa.list_(TARGET_TYPE), _list({"id": _I64, "box": _list(_I64)})),
    "question_spec": (pa.string(), _STR),
    "scene": (pa.string(), _STR),
    "clean_image": (IMAGE_TYPE, {"_type": "Image"}),
    "edited_image": (IMAGE_TYPE, {"_type": "Image"}),
    "attacker": (pa.string(), _STR),
    "edit_program": (pa.string(), _STR),
    "edit_json": (pa.string(), _STR),
    "edit_ops": (pa.list_(pa.string()), _list(_STR)),
    "integrity_passed": (pa.bool_(), {"dtype": "bool", "_type": "Value"}),
    "integrity_ssim": (pa.list_(SSIM_TYPE), _list({"id": _I64, "ssim": {"dtype": "float64", "_type": "Value"}})),
    "integrity_reasons": (pa.list_(pa.string()), _list(_STR)),
    "answer_after": (pa.string(), _STR),
    "defender_clean": (pa.list_(pa.string()), _list(_STR)),
    "defender_edited": (pa.list_(pa.string()), _list(_STR)),
    "defender_clean_choice": (pa.list_(pa.string()), _list(_STR)),
    "defender_edited_choice": (pa.list_(pa.string()), _list(_STR)),
    "clean_correct": (pa.bool_(), {"dtype": "bool", "_type": "Value"}),
    "edited_wrong": (pa.int64(), _I64),
    "seed": (pa.int64(), _I64),
    "aot_version": (pa.string(), _STR),
    "config_hash": (pa.string(), _STR),
}
IMAGE_COLUMNS = ("clean_image", "edited_image")

SCHEMA = pa.schema(
    [pa.field(k, t) for k, (t, _) in COLUMNS.items()],
    metadata={"huggingface": json.dumps({"info": {"features": {k: f for k, (_, f) in COLUMNS.items()}}})},
)


class ShardError(ValueError):
    """A shard file is missing, truncated or does not match its sidecar."""


def shard_paths(out: str | Path, k: int) -> tuple[Path, Path]:
    stem = SHARD_PATTERN.format(k)
    return Path(out) / f"{stem}.parquet", Path(out) / f"{stem}.json"


def image_value(png: bytes) -> dict[str, Any]:
    return {"bytes": png, "path": None}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_digest(row: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON, images replaced by the sha256 of their bytes."""
    flat = {k: (sha256(v["bytes"]) if k in IMAGE_COLUMNS else v) for k, v in row.items()}
    return sha256(json.dumps(flat, sort_keys=True, separators=(",", ":")).encode())


def content_hash(digests: list[str]) -> str:
    """Order-sensitive hash of a list of record (or shard) digests."""
    h = hashlib.sha256()
    for d in digests:
        h.update(d.encode())
        h.update(b"\n")
    return h.hexdigest()


REPLAY_COLUMN = "scene"
"""The world's replay key column; another backend's records hold its own ``replay_fields`` there."""


def carries_labels(replay_fields: Sequence[str]) -> bool:
    """Whether records with these replay-key columns store each target's label (``label``, ""
    when it has none): another backend's do; the world's (``scene``) do not."""
    return list(replay_fields) != [REPLAY_COLUMN]


def schema_for(keys: Sequence[str]) -> pa.Schema:
    """The record schema for rows with ``keys``: ``SCHEMA`` for the world's records; for
    another backend's, its replay-key columns (JSON text) in place of ``scene`` and targets of
    ``LABELLED_TARGET_TYPE``."""
    extra = [k for k in keys if k not in COLUMNS]
    if not extra:
        return SCHEMA
    cols = {k2: v for k, v in COLUMNS.items() for k2, v in ([(e, (pa.string(), _STR)) for e in extra] if k == REPLAY_COLUMN else [(k, v)])}
    cols["targets"] = (pa.list_(LABELLED_TARGET_TYPE), _list({"id": _I64, "box": _list(_I64), "label": _STR}))
    return pa.schema([pa.field(k, t) for k, (t, _) in cols.items()], metadata={"huggingface": json.dumps({"info": {"features": {k: f for k, (_, f) in cols.items()}}})})


def encode_shard(rows: list[dict[str, Any]]) -> bytes:
    """Parquet bytes of ``rows`` with the record schema (one row group, zstd)."""
    schema = schema_for(list(rows[0])) if rows else SCHEMA
    missing = [k for k in schema.names if rows and k not in rows[0]]
    if missing:
        raise ValueError(f"records lack columns {missing}")
    table = pa.Table.from_pylist(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=max(1, len(rows)))
    return buf.getvalue()


@dataclass(frozen=True)
class ShardInfo:
    """What a sidecar says about its shard."""

    index: int
    records: int
    bytes: int
    sha256: str
    content_hash: str
    config_hash: str
    stats: dict[str, Any]
    seconds: float
    """Wall time of the shard's build (not part of any hash)."""
    cpu_seconds: float = 0.0
    """CPU time of the process that built it: what the shard costs on a dedicated core."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.index, "records": self.records, "file": SHARD_PATTERN.format(self.index) + ".parquet",
            "bytes": self.bytes, "sha256": self.sha256, "content_hash": self.content_hash,
            "config_hash": self.config_hash, "stats": self.stats, "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ShardInfo":
        return ShardInfo(int(d["shard"]), int(d["records"]), int(d["bytes"]), d["sha256"], d["content_hash"], d["config_hash"], d["stats"], float(d.get("seconds", 0.0)), float(d.get("cpu_seconds", 0.0)))


def shard_payload(rows: list[dict[str, Any]], index: int, config_hash: str, stats: dict[str, Any], seconds: float, cpu_seconds: float = 0.0) -> tuple[bytes, ShardInfo]:
    """The encoded shard and its sidecar (computed where the shard is built, e.g. a Ray worker)."""
    data = encode_shard(rows)
    info = ShardInfo(index, len(rows), len(data), sha256(data), content_hash([record_digest(r) for r in rows]), config_hash, stats, seconds, cpu_seconds)
    return data, info


def write_payload(out: str | Path, data: bytes, info: ShardInfo) -> None:
    """Write a shard atomically: parquet first, then the sidecar whose presence marks it complete."""
    pq_path, side = shard_paths(out, info.index)
    atomic_write_bytes(pq_path, data)
    atomic_write_json(side, info.to_dict())


def check_shard(out: str | Path, k: int, expect_records: int, config_hash: str) -> ShardInfo:
    """The shard's sidecar when the shard is complete and intact; otherwise ShardError saying why."""
    pq_path, side = shard_paths(out, k)
    name = pq_path.name
    if not pq_path.exists():
        raise ShardError(f"{name}: missing")
    if not side.exists():
        raise ShardError(f"{name}: no sidecar {side.name} (interrupted before it was finished)")
    try:
        info = ShardInfo.from_dict(json.loads(side.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{name}: unreadable sidecar {side.name} ({type(e).__name__}: {e})") from None
    if info.config_hash != config_hash:
        raise ShardError(f"{name}: built with config {info.config_hash}, not {config_hash}")
    if info.records != expect_records:
        raise ShardError(f"{name}: holds {info.records} records, expected {expect_records}")
    size = pq_path.stat().st_size
    if size != info.bytes:
        raise ShardError(f"{name}: truncated or altered ({size} bytes, sidecar says {info.bytes})")
    if sha256(pq_path.read_bytes()) != info.sha256:
        raise ShardError(f"{name}: corrupt (sha256 differs from its sidecar)")
    return info


def shard_files(out: str | Path) -> list[Path]:
    return sorted(Path(out).glob("shard-*.parquet"))


def read_table(out: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a dataset as one Arrow table (shard order)."""
    files = shard_files(out)
    if not files:
        raise FileNotFoundError(f"no shards (shard-*.parquet) in {out}")
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f, columns=columns))
        except Exception as e:  # pyarrow raises several types on damaged files
            raise ShardError(f"{f.name}: cannot read parquet ({type(e).__name__}: {e})") from None
    return pa.concat_tables(tables)


def iter_records(out: str | Path, columns: list[str] | None = None, batch_rows: int = 256) -> Iterator[dict[str, Any]]:
    """Records one at a time, shard by shard, without loading the whole dataset."""
    files = shard_files(out)
    if not files:
        raise FileNotFoundError(f"no shards (shard-*.parquet) in {out}")
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
                yield from batch.to_pylist()
        except (OSError, pa.ArrowException) as e:
            raise ShardError(f"{f.name}: cannot read parquet ({type(e).__name__}: {e})") from None


def load_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of a finished build; FileNotFoundError when there is none (not a dataset, or
    a build that has not finished), ShardError when it is unreadable or lacks what readers need."""
    p = Path(out) / MANIFEST
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist (is {out} a dataset built by `aot build-sft`, and did the build finish?)")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ShardError(f"{p}: unreadable manifest ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict):
        raise ShardError(f"{p}: unreadable manifest (a JSON object expected)")
    missing = [k for k in ("config_hash", "content_hash", "shards", "counts") if k not in m]
    shards = m.get("shards")
    if missing or not isinstance(shards, list) or not all(isinstance(s, dict) and {"file", "records", "content_hash"} <= set(s) for s in shards):
        raise ShardError(f"{p}: incomplete manifest ({'lacks ' + ', '.join(missing) if missing else 'bad shard list'})")
    return m
