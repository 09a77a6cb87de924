"""The self-play loop end to end at a micro budget, and resume after a simulated kill."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from aot.cli import main
from aot.config import load_config
from aot.models.defender import load_defender
from aot.selfplay import SelfPlayConfig, phases, run_selfplay
from aot.commands.train import resolve_config

pytestmark = pytest.mark.slow


def _cfg(**over):
    return load_config(SelfPlayConfig, resolve_config("micro"), [f"{k}={v}" for k, v in over.items()])



@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--config", "micro", "--out", str(out), "--set", "iterations=2"])
    assert code == 0
    return out


def test_every_phase_ran_and_defender_changed(full_run):
    summary = json.loads((full_run / "metrics.json").read_text())
    assert summary["phases"] == phases(_cfg(iterations=2))
    lines = (full_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["phase"] for l in lines] == summary["phases"]
    assert (full_run / "config.yaml").exists() and (full_run / "curricula" / "iter2.jsonl").exists()
    ck = sorted((full_run / "checkpoints").iterdir())
    assert len(ck) == 1 and ck[0].name.endswith("eval")
    base, final = load_defender("base").model, load_defender(str(ck[0] / "defender")).model
    delta = sum((a - b).abs().sum().item() for a, b in zip(base.parameters(), final.parameters()))
    assert delta > 0
    by_phase = {m["phase"]: m for m in summary["metrics"]}
    assert by_phase["iter1.curriculum"]["curriculum/proposals"] == 8
    assert "monitor/clean_simple_acc" in by_phase["iter2.defender"]


def test_the_final_defender_meets_its_own_attackers_held_out_edits(full_run):
    from aot.eval.paired import PAIRED_METRICS

    metric = PAIRED_METRICS["heldout/greedy/attacked/accuracy"]
    res = {}
    for arm in ("base", "final"):
        r = json.loads((full_run / "eval" / "attacker" / arm / "results.json").read_text())
        preds = [json.loads(l) for l in (full_run / "eval" / "attacker" / arm / "predictions.jsonl").read_text().splitlines()]
        assert r["benchmarks"]["heldout"]["info"]["n"] == 4 and r["config"]["attacker"] != "heuristic"
        # the paired metric recounts the benchmark's own figure from the rows
        assert metric(preds) == pytest.approx(r["metrics"]["heldout/greedy/attacked/accuracy"])
        res[arm] = preds
    # the same edited images for both defenders: the programs of the run's attacker, once
    assert [p["meta"] for p in res["base"]] == [p["meta"] for p in res["final"]]
    m = json.loads((full_run / "metrics.json").read_text())["metrics"][-1]
    assert "eval/attacker/final/heldout/greedy/attacked/accuracy" in m
    import html

    assert "Against this run's last attacker, on held-out questions" in html.unescape((full_run / "report.html").read_text())


def test_resume_after_kill_skips_finished_phases_and_matches_uninterrupted(full_run, tmp_path, monkeypatch):
    import aot.data.build
    import aot.selfplay as sp

    out = tmp_path / "resumed"
    cfg = _cfg(iterations=2)
    run_selfplay(cfg, out, stop_after="iter2.attacker", log=lambda s: None)
    state_phases = json.loads(next((out / "checkpoints").iterdir()).joinpath("state.json").read_text())["done"]
    assert state_phases[-1] == "iter2.attacker"
    first = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    # count the work the resumed run does: finished phases must not run again
    calls = {}

    def counting(name, fn):
        def wrapped(*a, **k):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **k)
        return wrapped

    for name in ("train_attacker", "cold_start", "train_defender", "build_curriculum", "init_attacker"):
        monkeypatch.setattr(sp, name, counting(name, getattr(sp, name)))
    monkeypatch.setattr(aot.data.build, "build_sft", counting("build_sft", aot.data.build.build_sft))
    logs = []
    resumed = run_selfplay(cfg, out, resume=True, log=logs.append)
    assert logs[0].startswith("resuming after phase iter2.attacker")
    assert calls == {"build_curriculum": 1, "train_defender": 1}  # iter2.curriculum and iter2.defender only
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["phase"] for m in lines] == phases(cfg)  # each phase once
    assert lines[: len(first)] == first and resumed["metrics"][: len(first)] == first  # the finished phases' records kept as they were
    full = json.loads((full_run / "metrics.json").read_text())
    strip = lambda s: [{k: v for k, v in m.items() if not k.startswith("time/")} for m in s["metrics"]]
    assert strip(resumed) == strip(full)


def test_resume_refuses_a_changed_config(full_run, tmp_path):
    with pytest.raises(ValueError, match="another config"):
        run_selfplay(_cfg(iterations=2, seed=5), full_run, resume=True, log=lambda s: None)


def test_resume_of_a_moved_run_from_another_directory_has_no_duplicate_rows(full_run, tmp_path, monkeypatch):
    """state.json paths are relative to the run folder; metrics.jsonl is rewritten from the checkpoint."""
    cfg = _cfg(iterations=2)
    first = tmp_path / "a" / "run"
    run_selfplay(cfg, first, stop_after="iter1.curriculum", log=lambda s: None)
    with open(first / "metrics.jsonl", "a") as f:  # a row whose checkpoint was never written (a kill in between)
        f.write(json.dumps({"phase": "iter1.defender"}) + "\n")
    (tmp_path / "b").mkdir()
    shutil.move(first, tmp_path / "b" / "moved")
    monkeypatch.chdir(tmp_path / "b")
    resumed = run_selfplay(cfg, Path("moved"), resume=True, log=lambda s: None)
    rows = [json.loads(l)["phase"] for l in (tmp_path / "b" / "moved" / "metrics.jsonl").read_text().splitlines()]
    assert rows == phases(cfg)
    full = json.loads((full_run / "metrics.json").read_text())
    strip = lambda s: [{k: v for k, v in m.items() if not k.startswith("time/")} for m in s["metrics"]]
    assert strip(resumed) == strip(full)


def test_train_into_a_finished_run_is_refused(full_run):
    before = (full_run / "metrics.json").read_text()
    assert main(["train", "--config", "micro", "--out", str(full_run), "--set", "iterations=2"]) == 2
    assert (full_run / "metrics.json").read_text() == before and any((full_run / "checkpoints").iterdir())
