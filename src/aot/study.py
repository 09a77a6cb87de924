"""`aot study`: every baseline at equal defender training compute, over several seeds, with
paired differences.

Arms (per seed; all start from the same born defender):
    base      no training (evaluated once: it does not depend on the training seed)
    warmup    stage 0 only (defender RL on clean items)
    clean     warm-up + N iterations of defender RL on clean curricula (clean-data ablation)
    random    warm-up + N iterations on curricula edited by the random attacker (random-edit augmentation)
    sft       warm-up + defender SFT on AOT-SFT (edited and clean images with true answers)
    oracle    warm-up + defender SFT on fresh curriculum-source items with their true answers
              (plus the same clean replay share): the ceiling of what any curriculum can teach
              in the budget
    aot       the AOT run's defender after the last iteration (``aot1..aotN`` with
              ``eval_every_iteration``)

The RL arms (clean, random, aot) run the very same loop (``aot.selfplay``) with a different
curriculum source, so their defender phases see the same number of prompts, rollouts and
steps; the warm-up is the same computation in each (phase seeds come from phase names). The SFT
arms take as many optimizer steps as the RL arms' defender phases together, at the same batch.

Every arm of every seed is evaluated on the *same* held-out items (``eval_seed``), so an arm's
difference from another is measured item by item (``aot.eval.paired``: a bootstrap over units,
training seeds averaged inside each replicate). ``table.md`` leads with those differences;
the absolute table (mean and t interval over seeds) follows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .config import config_hash, dump_config
from .eval.metrics import mean_ci95
from .io import atomic_write_json, atomic_write_text
from .models.defender import load_defender
from .models.tokenizer import answer_completion
from .selfplay import SUCCESS_LABELS, SelfPlayConfig, run_selfplay
from .sft import SFTConfig, sft_vlm

ARMS = ("base", "warmup", "clean", "random", "sft", "oracle", "aot")
ORACLE_BASE = 850
"""Scene bases of the oracle arm: items at 850 + seed, clean replay at 870 + seed (below the
evaluation range, unused by self-play; experiments/study/calibrate.py uses 860)."""


@dataclass
class StudyConfig:
    """What `aot study` runs (preset: ``aot study --config study``)."""

    run: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    """The AOT run; the baselines are derived from it."""
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    """Arms to run (see the module docstring)."""
    seeds: int = 3
    """Training seeds (0..seeds-1); ``aot study --seeds`` overrides it."""
    eval_suite: str = "vstar,hr,pope,clean,robust"
    """Benchmarks each arm is evaluated on."""
    eval_n: int = 64
    """Units per benchmark (``eval_sizes`` overrides it per benchmark)."""
    eval_sizes: dict[str, int] = field(default_factory=dict)
    """Units for particular benchmarks, e.g. {pope: 500} (POPE counts questions per split)."""
    eval_seed: int = 0
    """Evaluation slice (0..99) shared by every arm and training seed: the pairing."""
    strict_trials: int = 0
    """Strict-mode trials per item (0: greedy only; 3 is the paper's strict mode, at 3x the cost)."""
    eval_every_iteration: bool = False
    """Also evaluate the AOT defender after each earlier iteration (``aot1``..)."""
    sft_learning_rate: float = 2e-4
    """Learning rate of the SFT arms (defender SFT on AOT-SFT, and the oracle)."""
    n_boot: int = 4000
    """Bootstrap replicates of each paired difference."""

    def __post_init__(self) -> None:
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ValueError(f"arms: unknown arm(s) {bad}; choose from {ARMS}")
        from .selfplay import MAX_SEED

        if not 1 <= self.seeds <= MAX_SEED:
            raise ValueError(f"seeds must be in 1..{MAX_SEED} (training seeds 0..{MAX_SEED - 1} own disjoint scene bases), got {self.seeds}")
        if self.eval_n < 1 or self.n_boot < 100:
            raise ValueError("eval_n must be >= 1 and n_boot >= 100")
        if not 0 <= self.eval_seed < 100:
            raise ValueError(f"eval_seed must be in [0, 100), got {self.eval_seed}")
        from .eval import resolve_suite

        try:
            resolve_suite(self.eval_suite)
        except ValueError as e:
            raise ValueError(f"eval_suite: {e}") from None
        if any(v < 1 for v in self.eval_sizes.values()):
            raise ValueError("eval_sizes must be >= 1")

    def eval_config(self):
        from .eval.core import EvalConfig

        return EvalConfig(n=self.eval_n, sizes=dict(self.eval_sizes), seed=self.eval_seed, strict_trials=self.strict_trials)


class StudyDirError(ValueError):
    """The study folder holds another study, or a study and no ``resume``."""


def _arm_run(cfg: StudyConfig, seed: int, source: str, iterations: int | None = None) -> SelfPlayConfig:
    r = cfg.run
    return replace(
        r, seed=seed, eval_suite="", save_defenders=True,
        iterations=r.iterations if iterations is None else iterations,
        curriculum=replace(r.curriculum, source=source),
    )


def _sft_steps(cfg: StudyConfig) -> int:
    """Optimizer steps of an SFT arm: as many as the RL arms' defender phases together."""
    return max(1, cfg.run.iterations * cfg.run.defender_rl.max_steps)


def defender_sft_arm(cfg: StudyConfig, seed: int, sft_dir: Path, warm_dir: Path, out: Path) -> dict[str, Any]:
    """The defender-SFT baseline: from the warm-up defender, SFT on AOT-SFT records."""
    from .attack.data import record_item
    from .data.store import iter_records
    from .io import decode_png
    from .models.prompt import format_prompt

    d = load_defender(str(warm_dir))
    cols = ["id", "effective", "category", "scene", "scene_seed", "question_kind", "question", "options", "answer", "answer_text", "targets", "question_spec", "clean_image", "edited_image", "edit_program"]
    examples = []
    for rec in iter_records(sft_dir, columns=cols):
        it = record_item(rec)
        img = rec["edited_image"]
        image = decode_png(img["bytes"] if isinstance(img, dict) else img, what=f"record {rec['id']} edited_image")
        examples.append((image, format_prompt(it.question), answer_completion(rec["answer_text"], rec["answer"])))
    r = cfg.run
    m = sft_vlm(d, examples, SFTConfig(learning_rate=cfg.sft_learning_rate, batch_size=r.defender_rl.prompts_per_step, max_steps=_sft_steps(cfg), seed=seed), prefix="defender")
    d.save(out)
    return m


def oracle_examples(cfg: StudyConfig, seed: int) -> list[tuple[Any, str, str]]:
    """The oracle's (image, prompt, true completion) examples: fresh items from the curriculum's
    source distribution (simple scenes extended into complex ones), as many as its steps use,
    plus clean simple-scene replay at the curriculum's share."""
    from .attack.data import attack_items
    from .eval.core import answer_text
    from .models.prompt import format_prompt
    from .selfplay import simple_scenes
    from .world.render import render

    n = _sft_steps(cfg) * cfg.run.defender_rl.prompts_per_step
    n_replay = int(round(n * cfg.run.curriculum.clean_replay / (1 + cfg.run.curriculum.clean_replay)))
    pairs = [(it.image, it.question) for it in attack_items(n - n_replay, ORACLE_BASE + seed)]
    pairs += [(render(sc), q) for sc, q in simple_scenes(n_replay, ORACLE_BASE + 20 + seed)]
    return [(im, format_prompt(q), answer_completion(answer_text(q, q.answer), q.answer)) for im, q in pairs]


def oracle_arm(cfg: StudyConfig, seed: int, warm_dir: Path, out: Path) -> dict[str, Any]:
    """The ceiling arm: from the warm-up defender, SFT with true answers on curriculum-source items."""
    d = load_defender(str(warm_dir))
    r = cfg.run
    m = sft_vlm(d, oracle_examples(cfg, seed), SFTConfig(learning_rate=cfg.sft_learning_rate, batch_size=r.defender_rl.prompts_per_step, max_steps=_sft_steps(cfg), epochs=1.0, seed=seed), prefix="defender")
    d.save(out)
    return m


def _check_dir(cfg: StudyConfig, out: Path, resume: bool) -> None:
    saved = out / "study.yaml"
    if not saved.exists():
        if out.exists() and any(out.iterdir()) and not resume:
            raise StudyDirError(f"{out} is not empty; choose another --out")
        return
    if not resume:
        raise StudyDirError(f"{out} already holds a study; pass --resume to continue it, or choose another --out")
    from .config import load_config

    try:
        prev = load_config(StudyConfig, saved)
    except ValueError as e:
        raise StudyDirError(f"cannot resume {out}: {saved} is unreadable ({e})") from None
    # seeds and arms may change on resume: every arm of every seed is its own folder, so adding
    # or dropping one leaves the others valid
    if config_hash(replace(prev, seeds=cfg.seeds, arms=cfg.arms)) != config_hash(cfg):
        raise StudyDirError(f"cannot resume {out}: it was started with another config (see {saved}); choose another --out")


def run_study(cfg: StudyConfig, out: str | Path, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every arm for every seed, evaluate each on the shared items, write ``study.json``,
    ``table.md`` and ``report.html``. ``resume`` continues a study: finished runs, arms and
    evaluations are kept (each is written atomically when it finishes) and the rest is done."""
    from .eval.suite import run_suite, write_results

    out = Path(out)
    _check_dir(cfg, out, resume)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.yaml", dump_config(cfg))
    t_start = time.perf_counter()
    seeds = list(range(cfg.seeds))
    ecfg = cfg.eval_config()
    results: dict[str, list[dict[str, Any]]] = {}
    wall: dict[str, float] = _load_json(out / "wall.json", {})

    def evaluate(arm: str, path: str, res_dir: Path) -> dict[str, Any]:
        res_path, pred_path = res_dir / "results.json", res_dir / "predictions.jsonl"
        if res_path.exists() and pred_path.exists():  # predictions.jsonl is written last
            res = json.loads(res_path.read_text())
            res["predictions"] = [json.loads(line) for line in pred_path.read_text().splitlines() if line.strip()]
            return res
        log(f"evaluating {arm} ({res_dir.relative_to(out)})")
        t = time.perf_counter()
        res = run_suite(load_defender(path), cfg.eval_suite, ecfg)
        res["model"] = arm
        write_results(res, res_dir)
        _add_wall(out, wall, f"eval/{res_dir.relative_to(out)}", time.perf_counter() - t)
        return res

    def timed(key: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        r = fn()
        _add_wall(out, wall, key, time.perf_counter() - t)
        return r

    base_res = evaluate("base", cfg.run.defender, out / "eval" / "base") if "base" in cfg.arms else None
    wasted: list[str] = []
    monitors: dict[str, list[list[Any]]] = {}
    for seed in seeds:
        sd = out / f"seed{seed}"
        models: dict[str, str] = {}
        runs: dict[str, Path] = {}
        need_aot = "aot" in cfg.arms or "sft" in cfg.arms
        need_warm = any(a in cfg.arms for a in ("warmup", "sft", "oracle"))
        for arm, source in (("aot", "attacker"), ("clean", "clean"), ("random", "random")):
            if arm == "aot" and not need_aot or arm != "aot" and arm not in cfg.arms:
                continue
            if not (sd / arm / "metrics.json").exists():
                log(f"seed {seed}: {arm} run")
                timed(f"seed{seed}/{arm}", lambda: run_selfplay(_arm_run(cfg, seed, source), sd / arm, resume=True, log=log))
            runs[arm] = sd / arm
            wasted += [f"seed{seed}/{arm}/{p}" for p in _wasted_phases(sd / arm)]
        warm_src = next(iter(runs.values()), None)
        if need_warm and warm_src is None:
            if not (sd / "warmup" / "metrics.json").exists():
                timed(f"seed{seed}/warmup", lambda: run_selfplay(_arm_run(cfg, seed, "clean", iterations=0), sd / "warmup", resume=True, log=log))
            warm_src = sd / "warmup"
        warm_dir = warm_src / "defenders" / "warmup" if warm_src is not None else None
        if "warmup" in cfg.arms:
            models["warmup"] = str(warm_dir)
        for arm in ("clean", "random"):
            if arm in runs:
                models[arm] = str(runs[arm] / "defenders" / f"iter{cfg.run.iterations}")
        if "aot" in cfg.arms:
            last = cfg.run.iterations
            for i in range(1, last + 1):
                if i == last or cfg.eval_every_iteration:
                    models["aot" if i == last else f"aot{i}"] = str(runs["aot"] / "defenders" / f"iter{i}")
            by = {m["phase"]: m for m in json.loads((runs["aot"] / "metrics.json").read_text())["metrics"]}
            for i in range(1, last + 1):
                for key, phase in per_iteration_keys(i):
                    monitors.setdefault(key, [[] for _ in range(last)])[i - 1].append(by.get(phase, {}).get(key))
        if "sft" in cfg.arms:
            sft_out = sd / "sft_defender"
            if not (sft_out / "config.json").exists():
                log(f"seed {seed}: defender SFT on AOT-SFT")
                m = timed(f"seed{seed}/sft", lambda: defender_sft_arm(cfg, seed, runs["aot"] / "sft", warm_dir, sft_out))
                atomic_write_json(sd / "sft_metrics.json", m)
            models["sft"] = str(sft_out)
        if "oracle" in cfg.arms:
            or_out = sd / "oracle_defender"
            if not (or_out / "config.json").exists():
                log(f"seed {seed}: oracle (SFT with true answers on curriculum-source items)")
                m = timed(f"seed{seed}/oracle", lambda: oracle_arm(cfg, seed, warm_dir, or_out))
                atomic_write_json(sd / "oracle_metrics.json", m)
            models["oracle"] = str(or_out)
        for arm, path in models.items():
            results.setdefault(arm, []).append(evaluate(arm, path, sd / "eval" / arm))
    if base_res is not None:
        results = {"base": [base_res] * len(seeds), **results}  # one evaluation, paired with every seed
    summary = aggregate(results)
    diffs = differences(results, comparisons(list(results)), cfg.n_boot)
    units = {b: int(v["info"]["n"]) for b, v in sorted(next(iter(results.values()))[0]["benchmarks"].items())} if results else {}
    study = {
        "seeds": seeds, "arms": list(results), "eval_seed": cfg.eval_seed, "units": units,
        "ci": "paired differences: percentile bootstrap over units (robust: base questions with their attacks), training seeds averaged inside each replicate; absolute values: mean and 95% t interval over training seeds",
        "differences": diffs, "summary": summary, "wasted_phases": wasted, "per_iteration": monitors,
        "wall_s": wall, "wall_total_s": round(sum(wall.values()), 1), "this_call_s": round(time.perf_counter() - t_start, 1),
    }
    atomic_write_json(out / "study.json", study)
    atomic_write_text(out / "table.md", study_table_md(study))
    _write_report(out, cfg, results, study)
    return study


def per_iteration_keys(i: int) -> list[tuple[str, str]]:
    """(metric, phase) of iteration ``i`` that the study collects from the AOT run: co-evolution
    (the attacker against the defender it trained against and against the next one), the
    curriculum it made, and the defender's accuracy on its edits."""
    return [
        ("monitor/attacker_success", f"iter{i}.attacker"), ("monitor/attacker_success_vs_new", f"iter{i}.defender"),
        ("curriculum/passing", f"iter{i}.curriculum"), ("curriculum/effective", f"iter{i}.curriculum"),
        ("monitor/attacked_acc", f"iter{i}.defender"), ("monitor/clean_simple_acc", f"iter{i}.defender"),
    ]


def detectable_effect(diff: dict[str, Any]) -> float:
    """The smallest true difference this comparison would detect with 80% power at a two-sided
    5% level: (z 0.975 + z 0.8) x SE, with SE read off the paired interval as half-width / 1.96.
    E.g. an interval [-2, +4] (half-width 3): 2.80 x 3 / 1.96 = 4.29 points."""
    return (1.959964 + 0.841621) * (diff["hi"] - diff["lo"]) / 2 / 1.959964


def _load_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _add_wall(out: Path, wall: dict[str, float], key: str, seconds: float) -> None:
    wall[key] = round(seconds, 1)
    atomic_write_json(out / "wall.json", wall)


def _wasted_phases(run: Path) -> list[str]:
    """Defender phases of a finished run that changed no monitored answer."""
    metrics = json.loads((run / "metrics.json").read_text())["metrics"] if (run / "metrics.json").exists() else []
    return [m["phase"] for m in metrics if m.get("monitor/changed_answers") == 0]


def _write_report(out: Path, cfg: StudyConfig, results: dict[str, list[dict[str, Any]]], study: dict[str, Any]) -> None:
    from .report import build_report, table_from_results

    data: dict[str, Any] = {
        "title": "AOT study",
        "notes": f"{len(study['seeds'])} training seed(s), every arm on the same held-out items; see table.md for the paired differences. Absolute values: mean ± 95% t interval over seeds.",
        "table": table_from_results({a: [{k: v for k, v in r.items() if k != "predictions"} for r in rs] for a, rs in results.items()}),
    }
    att, new = study["per_iteration"].get("monitor/attacker_success"), study["per_iteration"].get("monitor/attacker_success_vs_new")
    if att:
        success = {SUCCESS_LABELS[0]: att, **({SUCCESS_LABELS[1]: new} if new else {})}
        data["per_iteration"] = {"iterations": list(range(1, cfg.run.iterations + 1)), "metrics": {}, "attacker_success": success}
    build_report(data, out / "report.html")


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


def comparisons(arms: list[str]) -> list[tuple[str, str]]:
    """(A, B) pairs reported as B - A: every arm against base, then the AOT defender against
    each baseline (the paper's table: clean-data ablation, random edits, SFT, and the oracle)."""
    pairs = [("base", a) for a in arms if a != "base" and "base" in arms]
    if "aot" in arms:
        pairs += [(b, "aot") for b in ("clean", "random", "sft", "oracle", "warmup") if b in arms]
    return pairs


def differences(results: dict[str, list[dict[str, Any]]], pairs: list[tuple[str, str]], n_boot: int) -> dict[str, dict[str, Any]]:
    """{"B - A": {metric: paired_bootstrap(...)}} for every headline metric both arms measured."""
    from .eval.paired import PAIRED_METRICS, bench_rows, paired_bootstrap

    out: dict[str, dict[str, Any]] = {}
    for a, b in pairs:
        row: dict[str, Any] = {}
        for name, metric in PAIRED_METRICS.items():
            if not all(metric.bench in r.get("benchmarks", {}) for r in results[a] + results[b]):
                continue
            per_seed = [(bench_rows(ra, metric.bench), bench_rows(rb, metric.bench)) for ra, rb in zip(results[a], results[b])]
            row[name] = paired_bootstrap(per_seed, metric, n_boot=n_boot, seed=0)
        out[f"{b} - {a}"] = row
    return out


HEADLINE = [
    "vstar/greedy/accuracy", "hr/greedy/accuracy", "robust/greedy/attacked/accuracy", "pope/greedy/adversarial/f1",
    "pope/greedy/mean/f1", "clean/greedy/accuracy",
]


def _short(metric: str) -> str:
    return metric.replace("/greedy", "").replace("/accuracy", "").replace("robust/attacked", "robust (attacked)")


def study_table_md(study: dict[str, Any]) -> str:
    """The difference table (points, paired 95% interval), then the absolute table."""
    diffs, summary = study["differences"], study["summary"]
    cols = [c for c in HEADLINE if any(c in row for row in diffs.values())] or [c for c in HEADLINE if any(c in s for s in summary.values())]
    lines = [f"Paired differences, points (95% bootstrap interval over units; {len(study['seeds'])} training seed(s) averaged; units per benchmark: "
             + ", ".join(f"{b} {n}" for b, n in study.get("units", {}).items()) + ")", "",
             "| comparison | " + " | ".join(_short(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for comp, row in diffs.items():
        cells = []
        for c in cols:
            d = row.get(c)
            if d is None:
                cells.append("–")
            else:
                mark = "**" if d["lo"] > 0 or d["hi"] < 0 else ""
                cells.append(f"{mark}{100 * d['diff']:+.1f}{mark} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]")
        lines.append(f"| {comp} | " + " | ".join(cells) + " |")
    lines += ["", "Absolute values, percent (mean ± 95% t interval over training seeds)", "",
              "| arm | " + " | ".join(_short(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm, s in summary.items():
        cells = [f"{100 * s[c][0]:.1f} ± {100 * s[c][1]:.1f}" if c in s else "–" for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if diffs:
        lines += ["", "Detectable effect, points: the smallest true difference each comparison finds with 80% power "
                  "(two-sided 5%), from its interval's width; the largest over comparisons", "",
                  "| | " + " | ".join(_short(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|",
                  "| detectable | " + " | ".join(f"{100 * max(detectable_effect(r[c]) for r in diffs.values() if c in r):.1f}"
                                                if any(c in r for r in diffs.values()) else "–" for c in cols) + " |"]
    mon = study.get("per_iteration") or {}
    if mon:
        def cell(key: str, i: int, pct: bool) -> str:
            vals = [v for v in (mon.get(key) or [[]] * (i + 1))[i] if v is not None]
            if not vals:
                return "–"
            m = sum(vals) / len(vals)
            return f"{100 * m:.1f}" if pct else f"{m:.1f}"

        n_iter = len(next(iter(mon.values())))
        lines += ["", "The AOT run per iteration (mean over training seeds; monitor sets, not the benchmarks)", "",
                  "| iteration | attacker success vs defender i-1, % | vs defender i, % | curriculum edits passing / effective | attacked acc., % | clean simple acc., % |",
                  "|---|---|---|---|---|---|"]
        for i in range(n_iter):
            lines.append(f"| {i + 1} | {cell('monitor/attacker_success', i, True)} | {cell('monitor/attacker_success_vs_new', i, True)} | "
                         f"{cell('curriculum/passing', i, False)} / {cell('curriculum/effective', i, False)} | "
                         f"{cell('monitor/attacked_acc', i, True)} | {cell('monitor/clean_simple_acc', i, True)} |")
    if study.get("wasted_phases"):
        lines += ["", "Wasted phases (changed no monitored answer): " + ", ".join(study["wasted_phases"])]
    return "\n".join(lines) + "\n"
