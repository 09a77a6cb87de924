"""`aot study`: every baseline at equal defender training compute, over several seeds.

Arms (per seed; all start from the same born defender):
    base      no training
    warmup    stage 0 only (defender RL on clean items)
    clean     warm-up + N iterations of defender RL on clean curricula (clean-data ablation)
    random    warm-up + N iterations on curricula edited by the random attacker (random-edit augmentation)
    sft       warm-up + defender SFT on AOT-SFT (edited and clean images with true answers),
              N x defender_rl.max_steps steps of defender_rl.prompts_per_step examples
    aot1..N   the AOT run's defender after each iteration

The RL arms (clean, random, aot) run the very same loop (``aot.selfplay``) with a different
curriculum source, so their defender phases see the same number of prompts, rollouts and
steps; the warm-up is the same computation in each (phase seeds come from phase names).
Each arm is evaluated with ``aot.eval.run_suite`` on seeds disjoint from all training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .config import dump_config
from .eval.metrics import mean_ci95
from .io import atomic_write_json, atomic_write_text
from .models.defender import load_defender
from .models.tokenizer import answer_completion
from .selfplay import SelfPlayConfig, run_selfplay
from .sft import SFTConfig, sft_vlm

ARMS = ("base", "warmup", "clean", "random", "sft", "aot")


@dataclass
class StudyConfig:
    """What `aot study` runs."""

    run: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    """The AOT run; the baselines are derived from it."""
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    """Arms to run (see the module docstring)."""
    eval_suite: str = "vstar,hr,pope,clean,robust"
    """Benchmarks each arm is evaluated on."""
    eval_n: int = 64
    """Units per benchmark."""
    sft_learning_rate: float = 2e-4
    """Learning rate of the defender-SFT baseline."""

    def __post_init__(self) -> None:
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ValueError(f"unknown arm(s) {bad}; choose from {ARMS}")


def _arm_run(cfg: StudyConfig, seed: int, source: str, iterations: int | None = None) -> SelfPlayConfig:
    r = cfg.run
    return replace(
        r, seed=seed, eval_suite="", save_defenders=True,
        iterations=r.iterations if iterations is None else iterations,
        curriculum=replace(r.curriculum, source=source),
    )


def defender_sft_arm(cfg: StudyConfig, seed: int, sft_dir: Path, warm_dir: Path, out: Path) -> dict[str, Any]:
    """The defender-SFT baseline: from the warm-up defender, SFT on AOT-SFT records."""
    from .attack.data import record_item
    from .data.store import iter_records
    from .io import decode_png

    d = load_defender(str(warm_dir))
    cols = ["id", "effective", "category", "scene", "scene_seed", "question_kind", "question", "options", "answer", "answer_text", "targets", "question_spec", "clean_image", "edited_image", "edit_program"]
    examples = []
    for rec in iter_records(sft_dir, columns=cols):
        it = record_item(rec)
        img = rec["edited_image"]
        image = decode_png(img["bytes"] if isinstance(img, dict) else img, what=f"record {rec['id']} edited_image")
        from .models.prompt import format_prompt

        examples.append((image, format_prompt(it.question), answer_completion(rec["answer_text"], rec["answer"])))
    r = cfg.run
    steps = max(1, r.iterations * r.defender_rl.max_steps)
    m = sft_vlm(d, examples, SFTConfig(learning_rate=cfg.sft_learning_rate, batch_size=r.defender_rl.prompts_per_step, max_steps=steps, seed=seed), prefix="defender")
    d.save(out)
    return m


def run_study(cfg: StudyConfig, seeds: list[int], out: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every arm for every seed (resuming finished runs), evaluate, aggregate, report."""
    from .eval.core import EvalConfig
    from .eval.suite import run_suite, write_results
    from .report import build_report, table_from_results

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.yaml", dump_config(cfg))
    results: dict[str, list[dict[str, Any]]] = {}
    monitors: dict[str, list[list[Any]]] = {}
    for seed in seeds:
        sd = out / f"seed{seed}"
        models: dict[str, str] = {}
        if "base" in cfg.arms:
            models["base"] = cfg.run.defender
        runs: dict[str, Path] = {}
        need_aot = "aot" in cfg.arms or "sft" in cfg.arms
        for arm, source in (("aot", "attacker"), ("clean", "clean"), ("random", "random")):
            if arm == "aot" and not need_aot or arm != "aot" and arm not in cfg.arms:
                continue
            log(f"seed {seed}: {arm} run")
            run_selfplay(_arm_run(cfg, seed, source), sd / arm, resume=True, log=log)
            runs[arm] = sd / arm
        if "warmup" in cfg.arms:
            src = next(iter(runs.values()), None)
            if src is None:
                run_selfplay(_arm_run(cfg, seed, "clean", iterations=0), sd / "warmup", resume=True, log=log)
                src = sd / "warmup"
            models["warmup"] = str(src / "defenders" / "warmup")
        for arm in ("clean", "random"):
            if arm in runs:
                models[arm] = str(runs[arm] / "defenders" / f"iter{cfg.run.iterations}")
        if "aot" in cfg.arms:
            for i in range(1, cfg.run.iterations + 1):
                models[f"aot{i}"] = str(runs["aot"] / "defenders" / f"iter{i}")
            metrics = json.loads((runs["aot"] / "metrics.json").read_text())["metrics"]
            by = {m["phase"]: m for m in metrics}
            for i in range(1, cfg.run.iterations + 1):
                monitors.setdefault("attacker_success", [[] for _ in range(cfg.run.iterations)])[i - 1].append(by.get(f"iter{i}.attacker", {}).get("monitor/attacker_success"))
        if "sft" in cfg.arms:
            sft_out = sd / "sft_defender"
            if not (sft_out / "config.json").exists():
                log(f"seed {seed}: defender SFT on AOT-SFT")
                m = defender_sft_arm(cfg, seed, runs["aot"] / "sft", runs["aot"] / "defenders" / "warmup", sft_out)
                atomic_write_json(sd / "sft_metrics.json", m)
            models["sft"] = str(sft_out)
        ecfg = EvalConfig(n=cfg.eval_n, seed=seed % 100)
        for arm, path in models.items():
            res_path = sd / "eval" / arm / "results.json"
            if res_path.exists():
                res = json.loads(res_path.read_text())
            else:
                log(f"seed {seed}: evaluating {arm}")
                res = run_suite(load_defender(path), cfg.eval_suite, ecfg)
                res["model"] = arm
                write_results(res, sd / "eval" / arm)
            results.setdefault(arm, []).append(res)
    summary = aggregate(results)
    atomic_write_json(out / "study.json", {"seeds": seeds, "arms": list(results), "summary": summary})
    atomic_write_text(out / "table.md", study_table_md(summary, results))
    data = {
        "title": "AOT study",
        "notes": f"{len(seeds)} seed(s); mean ± 95% CI (t interval) over seeds; equal defender training compute across RL arms.",
        "table": table_from_results(results),
    }
    if monitors:
        data["per_iteration"] = {"iterations": list(range(1, cfg.run.iterations + 1)), "metrics": {}, "attacker_success": monitors["attacker_success"]}
    build_report(data, out / "report.html")
    return summary


def aggregate(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[float]]]:
    """{arm: {metric: [mean, ci95 half-width, n]}} over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for arm, rs in results.items():
        keys = sorted({k for r in rs for k in r.get("metrics", {})})
        out[arm] = {}
        for k in keys:
            vals = [r["metrics"][k] for r in rs if r.get("metrics", {}).get(k) is not None]
            if vals:
                m, h = mean_ci95(vals)
                out[arm][k] = [m, h, len(vals)]
    return out


HEADLINE = [
    "vstar/greedy/accuracy", "vstar/strict3/accuracy", "hr/greedy/accuracy", "pope/greedy/adversarial/f1",
    "pope/greedy/mean/f1", "clean/greedy/accuracy", "robust/greedy/attacked/accuracy",
]


def study_table_md(summary: dict[str, dict[str, list[float]]], results: dict[str, list[dict[str, Any]]]) -> str:
    cols = [c for c in HEADLINE if any(c in s for s in summary.values())]
    if not cols:
        cols = sorted({k for s in summary.values() for k in s})[:8]
    lines = ["| arm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm, s in summary.items():
        cells = [f"{100 * s[c][0]:.1f} ± {100 * s[c][1]:.1f}" if c in s else "–" for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
