"""`aot study`: a micro study end to end, killed midway and resumed; equal compute; comparisons."""

import json

import pytest

from aot import study as study_mod
from aot.cli import main
from aot.study import comparisons

MICRO = ["--config", "study-micro", "--set", "seeds=1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "a"
    assert main(["study", "--out", str(out), *MICRO]) == 0
    return out


def test_resume_after_a_kill_gives_the_same_table_and_skips_finished_work(uninterrupted, tmp_path, monkeypatch):
    out = tmp_path / "b"

    def killed(*a, **kw):
        raise KeyboardInterrupt  # the study dies in the oracle arm, after every run and the SFT arm

    monkeypatch.setattr(study_mod, "oracle_arm", killed)
    assert main(["study", "--out", str(out), *MICRO]) == 130  # Click: an interrupt exits 130
    assert (out / "seed0" / "aot" / "metrics.json").exists() and not (out / "study.json").exists()
    monkeypatch.undo()

    calls = []
    real_run, real_sft = study_mod.run_selfplay, study_mod.defender_sft_arm
    monkeypatch.setattr(study_mod, "run_selfplay", lambda *a, **kw: calls.append("run") or real_run(*a, **kw))
    monkeypatch.setattr(study_mod, "defender_sft_arm", lambda *a, **kw: calls.append("sft") or real_sft(*a, **kw))
    assert main(["study", "--out", str(out), *MICRO, "--resume"]) == 0
    assert calls == []  # the three runs and the SFT arm had finished: none was redone
    assert (out / "table.md").read_text() == (uninterrupted / "table.md").read_text()
    a, b = (json.loads((d / "study.json").read_text()) for d in (uninterrupted, out))
    assert a["differences"] == b["differences"] and a["summary"] == b["summary"]


def test_study_json_pairs_every_arm_with_base_on_the_same_items(uninterrupted):
    s = json.loads((uninterrupted / "study.json").read_text())
    assert s["arms"] == ["base", "clean", "random", "aot", "sft", "oracle"]
    assert set(s["differences"]) == {"clean - base", "random - base", "aot - base", "sft - base", "oracle - base",
                                     "aot - clean", "aot - random", "aot - sft", "aot - oracle"}
    assert s["units"]["vstar"] == 4 and s["units"]["pope"] == 6  # pope: 2 questions x 3 splits
    d = s["differences"]["aot - base"]["vstar/greedy/accuracy"]
    assert d["units"] == 4 and d["seeds"] == 1 and d["lo"] <= d["diff"] <= d["hi"]
    # the observed difference is the difference of the two arms' own reported accuracies
    aot, base = (s["summary"][a]["vstar/greedy/accuracy"][0] for a in ("aot", "base"))
    assert d["diff"] == pytest.approx(aot - base)
    table = (uninterrupted / "table.md").read_text()
    assert table.index("Paired differences") < table.index("Absolute values")


def test_arms_train_at_equal_compute(uninterrupted):
    steps = {}
    for arm in ("clean", "random", "aot"):
        ms = json.loads((uninterrupted / "seed0" / arm / "metrics.json").read_text())["metrics"]
        steps[arm] = [(m["phase"], m["defender/steps"]) for m in ms if "defender/steps" in m]
    assert steps["clean"] == steps["random"] == steps["aot"] == [("warmup", 1), ("iter1.defender", 2)]
    for arm in ("sft", "oracle"):
        m = json.loads((uninterrupted / "seed0" / f"{arm}_metrics.json").read_text())
        assert m["defender/sft_steps"] == 2  # iterations x defender_rl.max_steps


def test_a_study_folder_is_not_overwritten_without_resume(uninterrupted, capsys):
    before = (uninterrupted / "study.json").read_bytes()
    assert main(["study", "--out", str(uninterrupted), *MICRO]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (uninterrupted / "study.json").read_bytes() == before


def test_resume_with_another_config_is_refused(uninterrupted, capsys):
    assert main(["study", "--out", str(uninterrupted), *MICRO, "--set", "eval_n=5", "--resume"]) == 2
    assert "another config" in capsys.readouterr().err


def test_resume_may_drop_arms_and_keeps_their_finished_work(uninterrupted, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "c"
    shutil.copytree(uninterrupted, out)
    calls = []
    monkeypatch.setattr(study_mod, "run_selfplay", lambda *a, **kw: calls.append("run"))
    assert main(["study", "--out", str(out), *MICRO, "--set", "arms=[base,clean,aot]", "--resume"]) == 0
    assert calls == []  # the kept arms had finished
    s = json.loads((out / "study.json").read_text())
    assert s["arms"] == ["base", "clean", "aot"] and set(s["differences"]) == {"clean - base", "aot - base", "aot - clean"}
    full = json.loads((uninterrupted / "study.json").read_text())
    assert s["differences"]["aot - base"] == full["differences"]["aot - base"]


def test_comparisons_by_hand():
    assert comparisons(["base", "clean", "aot"]) == [("base", "clean"), ("base", "aot"), ("clean", "aot")]
    assert comparisons(["base", "oracle"]) == [("base", "oracle")]
    assert comparisons(["clean", "random", "aot"]) == [("clean", "aot"), ("random", "aot")]


def test_seed_counts_beyond_the_disjoint_bases_are_refused(tmp_path, capsys):
    assert main(["study", "--out", str(tmp_path / "s"), *MICRO[:2], "--set", "seeds=30"]) == 2
    assert "seeds must be in 1..10" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_absolute_values_are_a_t_interval_over_seeds():
    from aot.study import aggregate

    res = {"aot": [{"metrics": {"vstar/greedy/accuracy": 0.5}}, {"metrics": {"vstar/greedy/accuracy": 0.7}}]}
    mean, half, n = aggregate(res)["aot"]["vstar/greedy/accuracy"]
    # sd of (0.5, 0.7) is 0.1414; t(0.975, df 1) = 12.706; half-width 12.706 * 0.1414 / sqrt(2) = 1.2706
    assert (mean, n) == (pytest.approx(0.6), 2) and half == pytest.approx(1.2706, abs=1e-3)


def test_detectable_effect_by_hand():
    from aot.study import detectable_effect

    # interval [-2, +4] points: half-width 3, SE 3 / 1.96 = 1.531; (1.960 + 0.842) x 1.531 = 4.288
    assert detectable_effect({"lo": -0.02, "hi": 0.04}) == pytest.approx(0.04288, abs=1e-5)
    assert detectable_effect({"lo": 0.1, "hi": 0.1}) == 0.0


def test_table_reports_the_detectable_effect_and_the_aot_run_per_iteration(uninterrupted):
    s = json.loads((uninterrupted / "study.json").read_text())
    assert set(s["per_iteration"]) >= {"monitor/attacker_success", "monitor/attacker_success_vs_new", "curriculum/effective", "curriculum/passing"}
    table = (uninterrupted / "table.md").read_text()
    assert "| detectable |" in table
    row = next(l for l in table.splitlines() if l.startswith("| 1 |"))  # iteration 1 of the one seed
    eff = s["per_iteration"]["curriculum/effective"][0][0]
    assert f"/ {eff:.1f} |" in row
