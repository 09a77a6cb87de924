"""Warm-start the born defender on 8-pixel visual cells (``aot.models.restride``) and continue
its grounded pretraining on simple scenes, then measure it on 1,000 held-out simple and complex
questions. One JSON line per evaluation goes to ``--log``; the model is saved (atomically) at
every evaluation, so a stopped run keeps its latest state.

    python experiments/study/fine_cells.py --out runs/fine8 --steps 800 --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from aot.models.defender import load_defender
from aot.models.evaluation import evaluate_defender
from aot.pretrain import PretrainConfig, pretrain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/fine8")
    ap.add_argument("--init", default="base")
    ap.add_argument("--strides", default="2,2,2,1")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--log", default="docs/study/fine_cells.jsonl")
    a = ap.parse_args()
    init = a.init
    if init == "base":
        from aot.models.defender import ASSET_DIR

        init = str(ASSET_DIR)
    t0 = time.time()
    strides = tuple(int(s) for s in a.strides.split(",")) if a.strides else ()
    res = pretrain(PretrainConfig(
        out=a.out, init_from=init, vision_strides=strides, model="tiny-aot-vlm", vision_steps=0, steps=a.steps, lr=a.lr,
        warmup=a.warmup, schedule="cosine", caption_frac=0.0, letter_weight=1.0, copy_batch=0, aux_weight=1.0,
        patch_weight=0.0, ground_weight=1.0, ground_ref_head=4, eval_every=a.every, seed=a.seed, progress=False,
    ))
    train_min = (time.time() - t0) / 60
    d = load_defender(a.out)
    torch.set_num_threads(2)
    row = {"out": a.out, "strides": a.strides, "steps": a.steps, "lr": a.lr, "train_minutes": round(train_min, 1),
           "curve": [{k: r[k] for k in r if k in ("step", "accuracy", "minutes")} for r in res["curve"]]}
    for regime in ("simple", "complex"):
        r = evaluate_defender(d, regime, n=1000, seed=0, strict_k=0)
        row[regime] = round(r["accuracy"], 4)
        row[f"{regime}_by_kind"] = {k: round(v, 3) for k, v in r["accuracy_by_kind"].items()}
        row[f"{regime}_q_per_s"] = round(r["questions_per_s"], 1)
    print(json.dumps(row), flush=True)
    Path(a.log).parent.mkdir(parents=True, exist_ok=True)
    with open(a.log, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
