"""The builder with a real vision-language defender (tiny random-init model from the registry):
answers come from batched, seeded ``Defender.generate`` and a rebuild is byte-identical."""

from __future__ import annotations

import dataclasses

import pytest

from aot.data import SFTBuildConfig, build_sft
from aot.data.answerers import DefenderAnswerer
from aot.data.store import iter_records
from aot.models import DEFAULT_TINY, load_defender


@pytest.fixture(scope="module")
def tiny():
    return DefenderAnswerer(load_defender(DEFAULT_TINY), max_new_tokens=6, batch_size=16)


def test_tiny_defender_build_is_seeded_and_reproducible(tiny, tmp_path):
    def factory():
        return tiny

    factory.fingerprint = DEFAULT_TINY  # type: ignore[attr-defined]
    cfg = SFTBuildConfig(n=3, shard_size=3, defender=DEFAULT_TINY, chunk=8, keep_useless=1.0, keep_clean=0.5)
    m1 = build_sft(cfg, tmp_path / "a", answerer_factory=factory, log=lambda _m: None)
    m2 = build_sft(cfg, tmp_path / "b", answerer_factory=factory, threads=2, log=lambda _m: None)  # threads: no effect on content
    assert m1["content_hash"] == m2["content_hash"] and m1["defender_id"] == DEFAULT_TINY
    m3 = build_sft(dataclasses.replace(cfg, seed=1), tmp_path / "c", answerer_factory=factory, log=lambda _m: None)
    assert m3["content_hash"] != m1["content_hash"]  # the hash does see the content
    recs = list(iter_records(tmp_path / "a"))
    assert len(recs) == 3
    for r in recs:
        assert len(r["defender_clean"]) == 1 and all(isinstance(a, str) for a in r["defender_clean"])
        assert len(r["defender_edited"]) == (3 if r["category"] != "clean" else 0)


def test_defender_answerer_greedy_and_seeded_samples(tiny):
    from aot.world import render, sample_question, sample_scene
    import numpy as np

    scenes = [sample_scene(i, "complex") for i in range(3)]
    qs = [sample_question(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    imgs = [render(s) for s in scenes]
    g = tiny(imgs, qs, 1, 0, 0.0)
    assert [len(x) for x in g] == [1, 1, 1] and g == tiny(imgs, qs, 1, 5, 0.0)  # greedy ignores the seed
    s1, s2 = tiny(imgs, qs, 2, 7, 1.0), tiny(imgs, qs, 2, 7, 1.0)
    assert [len(x) for x in s1] == [2, 2, 2] and s1 == s2
    # really sampled: not the greedy answer repeated, and another seed draws other samples
    assert any(a != gi[0] for si, gi in zip(s1, g) for a in si)
    assert tiny(imgs, qs, 2, 8, 1.0) != s1
    with pytest.raises(ValueError, match="greedy"):
        tiny(imgs, qs, 2, 0, 0.0)
