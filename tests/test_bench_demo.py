"""`aot demo` and the bench commands at tiny size: they run and report the figures they claim
(checked for consistency and against independent recounts, never for speed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from aot.cli import main


def _json_out(capsys):
    return json.loads(capsys.readouterr().out)


def test_world_bench_reports_the_scenes_it_timed(capsys):
    from aot.world import sample_scene

    assert main(["world", "bench", "--n", "10", "--repeats", "1", "--json"]) == 0
    res = _json_out(capsys)
    assert res["resolution"] == "96x96"  # the complex regime
    assert res["objects_mean"] == pytest.approx(np.mean([len(sample_scene(i, "complex").objects) for i in range(10)]))
    assert all(res[k] > 0 for k in ("render_per_s", "sample_per_s", "edit_render_integrity_per_s"))


def test_bench_eval_reports_batched_unbatched_and_their_ratio(capsys):
    assert main(["bench", "eval", "--model", "tiny-qwen2.5-vl", "--n", "8", "--batch-size", "4", "--json"]) == 0
    res = _json_out(capsys)
    assert (res["model"], res["n"], res["batch_size"], res["regime"]) == ("tiny-qwen2.5-vl", 8, 4, "simple")
    assert res["greedy_questions_per_s"] > 0 and res["unbatched_questions_per_s"] > 0
    assert res["batching_speedup"] == pytest.approx(res["greedy_questions_per_s"] / res["unbatched_questions_per_s"])


def test_bench_sampled_reports_both_paths_and_their_ratio(capsys):
    assert main(["bench", "sampled", "--model", "tiny-qwen2.5-vl", "--n", "8", "--k", "2", "--batch-size", "4", "--repeats", "1", "--json"]) == 0
    res = _json_out(capsys)
    assert (res["n"], res["k"], res["batch_size"], res["repeats"]) == (8, 2, 4, 1)
    assert res["speedup"] == pytest.approx(res["shared_questions_per_s"] / res["plain_questions_per_s"])


def test_bench_grpo_reports_rates_and_shares_of_the_measured_time(capsys):
    assert main(["bench", "grpo", "--model", "tiny-qwen2.5-vl", "--steps", "1", "--prompts", "2", "--generations", "2", "--json"]) == 0
    res = _json_out(capsys)
    assert (res["steps"], res["prompts_per_step"], res["num_generations"]) == (1, 2, 2)
    for path in ("repeated", "shared"):
        assert res[f"{path}_steps_per_s"] == pytest.approx(1 / res[f"{path}_seconds"])
        assert res[f"{path}_rollouts_per_s"] == pytest.approx(1 * 2 * 2 / res[f"{path}_seconds"])
        assert 0 < res[f"{path}_generation_share"] < 1
    assert res["speedup"] == pytest.approx(res["shared_steps_per_s"] / res["repeated_steps_per_s"])


def _flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}={v}"


def _micro_overrides(keep_demo: tuple[str, ...] = ("attacker_sft_min_examples",)) -> list[str]:
    """The micro preset's settings as --set overrides (so the demo runs at micro size), except
    ``keep_demo``: cheap settings left at the demo preset's value (which differs from the default)."""
    from aot.commands.train import resolve_config

    kvs = [kv for kv in _flat(yaml.safe_load(resolve_config("micro").read_text())) if kv.split("=")[0] not in keep_demo]
    return [x for kv in kvs for x in ("--set", kv)]


def test_demo_preset_is_the_whole_pipeline_from_the_born_defender():
    from aot.commands.train import resolve_config
    from aot.config import load_config
    from aot.selfplay import SelfPlayConfig, phases

    cfg = load_config(SelfPlayConfig, resolve_config("demo"), [])
    assert cfg.defender == "base" and cfg.iterations == 3 and cfg.eval_suite  # README: 3 iterations, then evaluation
    assert phases(cfg)[:3] == ["sft", "cold_start", "warmup"] and phases(cfg)[-1] == "eval"


@pytest.mark.slow
def test_aot_demo_runs_the_pipeline_and_writes_what_the_readme_lists(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *_micro_overrides(), "--set", "iterations=1"]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["phases"] == ["sft", "cold_start", "warmup", "iter1.attacker", "iter1.curriculum", "iter1.defender", "eval"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 7
    for arm in ("base", "final"):
        res = json.loads((out / "eval" / arm / "results.json").read_text())
        assert set(res["suite"]) == {"vstar", "pope"}  # the micro override of the demo's suite
    assert 'id="comparison"' in (out / "report.html").read_text()
    ck = [p for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")]
    assert len(ck) == 1 and (ck[0] / "defender").is_dir()
    # the demo config with the overrides applied is the one saved beside the run
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["iterations"] == 1 and saved["defender"] == "base"
    # settings the micro overrides leave alone come from the demo preset, not the defaults
    from aot.commands.train import resolve_config
    from aot.config import to_dict
    from aot.selfplay import SelfPlayConfig

    def get(d, key):
        for part in key.split("."):
            d = d[part]
        return d

    overridden = {kv.split("=")[0] for kv in _micro_overrides()[1::2]} | {"iterations"}
    demo = {kv.split("=")[0] for kv in _flat(yaml.safe_load(resolve_config("demo").read_text()))}
    demo_only = sorted(demo - overridden)
    demo_yaml, defaults = yaml.safe_load(resolve_config("demo").read_text()), to_dict(SelfPlayConfig())
    assert demo_only and all(get(saved, k) == get(demo_yaml, k) for k in demo_only)
    assert any(get(demo_yaml, k) != get(defaults, k) for k in demo_only)
