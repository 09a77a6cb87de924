"""Reference points for the relative-op attacker (docs/attacker-experiments.md): hand-written
one-line policies in the relative ops.

    python experiments/attacker/fixed_mimic.py --n 500 --seed 0

``mimic1`` writes ``mimic T`` with T the question's first target (or the scene's first object
when the question has none); ``mimic3`` writes that line three times (the editor puts each
patch elsewhere). Prints success and integrity as ``aot attacker eval`` computes them.
"""

from __future__ import annotations

import argparse
import json

from aot.attack.data import eval_attack_items
from aot.attack.train import evaluate_attacker
from aot.models.defender import load_defender


class Fixed:
    def __init__(self, name: str, repeat: int):
        self.name, self.repeat = name, repeat

    def propose(self, batch):
        out = []
        for it in batch:
            t = it.question.targets[0].id if it.question.targets else it.scene.objects[0].id
            out.append("\n".join([f"mimic {t}"] * self.repeat))
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defender", default="base")
    a = ap.parse_args()
    items, d = eval_attack_items(a.n, a.seed), load_defender(a.defender)
    for name, k in (("mimic1", 1), ("mimic3", 3)):
        r = evaluate_attacker(Fixed(name, k), d, items)
        print(json.dumps({"policy": name, "n": a.n, "seed": a.seed, "success_rate": r["success_rate"], "integrity_pass_rate": r["integrity_pass_rate"]}), flush=True)


if __name__ == "__main__":
    main()
