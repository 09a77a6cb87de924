"""`aot eval` end to end on a random-init tiny model (fast: tiny n, three benchmarks)."""

import json

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
        assert key in m and 0.0 <= m[key] <= 1.0
    assert res["timing"]["items"] == 2 + 6 + 6 and res["timing"]["queries"] >= 2 * 14
    assert "predictions" not in res
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 14 and {p["bench"] for p in preds} == {"vstar", "pope", "hallusion"}
    table = (out / "table.md").read_text()
    assert "| vstar | accuracy |" in table and "| pope | adversarial/f1 |" in table and "strict-3" in table
    html = (out / "report.html").read_text()
    assert 'id="comparison"' in html and "tiny-qwen2.5-vl" in html


def test_aot_eval_rejects_unknown_benchmark(tmp_path, capsys):
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar,nope", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--suite", "vstar", "--size", "vstar=x", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()


def test_aot_eval_rejects_bad_attacker_before_loading(tmp_path, capsys):
    assert main(["eval", "--model", "no-such-model-dir", "--suite", "heldout", "--attacker", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--attacker" in capsys.readouterr().err
