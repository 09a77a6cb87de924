"""Ray: a 2-worker build writes the same shards as a single process (local Ray, ~20 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aot.data import SFTBuildConfig, build_sft

CFG = dict(n=24, shard_size=8, defender="scripted", chunk=16)


def build(out: Path, workers: int) -> dict:
    return build_sft(SFTBuildConfig(**CFG), out, workers=workers, log=lambda _m: None)


def test_ray_two_workers_write_the_same_bytes_as_one_process(tmp_path):
    pytest.importorskip("ray")
    src = tmp_path / "one"
    m = build(src, workers=1)
    m2 = build(tmp_path / "two", workers=2)
    assert m2["content_hash"] == m["content_hash"]
    for f in sorted(src.glob("shard-*.parquet")):
        assert (tmp_path / "two" / f.name).read_bytes() == f.read_bytes()
    assert {k: v for k, v in m2.items() if k not in ("build",)} == {k: v for k, v in m.items() if k not in ("build",)}
