"""experiments/gpu/real_size.py: its CPU dry run (tiny models through the same code), its refusal
without a GPU, and its full-size configs (built on the meta device: parameter counts only)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "gpu" / "real_size.py"


@pytest.fixture(scope="module")
def real_size():
    spec = importlib.util.spec_from_file_location("real_size", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["real_size"] = mod  # its dataclass looks itself up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("real_size", None)


def test_the_tiny_dry_run_measures_every_piece(real_size, tmp_path):
    out = tmp_path / "summary.json"
    assert real_size.main(["--tiny", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for name in ("generate", "grpo_step", "inpaint"):
        assert "error" not in res[name] and res[name]["seconds"] > 0 and res[name]["peak_gib"] > 0, res[name]
    assert res["generate"]["sequences"] == 2 and res["grpo_step"]["rollouts"] == 4
    # paste-back: the box was painted and nothing outside it moved
    assert res["inpaint"]["kept_outside_mask"] and res["inpaint"]["changed_inside_mask"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script runs instead of refusing")
def test_without_a_gpu_it_refuses_with_a_reason(real_size):
    with pytest.raises(SystemExit, match="needs a CUDA GPU.*--tiny"):
        real_size.main([])


def test_the_full_size_configs_have_the_real_models_sizes(real_size):
    """Qwen2.5-VL-7B has 8.29 B parameters; FLUX.1-Fill-dev's transformer 11.9 B, T5-XXL's encoder
    4.76 B, CLIP-L's text tower 0.123 B (their published checkpoints)."""
    meta = torch.device("meta")
    d = real_size.build_defender(real_size.parse([]), meta)
    assert sum(p.numel() for p in d.model.parameters()) / 1e9 == pytest.approx(8.292, abs=0.01)
    pipe = real_size.flux_fill_random(meta)
    count = {k: sum(p.numel() for p in m.parameters()) / 1e9 for k, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    assert count["transformer"] == pytest.approx(11.90, abs=0.01) and count["text_encoder_2"] == pytest.approx(4.762, abs=0.01)
    assert count["text_encoder"] == pytest.approx(0.123, abs=0.001)
