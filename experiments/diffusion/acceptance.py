"""The diffusion attacker's acceptance measurement: Flow-GRPO editor vs the untrained editor vs program attackers.

Every arm attacks the same ``--n`` held-out items (``eval_attack_items``) against the frozen
defender (greedy answers, as ``aot attacker eval``):

- ``trained``: the saved diffusion attacker (``aot attacker train --kind diffusion``, OUT/attacker):
  its proposer's box and description, filled by the editor with its Flow-GRPO LoRA;
- ``untrained``: the same proposer and the same editor without the LoRA, the same fill seeds;
- ``random`` / ``heuristic``: program attackers, rendered exactly, judged by the scene graph.

Per-item outcomes go to ``OUT/<arm>.jsonl`` in chunks of ``--chunk`` items (a chunk already there
is skipped: rerun to resume); then ``OUT/summary.json`` holds each arm's rates and the paired
differences in success rate (``aot.eval.paired.paired_rate_difference``, items resampled), and
``OUT/gallery.png`` the first fills that fool the defender (clean | untrained | trained).

    python experiments/diffusion/acceptance.py --attacker runs/diffusion_attacker/attacker --n 2000 --out docs/diffusion/acceptance
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aot.attack.data import eval_attack_items
from aot.attack.diffusion import ATTACKER_FILE, DiffusionAttacker, DiffusionAttackerConfig
from aot.attack.diffusion_train import evaluate_diffusion
from aot.attack.scoring import ScoringConfig, clean_correctness, score_programs
from aot.config import from_dict
from aot.eval.paired import paired_rate_difference
from aot.io import atomic_write_json
from aot.models.defender import load_defender

PROGRAM_ARMS = ("random", "heuristic")


def rows_of(scored) -> list[dict]:
    return [{"success": bool(s.success), "passed": bool(s.passed), "parsed": bool(s.parsed), "clean_correct": bool(s.clean_correct),
             "op": s.ops[0] if s.ops else None, "reasons": list(s.reasons)[:2], "fill": s.fill} for s in scored]


def run_arm(name: str, items, defender, attacker, out: Path, chunk: int, seed: int, keep: dict) -> list[dict]:
    path = out / f"{name}.jsonl"
    done = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    cfg = ScoringConfig(k=1, temperature=0.0)
    for lo in range(len(done), len(items), chunk):
        t = time.perf_counter()
        part = items[lo: lo + chunk]
        if name in PROGRAM_ARMS:
            clean = clean_correctness(defender, part, cfg)
            scored = score_programs(defender, part, attacker.propose(part), clean, cfg, backend=getattr(attacker, "backend", None))
        else:
            _, scored = evaluate_diffusion(attacker, defender, part, cfg, seed=seed, keep_images=True)
            for i, s in enumerate(scored):
                if s.edited_image is not None and len(keep.setdefault(name, {})) < 400:
                    keep[name][lo + i] = s.edited_image
        rows = [{"i": lo + i} | r for i, r in enumerate(rows_of(scored))]
        with path.open("a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        done += rows
        print(f"{name}: {len(done)}/{len(items)} items, success so far {np.mean([r['success'] for r in done]):.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    return done[: len(items)]


def rates(rows: list[dict]) -> dict:
    n = len(rows)
    return {"n": n, "success_rate": sum(r["success"] for r in rows) / n, "integrity_pass_rate": sum(r["passed"] for r in rows) / n,
            "proposal_rate": sum(r["parsed"] for r in rows) / n, "clean_correct_rate": sum(r["clean_correct"] for r in rows) / n,
            "integrity_among_fills": sum(r["passed"] for r in rows) / max(1, sum(r["parsed"] for r in rows))}


def gallery(items, keep: dict, rows: dict, path: Path, n: int = 8) -> None:
    """Items where the trained fill fools the defender: clean | untrained fill | trained fill."""
    from PIL import Image

    picks = [r["i"] for r in rows["trained"] if r["success"] and r["i"] in keep.get("trained", {}) and r["i"] in keep.get("untrained", {})][:n]
    if not picks:
        return
    strips = [np.concatenate([items[i].image, keep["untrained"][i], keep["trained"][i]], 1) for i in picks]
    h = max(s.shape[0] for s in strips)
    grid = np.concatenate([np.pad(s, ((0, h - s.shape[0]), (0, 0), (0, 0))) for s in strips], 0)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attacker", required=True, help="a saved diffusion attacker (OUT/attacker of aot attacker train --kind diffusion)")
    ap.add_argument("--defender", default="base")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--arms", default="untrained,trained,random,heuristic")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    items = eval_attack_items(args.n, args.seed)
    defender = load_defender(args.defender)
    from aot.attack import make_attacker

    keep: dict = {}
    rows, wall = {}, {}
    for name in args.arms.split(","):
        t = time.perf_counter()
        if name == "trained":
            att = DiffusionAttacker.load(args.attacker)
        elif name == "untrained":  # the saved settings (proposer, editor, judge) without its LoRA
            saved = json.loads((Path(args.attacker) / ATTACKER_FILE).read_text())["config"]
            att = DiffusionAttacker(from_dict(DiffusionAttackerConfig, saved))
        else:
            try:
                att = make_attacker(name, None, seed=args.seed)
            except TypeError:  # attackers without a seed
                att = make_attacker(name, None)
        rows[name] = run_arm(name, items, defender, att, args.out, args.chunk, args.seed, keep)
        wall[name] = time.perf_counter() - t
    summary = {"n": args.n, "seed": args.seed, "defender": args.defender, "attacker": args.attacker,
               "arms": {k: rates(v) for k, v in rows.items()}, "differences": {}}
    if "trained" in rows:
        for other in (a for a in rows if a != "trained"):
            summary["differences"][f"trained - {other}"] = paired_rate_difference(
                [r["success"] for r in rows[other]], [r["success"] for r in rows["trained"]])
    atomic_write_json(args.out / "summary.json", summary)
    if "trained" in keep and "untrained" in keep:
        gallery(items, keep, rows, args.out / "gallery.png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
