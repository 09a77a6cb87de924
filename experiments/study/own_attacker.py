"""Every arm of a finished study against the AOT run's own last attacker, on held-out questions.

The study's ``robust`` benchmark attacks with random single-op edits; this asks the AOT-specific
question: does the AOT defender resist *its opponent's* edits better than base and than the
defenders trained at the same compute on clean or randomly edited curricula? For each training
seed, that seed's last AOT attacker edits ``--n`` held-out questions (the ``heldout`` benchmark,
evaluation seed of the study) once; every arm's defender answers the same clean and edited images,
and the differences are paired (bootstrap over (seed, base question) units, ``aot.eval.paired``:
each seed's attacker edits other images, so seeds are pooled rather than averaged).

Appends one JSON line per seed to ``--out`` (a seed already there is skipped: rerun to resume),
then prints the differences over the seeds it holds.

    python experiments/study/own_attacker.py --study runs/study --n 1000 --out docs/study/powered/own_attacker.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aot.attack import ProposeOnce
from aot.backends import build_backend
from aot.config import load_config
from aot.eval.core import EvalConfig
from aot.eval.paired import PAIRED_METRICS, bench_rows, paired_bootstrap
from aot.eval.suite import run_suite
from aot.models.defender import load_defender
from aot.selfplay import load_attacker
from aot.study import StudyConfig

METRIC = "heldout/greedy/attacked/accuracy"


def arm_paths(study: Path, cfg: StudyConfig, seed: int) -> dict[str, str]:
    sd, last = study / f"seed{seed}", cfg.run.iterations
    paths = {"base": cfg.run.defender, "clean": sd / "clean" / "defenders" / f"iter{last}", "random": sd / "random" / "defenders" / f"iter{last}",
             "oracle": sd / "oracle_defender", "aot": sd / "aot" / "defenders" / f"iter{last}"}
    return {a: str(p) for a, p in paths.items() if a == "base" or Path(p).exists()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000, help="held-out base questions per seed")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-boot", type=int, default=4000)
    args = ap.parse_args()
    cfg = load_config(StudyConfig, args.study / "study.yaml")
    done = {json.loads(line)["seed"]: json.loads(line) for line in args.out.read_text().splitlines()} if args.out.exists() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in range(cfg.seeds):
        if seed in done or not (args.study / f"seed{seed}" / "aot" / "metrics.json").exists():
            continue
        t = time.perf_counter()
        attacker = ProposeOnce(load_attacker(args.study / f"seed{seed}" / "aot" / "attackers" / f"iter{cfg.run.iterations}", build_backend(None)))
        ecfg = EvalConfig(n=args.n, seed=cfg.eval_seed, attacker=attacker, strict_trials=0)
        rows = {}
        for arm, path in arm_paths(args.study, cfg, seed).items():
            res = run_suite(load_defender(path), "heldout", ecfg)
            rows[arm] = bench_rows(res, "heldout")
            print(f"seed {seed} {arm}: attacked {res['metrics'][METRIC]:.3f}, clean {res['metrics']['heldout/greedy/clean/accuracy']:.3f}, "
                  f"success {res['metrics']['heldout/greedy/success']:.3f}", flush=True)
        info = res["benchmarks"]["heldout"]["info"]
        line = {"seed": seed, "n": args.n, "integrity_pass_rate": info["integrity_pass_rate"], "seconds": round(time.perf_counter() - t, 1),
                "rows": {a: [[r["correct"], r["meta"]["role"], bool(r["meta"].get("valid")), r["meta"]["base"]] for r in rs] for a, rs in rows.items()}}
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        done[seed] = line
    if not done:
        return
    # rebuild the rows the paired metric reads. Each seed's attacker edits other images, so the
    # seeds are pooled: a unit is (seed, base question), resampled as one; per-seed differences beside
    def rebuild(compact, seed):
        return [{"bench": "heldout", "text": f"{seed}/{b}", "options": [], "answer": "", "correct": c, "meta": {"role": role, "valid": v, "base": (seed, b)}}
                for c, role, v, b in compact]

    def pooled(arm):
        return [r for s in seeds for r in rebuild(done[s]["rows"][arm], s)]

    metric, seeds = PAIRED_METRICS[METRIC], sorted(done)
    arms = [a for a in ("base", "clean", "random", "oracle", "aot") if all(a in done[s]["rows"] for s in seeds)]
    summary = {"seeds": seeds, "n": done[seeds[0]]["n"], "integrity_pass_rate": [done[s]["integrity_pass_rate"] for s in seeds],
               "ci": "percentile bootstrap over (seed, base question) units, seeds pooled",
               "accuracy": {a: metric(pooled(a)) for a in arms}, "differences": {}}
    for a, b in [("base", x) for x in arms if x != "base"] + [(x, "aot") for x in ("clean", "random", "oracle") if x in arms]:
        d = paired_bootstrap([(pooled(a), pooled(b))], metric, n_boot=args.n_boot)
        per_seed = [metric(rebuild(done[s]["rows"][b], s)) - metric(rebuild(done[s]["rows"][a], s)) for s in seeds]
        summary["differences"][f"{b} - {a}"] = {"diff": d["diff"], "lo": d["lo"], "hi": d["hi"], "units": d["units"], "seed_diffs": per_seed}
        print(f"{b} - {a}: {100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] points ({d['units']} (seed, question) units; "
              f"per seed {', '.join(f'{100 * x:+.1f}' for x in per_seed)})")
    args.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
