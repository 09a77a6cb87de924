"""Headroom of the born defender: supervised training on complex-regime items with the true
answers (the oracle: the best any curriculum could teach), evaluated on held-out V*-like and
clean-scene questions every ``--every`` steps. Appends one JSON line per evaluation to ``--out``
(resumable by rerunning: finished (source, lr) runs are skipped).

    python experiments/study/headroom.py --source complex --lr 5e-4 --steps 600 --out docs/study/headroom.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from aot.eval.core import EvalConfig
from aot.eval.suite import run_suite
from aot.models.defender import load_defender
from aot.models.prompt import format_prompt
from aot.models.tokenizer import answer_completion
from aot.world import render, sample_question, sample_scene
from aot.world.dataset import scene_seed
from aot.eval.core import answer_text

ORACLE_BASE = 850  # below the evaluation range (900+), unused by self-play


def oracle_items(n: int, source: str, base: int = ORACLE_BASE):
    """(image, prompt, completion) with true answers. 'complex': complex-regime scenes (the
    V*-like distribution); 'extended': simple scenes extended into complex ones (the
    curriculum's source)."""
    out = []
    if source == "extended":
        from aot.attack.data import attack_items

        for it in attack_items(n, base):
            q = it.question
            out.append((it.image, format_prompt(q), answer_completion(answer_text(q, q.answer), q.answer)))
        return out
    i = 0
    kinds = ("attribute", "relation", "existence", "count")
    while len(out) < n:
        s = scene_seed(base, i)
        i += 1
        sc = sample_scene(s, "complex")
        q = sample_question(sc, np.random.default_rng([s, 0x0AC]), kinds[i % 4])
        if q is None:
            continue
        out.append((render(sc), format_prompt(q), answer_completion(answer_text(q, q.answer), q.answer)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="complex", choices=["complex", "extended"])
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--every", type=int, default=150)
    ap.add_argument("--n-eval", type=int, default=500)
    ap.add_argument("--suite", default="vstar,clean")
    ap.add_argument("--replay", type=float, default=0.0, help="share of clean simple-scene examples mixed in (true answers)")
    ap.add_argument("--out", default="docs/study/headroom.jsonl")
    ap.add_argument("--model", default="base", help="defender to train: 'base' (shipped) or a saved directory")
    a = ap.parse_args()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = {"source": a.source, "lr": a.lr, "batch": a.batch, **({"replay": a.replay} if a.replay else {}), **({"model": a.model} if a.model != "base" else {})}
    if out.exists():
        rows = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
        if any(all(r.get(k) == v for k, v in tag.items()) and r.get("replay", 0.0) == a.replay and r["step"] == a.steps for r in rows):
            print("done already", tag)
            return
    from transformers import TrainerCallback

    d = load_defender(a.model)
    ecfg = EvalConfig(n=a.n_eval, seed=0, strict_trials=0)
    t_train = [0.0]

    def evaluate(step: int) -> None:
        was = d.model.training
        d.model.eval()
        t = time.perf_counter()
        with torch.no_grad():
            res = run_suite(d, a.suite, ecfg)
        m = res["metrics"]
        row = {**tag, "step": step, "train_s": round(t_train[0], 1), "eval_s": round(time.perf_counter() - t, 1),
               **{k: m[k] for k in m if k.endswith("greedy/accuracy") and k.count("/") == 2}}
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
        if was:
            d.model.train()

    class Every(TrainerCallback):
        def __init__(self):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step % a.every == 0:
                t_train[0] += time.perf_counter() - self.t
                evaluate(state.global_step)
                self.t = time.perf_counter()

    evaluate(0)
    n = a.steps * a.batch
    n_replay = int(round(n * a.replay))
    ex = oracle_items(n - n_replay, a.source)
    if n_replay:  # clean simple scenes with true answers (bases 870+, as the study's oracle replay)
        from aot.selfplay import simple_scenes

        ex += [(render(sc), format_prompt(q), answer_completion(answer_text(q, q.answer), q.answer)) for sc, q in simple_scenes(n_replay, ORACLE_BASE + 20)]
        ex = [ex[i] for i in np.random.default_rng(0).permutation(len(ex))]
    import tempfile

    from calibrate import sft_trainer  # the same trainer settings (this folder is on sys.path when run as a script)

    with tempfile.TemporaryDirectory() as tmp:
        tr = sft_trainer(d, ex, a.lr, a.steps, a.batch, tmp, logging_steps=10)
        tr.add_callback(Every())
        tr.train()


if __name__ == "__main__":
    main()
