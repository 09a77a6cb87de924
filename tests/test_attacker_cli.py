"""`aot attacker eval` at tiny n: the JSON's rates recounted here from the lower-level API
(parse, apply, integrity check, greedy defender answers), not from the scoring module."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aot.attack import make_attacker
from aot.attack.data import eval_attack_items
from aot.cli import main
from aot.edits import EditError, apply_program, parse_program
from aot.eval.seeds import is_eval_seed
from aot.integrity import check
from aot.models.defender import load_defender


@pytest.mark.parametrize("attacker", ["random", "heuristic"])
def test_attacker_eval_json_matches_an_independent_recount(attacker, capsys):
    n, seed = 8, 3
    assert main(["attacker", "eval", "--attacker", attacker, "--defender", "base", "--n", str(n), "--seed", str(seed), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (res["attacker"], res["defender"], res["n"], res["temperature"]) == (attacker, "base", n, 0.0)

    items = eval_attack_items(n, seed)
    assert all(is_eval_seed(it.seed) for it in items)  # held out: the evaluation range
    texts = make_attacker(attacker).propose(items)  # both seed their programs by the items
    d = load_defender("base")
    clean = [a[0] == it.question.answer for a, it in zip(d.answer([it.image for it in items], [it.question for it in items]), items)]
    parsed, passed, first_ops, edited = [], [], [], {}
    for i, (it, t) in enumerate(zip(items, texts)):
        try:
            prog = parse_program(t)
            r = apply_program(it.scene, prog, it.image)
        except EditError:
            parsed.append(False), passed.append(False)
            continue
        parsed.append(True)
        first_ops.append(type(prog[0]).__name__)
        ok = check(it.scene, it.image, it.question, r).passed
        passed.append(ok)
        if ok and clean[i]:
            edited[i] = r.image
    ask = sorted(edited)
    wrong = {i: a[0] != items[i].question.answer for i, a in zip(ask, d.answer([edited[i] for i in ask], [items[i].question for i in ask]))}
    success = [wrong.get(i, False) for i in range(n)]

    assert res["parse_rate"] == sum(parsed) / n
    assert res["integrity_pass_rate"] == sum(passed) / n
    assert res["clean_correct_rate"] == sum(clean) / n
    assert res["success_rate"] == sum(success) / n
    assert res["op_mix"] == pytest.approx({k: v / len(first_ops) for k, v in Counter(first_ops).items()})
    assert {k: v["n"] for k, v in res["by_kind"].items()} == dict(Counter(it.question.kind for it in items))
    assert {k: v["n"] for k, v in res["by_op"].items()} == dict(Counter(first_ops)) | ({"none": n - len(first_ops)} if len(first_ops) < n else {})
    assert sum(v["success_rate"] * v["n"] for v in res["by_kind"].values()) == pytest.approx(sum(success))


def test_attacker_eval_rejects_an_unknown_attacker(tmp_path, capsys):
    assert main(["attacker", "eval", "--attacker", str(tmp_path / "nope"), "--n", "2"]) == 2
    assert "neither a registered attacker" in capsys.readouterr().err
