"""`aot eval` end to end on a random-init tiny model (fast: tiny n, three benchmarks)."""

import json

import pytest

from aot.cli import main


def test_aot_eval_tiny_model(tmp_path):
    out = tmp_path / "ev"
    rc = main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar,pope,hallusion", "--n", "1", "--size", "vstar=2", "--seed", "3",
               "--out", str(out), "--report"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "tiny-qwen2.5-vl" and res["suite"] == ["vstar", "pope", "hallusion"]
    assert res["config"]["seed"] == 3 and res["config"]["n"] == 1 and res["config"]["sizes"] == {"vstar": 2}
    m = res["metrics"]
    for key in ("vstar/greedy/accuracy", "vstar/strict3/accuracy", "pope/greedy/adversarial/f1", "pope/strict3/mean/yes_ratio", "hallusion/greedy/qAcc"):
        assert key in m  # the values are recounted in test_aot_eval_metrics_recounted_from_predictions
    assert res["timing"]["items"] == 2 + 6 + 6 and res["timing"]["queries"] >= 2 * 14
    assert "predictions" not in res
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 14 and {p["bench"] for p in preds} == {"vstar", "pope", "hallusion"}
    table = (out / "table.md").read_text()
    assert "| vstar | accuracy |" in table and "| pope | adversarial/f1 |" in table and "strict-3" in table
    html = (out / "report.html").read_text()
    assert 'id="comparison"' in html and "tiny-qwen2.5-vl" in html


def test_aot_eval_metrics_recounted_from_predictions(tmp_path):
    """The shipped born defender (so accuracies are neither 0 nor 1): greedy and strict-3
    accuracy and the POPE figures recounted here from predictions.jsonl."""
    import numpy as np

    from aot.models.prompt import extract_choice

    out = tmp_path / "ev"
    assert main(["eval", "--model", "base", "--suite", "vstar,pope", "--n", "6", "--size", "vstar=12", "--seed", "3", "--out", str(out)]) == 0
    m = json.loads((out / "results.json").read_text())["metrics"]
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    for p in preds:  # each prediction is what the completion says, and correct means right
        assert p["pred"] == extract_choice(p["completion"], tuple(p["options"])) and p["correct"] == (p["pred"] == p["answer"])
        assert len(p["trials"]) == len(p["trial_preds"]) and p["trials"] == [t == p["answer"] for t in p["trial_preds"]]
    vstar = [p for p in preds if p["bench"] == "vstar"]
    assert len(vstar) == 12 and m["vstar/greedy/accuracy"] == pytest.approx(np.mean([p["correct"] for p in vstar]))
    assert 0 < m["vstar/greedy/accuracy"] < 1 or 0 < m["pope/greedy/mean/accuracy"] < 1  # a recount that can tell
    assert m["vstar/strict3/accuracy"] == pytest.approx(np.mean([len(p["trials"]) >= 3 and all(p["trials"]) for p in vstar]))
    for sub in {p["meta"]["subset"] for p in vstar}:
        assert m[f"vstar/greedy/{sub}/accuracy"] == pytest.approx(np.mean([p["correct"] for p in vstar if p["meta"]["subset"] == sub]))
    pope = [p for p in preds if p["bench"] == "pope"]
    subsets = sorted({p["meta"]["subset"] for p in pope})
    assert subsets == ["adversarial", "popular", "random"]
    accs = []
    for sub in subsets:
        ps = [p for p in pope if p["meta"]["subset"] == sub]
        said_yes = [p["pred"] is not None and p["options"]["ABCD".index(p["pred"])] == "yes" for p in ps]
        accs.append(np.mean([p["correct"] for p in ps]))
        assert m[f"pope/greedy/{sub}/accuracy"] == pytest.approx(accs[-1])
        assert m[f"pope/greedy/{sub}/yes_ratio"] == pytest.approx(np.mean(said_yes))
    assert m["pope/greedy/mean/accuracy"] == pytest.approx(np.mean(accs))


def test_aot_eval_rejects_unknown_benchmark(tmp_path, capsys):
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar,nope", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar", "--size", "vstar=x", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()


def test_aot_eval_rejects_bad_attacker_before_loading(tmp_path, capsys):
    assert main(["eval", "--model", "no-such-model-dir", "--suite", "heldout", "--attacker", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--attacker" in capsys.readouterr().err


def test_aot_eval_set_reaches_the_backend_options(tmp_path, capsys):
    out = tmp_path / "ev"
    opts = "backend.options={config: {eval_fraction: 0.5, judge: {ssim: {threshold: 0.9}}}}"
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--backend", "photos", "--suite", "backend-clean", "--n", "2", "--strict-trials", "0",
                 "--set", opts, "--set", "temperature=0.5", "--out", str(out)]) == 0
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["backend"]["options"] == {"config": {"eval_fraction": 0.5, "judge": {"ssim": {"threshold": 0.9}}}} and cfg["temperature"] == 0.5
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar", "--set", "temprature=0.5", "--out", str(tmp_path / "e2")]) == 2
    assert "temprature" in capsys.readouterr().err and not (tmp_path / "e2" / "results.json").exists()
