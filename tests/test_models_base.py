"""The shipped born defender (src/aot/assets/defender): loads offline, answers, stays small."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from aot.models import ASSET_DIR, load_defender
from aot.models.evaluation import evaluate_defender

pytestmark = pytest.mark.skipif(not (ASSET_DIR / "model.safetensors").exists(), reason="born defender not shipped")


def test_asset_is_small_and_complete():
    total = sum(p.stat().st_size for p in ASSET_DIR.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024
    for f in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json", "aot_defender.json"):
        assert (ASSET_DIR / f).exists(), f


def test_base_answers_simple_questions_in_format():
    d = load_defender("base")
    assert d.model.config.model_type == "aot_vlm"
    res = evaluate_defender(d, regime="simple", n=128, seed=3, strict_k=0)
    # loose bounds on 128 questions: the shipped figures are measured on 1,000 (85.2%, see README)
    assert res["format_rate"] >= 0.95
    assert res["accuracy"] >= 0.7  # the answer priors alone give about 0.5


def test_base_is_fragile_on_complex_scenes():
    """AOT needs a defender that complex scenes break: at least 15 points lower there."""
    d = load_defender("base")
    simple = evaluate_defender(d, regime="simple", n=128, seed=4, strict_k=0)["accuracy"]
    complex_ = evaluate_defender(d, regime="complex", n=128, seed=4, strict_k=0)["accuracy"]
    assert simple - complex_ >= 0.15
