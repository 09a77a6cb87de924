"""The AOT-SFT content hash of two small fixed builds, pinned.

The other builder tests compare a build with itself (resume, workers, Ray); only a pinned value
catches a change that moves every build the same way, such as a refactor of the item, editor or
integrity layers. If this fails on purpose (a new record field, a changed edit op), say so in
the change and update the values; the package version is part of every record, so it is fixed
here to keep a release from moving the pin.
"""

from __future__ import annotations

import pytest

import aot.data.build
import aot.data.sft
from aot.data import SFTBuildConfig, build_sft

PINNED = [
    (dict(n=12, shard_size=6, defender="scripted", chunk=8), "0836b211c63b1f6e8629acc4e1014b904eba08d30eb0e79f1e56284353a3676a"),
    (
        dict(n=12, shard_size=6, defender="scripted", chunk=8, attacker="heuristic", shuffle_options=True, seed=3),
        "be3ba11be2dd819220ad86a21aed414bbb46fadcb59574b07139b30308cdf7a8",
    ),
]


@pytest.mark.parametrize("kw,expected", PINNED, ids=["random", "heuristic-shuffled"])
def test_sft_content_hash_is_pinned(kw, expected, tmp_path, monkeypatch):
    for mod in (aot.data.sft, aot.data.build):
        monkeypatch.setattr(mod, "__version__", "0.1.0")
    m = build_sft(SFTBuildConfig(**kw), tmp_path, workers=1, resume=False, log=lambda _: None)
    assert m["counts"]["records"] == 12
    assert m["content_hash"] == expected
