"""Calibration of the defender's training budget on a fixed curriculum.

The curriculum is fixed so only the budget varies: training items from the curriculum's source
(simple scenes extended into complex ones, bases below the evaluation range), half edited by the
``heuristic-relative`` attacker (edits that pass the integrity check), half clean. The defender
trains on it with GRPO (the paper's DAPO settings, with the refill) or, as the oracle ceiling,
with supervised answers on the same items; every ``--every`` steps it is measured on held-out
V*-like questions, clean simple scenes, and held-out items attacked by the same fixed attacker.
One JSON line per measurement goes to ``--out``; a finished (mode, lr) is skipped on rerun.

    python experiments/study/calibrate.py --mode grpo --lr 1e-4 --steps 200 --out docs/study/calibration.jsonl
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aot.attack import make_attacker
from aot.attack.data import ATTACK_EVAL_OFFSET, attack_items
from aot.edits import apply_program, parse_program
from aot.eval.core import EvalConfig, answer_text
from aot.eval.seeds import eval_scene_seed
from aot.eval.suite import run_suite
from aot.integrity import check
from aot.models.defender import conversation, load_defender, to_pil
from aot.models.prompt import format_prompt
from aot.models.tokenizer import answer_completion
from aot.rl.defender import QAItem, to_dataset
from aot.rl.grpo import RLConfig, make_trainer
from aot.rewards import defender_reward

CALIBRATION_BASE = 860  # training items: below the evaluation range, unused by self-play


def sft_trainer(d, examples, lr: float, steps: int, batch: int, output_dir: str, logging_steps: int = 5):
    """TRL's SFTTrainer on (image, prompt, completion) examples at a constant learning rate
    (loss on the completion only); shared with headroom.py."""
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    ds = Dataset.from_dict({
        "prompt": [conversation(p) for _, p, _ in examples],
        "completion": [[{"role": "assistant", "content": [{"type": "text", "text": c}]}] for _, _, c in examples],
        "images": [[to_pil(im)] for im, _, _ in examples],
    })
    args = TRLSFTConfig(output_dir=output_dir, use_cpu=True, per_device_train_batch_size=batch, num_train_epochs=1, max_steps=steps,
                        learning_rate=lr, report_to=[], save_strategy="no", logging_steps=logging_steps, disable_tqdm=True, max_length=None,
                        seed=0, data_seed=0, bf16=False, fp16=False, dataloader_num_workers=0, gradient_checkpointing=False,
                        lr_scheduler_type="constant")
    return SFTTrainer(model=d.model, processing_class=d.processor, args=args, train_dataset=ds)


def edited(items, attacker_name: str = "heuristic-relative"):
    """(item, edited image or None when the edit fails to apply or fails integrity)."""
    att = make_attacker(attacker_name)
    out = []
    for it, text in zip(items, att.propose(items)):
        try:
            res = apply_program(it.scene, parse_program(text), it.image)
            out.append(res.image if check(it.scene, it.image, it.question, res).passed else None)
        except ValueError:
            out.append(None)
    return out


def curriculum(n: int) -> list[QAItem]:
    items = attack_items(2 * n, CALIBRATION_BASE)
    ims = edited(items[:n])
    out = [QAItem(im, it.question) for it, im in zip(items[:n], ims) if im is not None]
    out += [QAItem(it.image, it.question) for it in items[n : n + len(out)]]
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.permutation(len(out))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="grpo", choices=["grpo", "sft"])
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--prompts", type=int, default=8, help="prompts (GRPO) or examples (SFT) per step")
    ap.add_argument("--refill", type=int, default=3)
    ap.add_argument("--n-vstar", type=int, default=400)
    ap.add_argument("--n-clean", type=int, default=200)
    ap.add_argument("--n-attacked", type=int, default=400)
    ap.add_argument("--out", default="docs/study/calibration.jsonl")
    a = ap.parse_args()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = {"mode": a.mode, "lr": a.lr, "prompts": a.prompts, "refill": a.refill if a.mode == "grpo" else 0}
    if out.exists():
        rows = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
        if any(all(r.get(k) == v for k, v in tag.items()) and r["step"] >= a.steps for r in rows):
            print("done already", tag)
            return
    torch.manual_seed(0)
    d = load_defender("base")
    ecfg = EvalConfig(n=a.n_vstar, sizes={"clean": a.n_clean}, seed=0, strict_trials=0)
    held = attack_items(a.n_attacked, 0, seed_fn=lambda i: eval_scene_seed(ATTACK_EVAL_OFFSET, 1, i))
    held_ims = edited(held)
    attacked = [(im, it.question) for it, im in zip(held, held_ims) if im is not None]
    clock = {"train": 0.0, "t": time.perf_counter()}
    stats: dict = {}

    def measure(step: int) -> None:
        was = d.model.training
        d.model.eval()
        t = time.perf_counter()
        with torch.no_grad():
            m = run_suite(d, "vstar,clean", ecfg)["metrics"]
            ans = d.answer([im for im, _ in attacked], [q for _, q in attacked], do_sample=False)
        att = float(np.mean([x[0] == q.answer for x, (_, q) in zip(ans, attacked)]))
        row = {**tag, "step": step, "train_s": round(clock["train"], 1), "eval_s": round(time.perf_counter() - t, 1),
               "vstar": m["vstar/greedy/accuracy"], "clean": m["clean/greedy/accuracy"], "attacked": att, "attacked_n": len(attacked), **stats}
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
        if was:
            d.model.train()

    from transformers import TrainerCallback

    class Every(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step % a.every == 0:
                clock["train"] += time.perf_counter() - clock["t"]
                if hasattr(trainer, "ds_kept"):
                    stats.update(kept=trainer.ds_kept, dropped=trainer.ds_dropped, trained=trainer.ds_trained)
                hist = [h for h in trainer.state.log_history if "reward" in h or "loss" in h]
                if hist:
                    stats["last"] = {k: hist[-1][k] for k in ("reward", "loss") if k in hist[-1]}
                measure(state.global_step)
                clock["t"] = time.perf_counter()

    measure(0)
    n_items = a.steps * a.prompts * (a.refill if a.mode == "grpo" else 1)
    items = curriculum(n_items)
    clock["t"] = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if a.mode == "grpo":
            cfg = RLConfig(learning_rate=a.lr, max_steps=a.steps, prompts_per_step=a.prompts, refill=a.refill, seed=0)
            trainer = make_trainer(d.model, d.processor, to_dataset(items), [defender_reward], cfg, tmp)
        else:
            examples = [(it.image, format_prompt(it.question), answer_completion(answer_text(it.question, it.question.answer), it.question.answer)) for it in items]
            trainer = sft_trainer(d, examples, a.lr, a.steps, a.prompts, tmp)
        trainer.add_callback(Every())
        trainer.train()


if __name__ == "__main__":
    main()
